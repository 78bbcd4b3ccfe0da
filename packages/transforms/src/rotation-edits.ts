import { Tensor, castFromNumbers, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type { RotationStep } from "./rotation-plan.js";
import { applyToWeight } from "./transform-matrices.js";

// The weight edits of SpinQuant's pre-rotation surgery (llmcompressor.modeling.fuse) and of fused transforms, each in
// f64 and cast back to the tensor's dtype after every step, as torch does (`.to(PRECISION)`, op, `.to(weight_dtype)`).

/** f64 values back in `dtype` (bf16 / f16 through f32, as torch's double → half conversions round). */
export const storeAs = (dtype: Tensor["dtype"], shape: ReadonlyArray<number>, v: Float64Array): Tensor => {
  if (dtype === "f64") return new Tensor("f64", shape, v);
  // typed-array set: the engine's own (fast) f64 → f32 rounding
  const f = new Float32Array(v.length);
  f.set(v);
  return dtype === "f32" ? new Tensor("f32", shape, f) : castFromNumbers(dtype, f, shape);
};

/** center_embeddings: every row minus its mean, in f64. */
export const centerRows = (w: Tensor): Tensor => {
  const [rows, cols] = w.shape as [number, number];
  const x = Float64Array.from(toFloat64(w).data);
  for (let r = 0; r < rows; r++) {
    const row = x.subarray(r * cols, (r + 1) * cols);
    // torch's mean in f64 (pairwise sums of at most a few thousand terms agree with a plain sum to ~1 ulp)
    let s = 0;
    for (let j = 0; j < cols; j++) s += row[j]!;
    const m = s / cols;
    for (let j = 0; j < cols; j++) row[j] = row[j]! - m;
  }
  return storeAs(w.dtype, w.shape, x);
};

/** fuse_norm_linears for one linear: W[:, j] · norm[j] in f64. */
export const fuseNormInto = (w: Tensor, norm: Tensor): Tensor => {
  const [rows, cols] = w.shape as [number, number];
  const x = Float64Array.from(toFloat64(w).data);
  const g = toFloat64(norm).data;
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) x[r * cols + j] = x[r * cols + j]! * g[j]!;
  return storeAs(w.dtype, w.shape, x);
};

/** The norm's weight after fusing: ones in its dtype. */
export const onesLike = (t: Tensor): Tensor => storeAs(t.dtype, t.shape, new Float64Array(t.size).fill(1));

/** One fused transform on a module's weight (and, at weight_output of a linear, its bias). */
export const applyStep = (step: RotationStep, weight: Tensor, bias: Tensor | undefined): E.Either<string, { readonly weight: Tensor; readonly bias: Tensor | undefined }> => {
  const [rows, cols] = weight.shape as [number, number];
  const kind = step.module.kind;
  if (kind === "attention") return E.left(`${step.scheme} on ${step.module.name}: an attention module has no weight to fuse ${step.location} into`);
  const w = applyToWeight(step.location, kind, step.matrix, toFloat64(weight).data, rows, cols);
  if (E.isLeft(w)) return E.left(`${step.scheme} on ${step.module.name}: ${w.left}`);
  if (bias === undefined || step.location !== "weight_output" || step.module.kind !== "linear") return E.right({ weight: storeAs(weight.dtype, weight.shape, w.right), bias });
  const b = applyToWeight(step.location, "linear", step.matrix, toFloat64(bias).data, bias.size, 1);
  if (E.isLeft(b)) return E.left(`${step.scheme} on ${step.module.name}.bias: ${b.left}`);
  return E.right({ weight: storeAs(weight.dtype, weight.shape, w.right), bias: storeAs(bias.dtype, bias.shape, b.right) });
};
