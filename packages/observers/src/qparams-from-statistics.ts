import { type QuantizationArgs, calculateQParams } from "@llmq/schemes";
import { Tensor, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type ObserverError, qparamsError } from "./errors.js";
import type { MinMaxStatistics } from "./statistics.js";

// ----- model -----

/** What an observer yields (LC `QParamsDict`): scale and zero point, plus the global scale for tensor_group. */
export interface QParams {
  /** f32 in the statistic shape (e.g. [out, groups]). */
  readonly scale: Tensor;
  /** In `args.zp_dtype`. */
  readonly zeroPoint: Tensor;
  /** f32 [1] for tensor_group (NVFP4), else null. */
  readonly globalScale: Tensor<"f32"> | null;
}

// ----- constructors -----

const f32Tensor = (data: Float32Array, shape: ReadonlyArray<number>): Tensor<"f32"> => new Tensor("f32", shape, data);

/**
 * LC `Observer.get_global_scale`: absmax over this observer's and all fused observers' statistics
 * (max of max_vals, max of −min_vals), then `generate_gparam(−absmax, absmax)`.
 */
export const fusedGlobalScale = (all: ReadonlyArray<MinMaxStatistics>): Tensor<"f32"> => {
  let a = Number.NEGATIVE_INFINITY;
  for (const s of all) {
    for (const v of s.max) a = Math.max(a, v);
    for (const v of s.min) a = Math.max(a, -v);
  }
  return f32Tensor(Float32Array.of(generateGParam(Math.fround(a))), [1]);
};

/**
 * `generate_gparam(−a, a)` on f32 statistics: absmax clamped below to finfo(f32).tiny, then
 * `FP8_MAX * FP4_MAX / absmax`. In torch that is `2688.0 / tensor`, i.e. `Tensor.__rtruediv__`, which evaluates
 * `tensor.reciprocal() * 2688.0` — two f32 roundings, not one true division (they differ for ~25% of inputs).
 * NaN/±Inf become 1.
 */
export const generateGParam = (absmax: number): number => {
  const amax = Number.isNaN(absmax) ? absmax : Math.max(absmax, 0, 2 ** -126);
  const g = Math.fround(Math.fround(1 / amax) * 2688);
  return Number.isFinite(g) ? g : 1;
};

/** `get_qparams`: calculate_qparams(min_vals, max_vals, args, global_scale), global scale only for tensor_group. */
export const qparamsFromStatistics = (
  stats: MinMaxStatistics,
  fused: ReadonlyArray<MinMaxStatistics>,
  args: QuantizationArgs,
  tensor: string,
): E.Either<ObserverError, QParams> => {
  const gs = E.right(args.strategy === "tensor_group" ? fusedGlobalScale([stats, ...fused]) : null);
  return E.flatMap(gs, (globalScale) =>
    E.bimap(
      (e: Parameters<typeof qparamsError>[1]) => qparamsError(tensor, e),
      (q: { readonly scale: Tensor; readonly zeroPoint: Tensor }): QParams => ({ scale: q.scale, zeroPoint: q.zeroPoint, globalScale }),
    )(
      calculateQParams(
        f32Tensor(stats.min, stats.shape),
        f32Tensor(stats.max, stats.shape),
        args,
        globalScale === null ? {} : { globalScale },
      ),
    ),
  );
};

/** Candidate qparams for the MSE search as flat f32 arrays (zero point null when symmetric: it is all zeros). */
export const candidateQParams = (
  min: Float32Array,
  max: Float32Array,
  shape: ReadonlyArray<number>,
  args: QuantizationArgs,
  tensor: string,
): E.Either<ObserverError, { readonly scale: Float32Array; readonly zeroPoint: Float32Array | null }> =>
  E.bimap(
    (e: Parameters<typeof qparamsError>[1]) => qparamsError(tensor, e),
    (q: { readonly scale: Tensor; readonly zeroPoint: Tensor }) => ({
      scale: Float32Array.from(toFloat64(q.scale).data),
      zeroPoint: args.symmetric ? null : Float32Array.from(toFloat64(q.zeroPoint).data),
    }),
  )(calculateQParams(f32Tensor(min, shape), f32Tensor(max, shape), args));
