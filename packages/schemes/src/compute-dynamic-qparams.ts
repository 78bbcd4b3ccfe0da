import { type Tensor, castFromNumbers, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type QParams, calculateQParams } from "./calculate-qparams.js";
import { type SchemeError, unsupported } from "./errors.js";
import type { QuantizationArgs } from "./quantization-args.js";
import { isFloatDType } from "./working-dtype.js";

/**
 * The reduction of compressed-tensors 0.20.0 `compute_dynamic_scales_and_zp`: token → min/max over every dim but
 * the first two (keepdim; a tensor of rank ≤ 2 reduces to one value, since CT's empty reduce_dims means "all"),
 * tensor → one value, group/tensor_group → per group of the last dim. NaN propagates like torch.amin/amax.
 */
export const dynamicMinMax = (x: Tensor, args: QuantizationArgs): E.Either<SchemeError, { readonly min: Tensor; readonly max: Tensor }> => {
  const op = "dynamicMinMax";
  if (!isFloatDType(x.dtype)) return E.left(unsupported(op, `expected a float tensor, got ${x.dtype}`));
  const v = toFloat64(x).data;
  const shape = x.shape;
  let cell: number;
  let outShape: number[];
  if (args.strategy === "token" && shape.length > 2) {
    cell = shape.slice(2).reduce((a, b) => a * b, 1);
    outShape = [shape[0]!, shape[1]!, ...shape.slice(2).map(() => 1)];
  } else if (args.strategy === "token" || args.strategy === "tensor") {
    cell = v.length;
    outShape = [1];
  } else if (args.strategy === "group" || args.strategy === "tensor_group") {
    const gs = args.group_size ?? 0;
    const cols = shape[shape.length - 1] ?? 0;
    if (gs <= 0 || cols % gs !== 0) return E.left(unsupported(op, `the last dimension ${cols} must be a multiple of group_size ${gs}`));
    cell = gs;
    outShape = [...shape.slice(0, -1), cols / gs];
  } else
    return E.left(unsupported(op, `dynamic quantization is only supported for strategies token, tensor, tensor_group and group, got "${args.strategy}"`));
  const n = cell === 0 ? 0 : v.length / cell;
  const lo = new Float64Array(n);
  const hi = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    let a = Infinity;
    let b = -Infinity;
    for (let j = k * cell; j < (k + 1) * cell; j++) {
      a = Math.min(a, v[j]!);
      b = Math.max(b, v[j]!);
    }
    lo[k] = a;
    hi[k] = b;
  }
  return E.right({ min: castFromNumbers(x.dtype, lo, outShape), max: castFromNumbers(x.dtype, hi, outShape) });
};

/** `compute_dynamic_scales_and_zp`: qparams of an activation computed on the fly (global scale for tensor_group). */
export const computeDynamicQParams = (x: Tensor, args: QuantizationArgs, opts: { readonly globalScale?: Tensor } = {}): E.Either<SchemeError, QParams> =>
  E.flatMap(dynamicMinMax(x, args), ({ min, max }) => calculateQParams(min, max, args, opts));
