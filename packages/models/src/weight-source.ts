import * as TE from "fp-ts/lib/TaskEither.js";
import type { Tensor } from "@llmq/tensor";
import { type ModelError, missingTensor } from "./errors.js";

/** Lazy access to a checkpoint's tensors: names and shapes come from headers, data is read on demand. */
export interface WeightSource {
  readonly names: () => ReadonlyArray<string>;
  readonly shape: (name: string) => ReadonlyArray<number> | undefined;
  /** The stored dtype from the header ("f32", "bf16"…; a safetensors name where llmq has none), if known without reading. */
  readonly dtype?: (name: string) => string | undefined;
  readonly read: (name: string) => TE.TaskEither<ModelError, Tensor>;
}

/** A WeightSource over tensors already in memory (converted checkpoints, tests). */
export const memoryWeightSource = (tensors: ReadonlyMap<string, Tensor>, where = "memory"): WeightSource => ({
  names: () => [...tensors.keys()],
  shape: (name) => tensors.get(name)?.shape,
  dtype: (name) => tensors.get(name)?.dtype,
  read: (name) => {
    const t = tensors.get(name);
    return t === undefined ? TE.left(missingTensor(name, where)) : TE.right(t);
  },
});
