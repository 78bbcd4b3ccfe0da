import * as TE from "fp-ts/lib/TaskEither.js";
import type { Tensor } from "@llmq/tensor";
import { type ModelError, missingTensor } from "./errors.js";

/** Lazy access to a checkpoint's tensors: names and shapes come from headers, data is read on demand. */
export interface WeightSource {
  readonly names: () => ReadonlyArray<string>;
  readonly shape: (name: string) => ReadonlyArray<number> | undefined;
  readonly read: (name: string) => TE.TaskEither<ModelError, Tensor>;
}

/** A WeightSource over tensors already in memory (converted checkpoints, tests). */
export const memoryWeightSource = (tensors: ReadonlyMap<string, Tensor>, where = "memory"): WeightSource => ({
  names: () => [...tensors.keys()],
  shape: (name) => tensors.get(name)?.shape,
  read: (name) => {
    const t = tensors.get(name);
    return t === undefined ? TE.left(missingTensor(name, where)) : TE.right(t);
  },
});
