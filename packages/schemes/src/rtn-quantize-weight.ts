import { type DType, type Tensor, castFromNumbers, kernels, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { calculateQParams, generateGlobalScale } from "./calculate-qparams.js";
import { type SchemeError, nonFinite, unsupported } from "./errors.js";
import type { QuantizationArgs } from "./quantization-args.js";
import { fakeQuantize, quantize } from "./quantize.js";
import { type FloatDType, floatValues, isFloatDType } from "./working-dtype.js";

export interface RtnResult {
  /** Storage codes: i8/i16/i32 for int, f8_e4m3fn for fp8, f4_e2m1 for fp4 (sign of -0 kept), float values for fp6. */
  readonly quantized: Tensor;
  /** The module parameter `weight_scale`: the weight's dtype (NVFP4: fp8 values; MX: powers of two). */
  readonly scale: Tensor;
  /** `weight_zero_point` in args.zp_dtype (zeros when symmetric; compressors drop it then). */
  readonly zeroPoint: Tensor;
  /** `weight_global_scale` f32 [1] for tensor_group. */
  readonly globalScale?: Tensor<"f32">;
}

/** Per-scale-cell min and max of a 2-D weight for the weight strategies (the memoryless min-max observer). */
export const weightMinMax = (
  weight: Tensor,
  args: QuantizationArgs,
): E.Either<SchemeError, { readonly min: Tensor; readonly max: Tensor }> => {
  const op = "weightMinMax";
  if (!isFloatDType(weight.dtype)) return E.left(unsupported(op, `weight must be f64/f32/bf16/f16, got ${weight.dtype}`));
  const W: FloatDType = weight.dtype;
  if (weight.rank !== 2) return E.left(unsupported(op, `weight must be 2-D [out, in], got shape [${weight.shape}]`));
  const rows = weight.shape[0]!;
  const cols = weight.shape[1]!;
  // min/max only select elements, so the f32 view is exact for bf16/f16 weights (f64 goes through f64).
  const x = W === "f64" ? null : floatValues(weight);
  const xd = W === "f64" ? toFloat64(weight).data : null;
  const at = (i: number) => (x !== null ? x[i]! : xd![i]!);
  const build = (lo: ArrayLike<number>, hi: ArrayLike<number>, shape: number[]) =>
    E.right({ min: castFromNumbers(W, lo, shape), max: castFromNumbers(W, hi, shape) });
  const grouped = (gs: number, shape: number[]) => {
    const ng = cols / gs;
    const lo = new Float32Array(rows * ng);
    const hi = new Float32Array(rows * ng);
    if (x !== null) kernels().groupMinMax(x, rows, cols, gs, lo, hi);
    else {
      for (let r = 0; r < rows; r++)
        for (let g = 0; g < ng; g++) {
          let a = Infinity;
          let b = -Infinity;
          for (let j = 0; j < gs; j++) {
            const v = at(r * cols + g * gs + j);
            a = Math.min(a, v);
            b = Math.max(b, v);
          }
          lo[r * ng + g] = a;
          hi[r * ng + g] = b;
        }
    }
    return build(lo, hi, shape);
  };
  switch (args.strategy) {
    case "tensor":
      return rows * cols === 0 ? E.left(unsupported(op, "empty weight")) : reduceAll(W, at, rows * cols);
    case "channel":
      return grouped(cols, [rows, 1]);
    case "group":
    case "tensor_group": {
      const gs = args.group_size ?? 0;
      if (gs <= 0 || cols % gs !== 0)
        return E.left(unsupported(op, `tensor column shape must be divisible by the given group_size ${gs} but got ${cols}`));
      return grouped(gs, [rows, cols / gs]);
    }
    case "block": {
      const [bh, bw] = args.block_structure ?? [0, 0];
      if (bh <= 0 || bw <= 0) return E.left(unsupported(op, "block strategy needs block_structure"));
      const nrb = Math.ceil(rows / bh);
      const ncb = Math.ceil(cols / bw);
      // Zero padding to whole blocks never changes the statistics that matter: 0 is forced into every range.
      const lo = new Float64Array(nrb * ncb).fill(Infinity);
      const hi = new Float64Array(nrb * ncb).fill(-Infinity);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const k = Math.floor(r / bh) * ncb + Math.floor(c / bw);
          const v = at(r * cols + c);
          lo[k] = Math.min(lo[k]!, v);
          hi[k] = Math.max(hi[k]!, v);
        }
      const padded = rows % bh !== 0 || cols % bw !== 0;
      if (padded)
        for (let k = 0; k < lo.length; k++) {
          const br = Math.floor(k / ncb);
          const bc = k % ncb;
          if ((br + 1) * bh > rows || (bc + 1) * bw > cols) {
            lo[k] = Math.min(lo[k]!, 0);
            hi[k] = Math.max(hi[k]!, 0);
          }
        }
      return build(lo, hi, [nrb, ncb]);
    }
    default:
      return E.left(unsupported(op, `strategy "${args.strategy}" is an activation strategy; weights use tensor, channel, group, tensor_group or block`));
  }
};

const reduceAll = (W: FloatDType, at: (i: number) => number, n: number): E.Right<{ readonly min: Tensor; readonly max: Tensor }> => {
  let a = Infinity;
  let b = -Infinity;
  for (let i = 0; i < n; i++) {
    a = Math.min(a, at(i));
    b = Math.max(b, at(i));
  }
  return { _tag: "Right", right: { min: castFromNumbers(W, [a], [1]), max: castFromNumbers(W, [b], [1]) } };
};

