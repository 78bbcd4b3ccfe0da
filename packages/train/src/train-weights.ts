import type { LlamaConfig } from "@llmq/models";
import { Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type TrainWeights, trainTensorNames } from "./llama-train-forward.js";
import { constant, param } from "./tape.js";

/**
 * The model's tensors as tape leaves in f32 (copies: training writes them in place): those named in `trainable` are
 * parameters, the rest constants. Fails naming the first tensor the forward needs that is missing.
 */
export const trainWeights = (
  cfg: LlamaConfig,
  tensors: ReadonlyMap<string, Tensor>,
  trainable: (name: string) => boolean,
): E.Either<string, TrainWeights> => {
  const out = new Map<string, ReturnType<typeof param>>();
  for (const name of trainTensorNames(cfg)) {
    const t = tensors.get(name);
    if (t === undefined) return E.left(`the model has no tensor ${name}`);
    const data = Float32Array.from(toFloat32(t).data);
    out.set(name, trainable(name) ? param(data, t.shape) : constant(data, t.shape));
  }
  return E.right(out);
};

/** The current values of the weights as f32 tensors (what a checkpoint saves). */
export const weightTensors = (w: TrainWeights): ReadonlyMap<string, Tensor<"f32">> =>
  new Map([...w].map(([k, v]) => [k, v.data instanceof Float64Array ? toFloat32(new Tensor("f64", v.shape, v.data)) : new Tensor("f32", v.shape, Float32Array.from(v.data))]));