/** The dtype compressed-tensors stores quantized weight codes in (int8/16/32, fp8 e4m3fn, fp4 e2m1). */
export const storageDType = (args: QuantizationArgs): DType | undefined => {
  if (args.type === "int") return args.num_bits <= 8 ? "i8" : args.num_bits <= 16 ? "i16" : "i32";
  if (args.num_bits === 8) return "f8_e4m3fn";
  if (args.num_bits === 4) return "f4_e2m1";
  return undefined;
};

/** The memoryless min-max qparams RTN quantizes a weight with (`rtnQuantizeWeight` without the codes). */
export interface RtnQParams {
  readonly scale: Tensor;
  readonly zeroPoint: Tensor;
  readonly globalScale?: Tensor<"f32">;
}

/**
 * Memoryless min-max statistics per scale cell, the global scale for tensor_group (from this weight alone unless
 * `opts.globalScale` gives the fused one), then `calculateQParams`, the scale in the weight's dtype. NaN/Inf in the
 * weight is an error naming `opts.name`.
 */
export const rtnQParams = (
  weight: Tensor,
  args: QuantizationArgs,
  opts: { readonly name?: string; readonly globalScale?: Tensor<"f32"> } = {},
): E.Either<SchemeError, RtnQParams> => {
  const name = opts.name ?? "weight";
  if (!isFloatDType(weight.dtype)) return E.left(unsupported("rtnQuantizeWeight", `${name} must be f64/f32/bf16/f16, got ${weight.dtype}`));
  const W: FloatDType = weight.dtype;
  const mm = weightMinMax(weight, args);
  if (E.isLeft(mm)) return mm;
  // NaN propagates into the per-cell min/max and ±Inf shows up in them, so only a suspicious statistic costs a scan.
  const lo = W === "f32" ? (mm.right.min.data as Float32Array) : toFloat64(mm.right.min).data;
  const hi = W === "f32" ? (mm.right.max.data as Float32Array) : toFloat64(mm.right.max).data;
  let finite = true;
  for (let i = 0; i < lo.length && finite; i++) finite = Number.isFinite(lo[i]!) && Number.isFinite(hi[i]!);
  if (!finite) {
    const v = weight.dtype === "f64" ? (weight.data as Float64Array) : floatValues(weight);
    for (let i = 0; i < v.length; i++) if (!Number.isFinite(v[i]!)) return E.left(nonFinite(name, i, v[i]!));
  }
  let globalScale: Tensor<"f32"> | undefined;
  if (args.strategy === "tensor_group") {
    if (opts.globalScale !== undefined) globalScale = opts.globalScale;
    else {
      // the tensor-wide min/max are the min/max of the per-group statistics
      let a = Infinity;
      let b = -Infinity;
      for (let i = 0; i < lo.length; i++) {
        a = Math.min(a, lo[i]!);
        b = Math.max(b, hi[i]!);
      }
      const g = generateGlobalScale(castFromNumbers(W, [a], [1]), castFromNumbers(W, [b], [1]));
      if (E.isLeft(g)) return g;
      globalScale = g.right;
    }
  }
  const qp = calculateQParams(mm.right.min, mm.right.max, args, globalScale !== undefined ? { globalScale } : {});
  if (E.isLeft(qp)) return qp;
  // The module parameter keeps the weight's dtype (`copy_` into weight_scale); exact for fp8 / power-of-two scales.
  const scale = qp.right.scale.dtype === W ? qp.right.scale : castFromNumbers(W, toFloat64(qp.right.scale).data, qp.right.scale.shape);
  return E.right({ scale, zeroPoint: qp.right.zeroPoint, ...(globalScale !== undefined ? { globalScale } : {}) });
};

/**
 * Round-to-nearest quantization of a 2-D weight [out, in] for any weight args: `rtnQParams`, then `quantize` to
 * storage codes — the same numbers llm-compressor's QuantizationModifier and compressed-tensors' compressors produce.
 */
export const rtnQuantizeWeight = (
  weight: Tensor,
  args: QuantizationArgs,
  opts: { readonly name?: string; readonly globalScale?: Tensor<"f32"> } = {},
): E.Either<SchemeError, RtnResult> =>
  E.chain((qp: RtnQParams) => {
    const sd = storageDType(args);
    const q = quantize(weight, qp.scale, qp.zeroPoint, args, {
      ...(qp.globalScale !== undefined ? { globalScale: qp.globalScale } : {}),
      ...(sd !== undefined ? { dtype: sd } : {}),
    });
    return E.map((quantized: Tensor): RtnResult => ({ quantized, ...qp }))(q);
  })(rtnQParams(weight, args, opts));

/**
 * compressed-tensors' `forward_quantize` of a weight with memoryless min-max qparams: Q(W) = dequantize(quantize(W))
 * in one pass (the native kernel for f32 int weights), as llm-compressor's AWQ grid search applies it.
 */
export const rtnFakeQuantizeWeight = (
  weight: Tensor,
  args: QuantizationArgs,
  opts: { readonly name?: string; readonly globalScale?: Tensor<"f32"> } = {},
): E.Either<SchemeError, Tensor> =>
  E.chain((qp: RtnQParams) => fakeQuantize(weight, qp.scale, args.symmetric ? null : qp.zeroPoint, args, qp.globalScale !== undefined ? { globalScale: qp.globalScale } : {}))(
    rtnQParams(weight, args, opts),
  );
