import {
  type DType,
  DTYPES,
  FLOAT_EPS,
  FP8_E4M3FN_VALUES,
  Tensor,
  castFromNumbers,
  f16FromNumber,
  f16ToNumber,
  f32Bits,
  f32FromBits,
  fp8e4m3FromNumber,
  roundHalfEven,
  roundToDType,
  toFloat64,
} from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { calculateRange } from "./calculate-range.js";
import { type SchemeError, unsupported } from "./errors.js";
import type { QuantizationArgs } from "./quantization-args.js";
import { type FloatDType, dtypeOfTorchName, isFloatDType, promote, rounder } from "./working-dtype.js";

export interface QParams {
  /** In the statistics' dtype (f32 when a global scale takes part: torch promotes bf16 × f32 to f32). */
  readonly scale: Tensor;
  /** In `args.zp_dtype` (int8 for int ≤ 8 bits, fp8 for float, uint8 for MX). */
  readonly zeroPoint: Tensor;
}

// ----- dtype helpers -----

/**
 * `round_to_quantized_type_dtype` on one value held in a tensor of the dtype `r` rounds to: clamp to the target
 * dtype's range (torch.clamp keeps the input dtype, so the bound is rounded too: 32767 is 32768 in f16/bf16), then
 * cast (RNE for floats; round half to even for ints, whose out-of-range values then wrap in the storage cast).
 */
export const roundToQuantizedDType = (x: number, d: DType, r: (v: number) => number = (v) => v): number => {
  if (Number.isNaN(x)) return Number.NaN;
  const clamp = (lo: number, hi: number) => r(Math.min(Math.max(x, lo), hi));
  switch (d) {
    case "f8_e4m3fn":
      return FP8_E4M3FN_VALUES[fp8e4m3FromNumber(clamp(-448, 448))]!;
    case "f8_e5m2":
      return roundToDType("f8_e5m2", clamp(-57344, 57344));
    case "f64":
    case "f32":
    case "bf16":
    case "f16": {
      const max = d === "f16" ? 65504 : d === "bf16" ? 3.3895313892515355e38 : d === "f32" ? 3.4028234663852886e38 : Number.MAX_VALUE;
      return roundToDType(d, clamp(-max, max));
    }
    case "i8":
      return roundHalfEven(clamp(-128, 127)) + 0;
    case "u8":
      return roundHalfEven(clamp(0, 255)) + 0;
    case "i16":
      return roundHalfEven(clamp(-32768, 32767)) + 0;
    case "i32":
      return roundHalfEven(clamp(-(2 ** 31), 2 ** 31 - 1)) + 0;
    default:
      return roundHalfEven(x) + 0;
  }
};

/** `_get_dtype_eps`: the value a zero scale is replaced with. */
const dtypeEps = (d: DType | "f4"): number =>
  d === "f8_e4m3fn" ? 0.125 : d === "f4" ? 0.25 : d === "f64" || d === "f32" || d === "bf16" || d === "f16" || d === "f8_e5m2" ? FLOAT_EPS[d] : 1;

const MX_OFFSET: Readonly<Record<number, number>> = { 4: 2, 6: 2, 8: 8 };

/** `should_generate_mx_scales`: MX (E8M0 power-of-two) scales for float 4/6/8-bit, group 32, uint8 scale dtype. */
export const isMxArgs = (a: QuantizationArgs): boolean =>
  a.type === "float" && (a.num_bits === 4 || a.num_bits === 6 || a.num_bits === 8) && a.group_size === 32 && a.scale_dtype === "torch.uint8";

/**
 * `round_to_power_2` on the raw bits of `x` in dtype `d`: add half of the element type's mantissa step and keep sign
 * and exponent — mantissas ≥ 1.75 (fp4/fp8) or ≥ 1.9375 (fp6) round up to the next power of two.
 */
export const roundToPowerOf2 = (x: number, d: "f32" | "bf16" | "f16", elemMantissa: number): number => {
  if (d === "f32") {
    const b = f32Bits(x);
    return f32FromBits(((b + (1 << (23 - elemMantissa - 1))) & 0xff800000) >>> 0);
  }
  if (d === "bf16") {
    const h = f32Bits(x) >>> 16;
    return f32FromBits((((h + (1 << (7 - elemMantissa - 1))) & 0xff80) & 0xffff) << 16);
  }
  const h = f16FromNumber(x);
  return f16ToNumber(((h + (1 << (10 - elemMantissa - 1))) & 0xfc00) & 0xffff);
};

const floatDTypeOf = (t: Tensor, op: string): E.Either<SchemeError, FloatDType> =>
  isFloatDType(t.dtype) ? E.right(t.dtype) : E.left(unsupported(op, `expected a float tensor (f64, f32, bf16, f16), got ${t.dtype}`));

// ----- qparams -----

/**
 * `calculate_qparams(min_vals, max_vals, args, global_scale)` of compressed-tensors 0.20.0, element for element, with
 * torch's dtype semantics: arithmetic in the statistics' dtype, rounded after every op; × global scale promotes to
 * f32; scale_dtype rounding, MX exponent conversion, the zero-scale eps rule of the scale dtype, zero points rounded
 * to zp_dtype (an asymmetric all-zero group's NaN zero point becomes 0, as torch's CPU cast does).
 */
export const calculateQParams = (
  min: Tensor,
  max: Tensor,
  args: QuantizationArgs,
  opts: { readonly globalScale?: Tensor } = {},
): E.Either<SchemeError, QParams> => {
  const op = "calculateQParams";
  const wd = floatDTypeOf(min, op);
  if (E.isLeft(wd)) return wd;
  const W = wd.right;
  if (max.dtype !== W || max.size !== min.size) return E.left(unsupported(op, `min (${min.dtype} [${min.shape}]) and max (${max.dtype} [${max.shape}]) must match`));
  const range = calculateRange(args);
  if (E.isLeft(range)) return range;
  const { qMin, qMax } = range.right;
  const zpDType = args.zp_dtype === null ? undefined : dtypeOfTorchName(args.zp_dtype);
  if (zpDType === undefined) return E.left(unsupported(op, `zp_dtype ${args.zp_dtype} is not one of torch.int8/int16/int32/uint8/float8_e4m3fn/float types`));
  const scaleDType = args.scale_dtype === null ? null : (dtypeOfTorchName(args.scale_dtype) ?? null);
  if (args.scale_dtype !== null && scaleDType === null) return E.left(unsupported(op, `scale_dtype ${args.scale_dtype} is not supported`));
  const mx = isMxArgs(args);
  if (mx && W === "f64") return E.left(unsupported(op, "MX scales from f64 statistics are not supported"));
  if (!args.symmetric && args.type === "float" && (args.num_bits === 4 || args.num_bits === 6))
    return E.left(unsupported(op, "asymmetric quantization is not supported for FP4 and FP6 (symmetric must be true)"));

  let gs: number | null = null;
  let S: FloatDType = W;
  if (opts.globalScale !== undefined) {
    const gd = floatDTypeOf(opts.globalScale, op);
    if (E.isLeft(gd)) return gd;
    if (opts.globalScale.size !== 1) return E.left(unsupported(op, `global scale must have one element, got shape [${opts.globalScale.shape}]`));
    gs = toFloat64(opts.globalScale).data[0]!;
    S = promote(W, gd.right);
  }
  if (W === "f32" && gs === null && scaleDType === null && args.type === "int" && zpDType === "i8") {
    return E.right(qparamsF32Int(min, max, args.symmetric, qMin, qMax));
  }
  const rW = rounder(W);
  const rS = rounder(S);
  const bitRange = rW(Math.fround(qMax - qMin));
  const half = rW(bitRange / 2);
  const mn = toFloat64(min).data;
  const mxv = toFloat64(max).data;
  const n = min.size;
  const scale = new Float64Array(n);
  const zp = new Float64Array(n);
  const eps = rS(dtypeEps(scaleDType ?? S));
  const elemMantissa = args.num_bits === 6 ? 3 : 1;
  for (let i = 0; i < n; i++) {
    // torch.min/max propagate NaN
    const lo = Number.isNaN(mn[i]!) ? Number.NaN : Math.min(mn[i]!, 0);
    const hi = Number.isNaN(mxv[i]!) ? Number.NaN : Math.max(mxv[i]!, 0);
    let s: number;
    let z: number;
    if (args.symmetric) {
      const amax = Number.isNaN(lo) || Number.isNaN(hi) ? Number.NaN : Math.max(Math.abs(lo), Math.abs(hi));
      if (mx) {
        const p2 = roundToPowerOf2(amax, W as "f32" | "bf16" | "f16", elemMantissa);
        s = rW(rW(127 + Math.floor(Math.log2(p2))) - MX_OFFSET[args.num_bits]!);
      } else s = rW(amax / half);
      z = 0;
    } else {
      s = rW(rW(hi - lo) / bitRange);
      z = rW(qMin - rW(lo / s));
      // torch.clamp with 0-dim f32 bounds keeps the statistics' dtype: the bound itself is rounded (bf16: 4095 → 4096)
      z = Number.isNaN(z) ? z : rW(Math.min(Math.max(z, qMin), qMax));
    }
    if (gs !== null) s = rS(gs * s);
    if (scaleDType !== null) s = rS(roundToQuantizedDType(s, scaleDType, rS));
    if (mx) s = rS(Math.fround(2 ** (Math.trunc(s) - 127)));
    if (s === 0) s = eps;
    scale[i] = s;
    // An asymmetric all-zero cell gives zp = q_min − 0/0 = NaN: torch's CPU cast makes it 0 in an int dtype and
    // keeps NaN in a float one (fp8 code 0x7f).
    zp[i] = Number.isNaN(z) && DTYPES[zpDType].kind !== "float" ? 0 : roundToQuantizedDType(z, zpDType, rW);
  }
  const shape = min.shape.length === 0 ? [1] : min.shape;
  return E.right({ scale: castFromNumbers(S, scale, shape), zeroPoint: castFromNumbers(zpDType, zp, shape) });
};

/** The common case (f32 statistics, int ≤ 8 bits, no scale dtype) with typed arrays; same arithmetic as the general loop. */
const qparamsF32Int = (min: Tensor, max: Tensor, symmetric: boolean, qMin: number, qMax: number): QParams => {
  const fr = Math.fround;
  const mn = min.data as Float32Array;
  const mx = max.data as Float32Array;
  const n = mn.length;
  const scale = new Float32Array(n);
  const zp = new Int8Array(n);
  const bitRange = fr(qMax - qMin);
  const half = fr(bitRange / 2);
  const eps = 2 ** -23;
  for (let i = 0; i < n; i++) {
    const a = mn[i]!;
    const b = mx[i]!;
    const lo = Number.isNaN(a) ? a : Math.min(a, 0);
    const hi = Number.isNaN(b) ? b : Math.max(b, 0);
    if (symmetric) {
      const amax = Number.isNaN(lo) || Number.isNaN(hi) ? Number.NaN : Math.max(-lo, hi);
      const s = fr(amax / half);
      scale[i] = s === 0 ? eps : s;
    } else {
      const s = fr(fr(hi - lo) / bitRange);
      let z = fr(qMin - fr(lo / s));
      z = Number.isNaN(z) ? 0 : roundHalfEven(Math.min(Math.max(z, qMin), qMax)) + 0;
      scale[i] = s === 0 ? eps : s;
      zp[i] = Math.min(Math.max(z, -128), 127);
    }
  }
  const shape = min.shape.length === 0 ? [1] : min.shape;
  return { scale: new Tensor("f32", shape, scale), zeroPoint: new Tensor("i8", shape, zp) };
};

/**
 * `generate_gparam(min, max)`: 448·6 / absmax in the statistics' dtype (absmax clamped below to finfo.tiny),
 * NaN/±inf → 1, stored as f32 [1] — so a bf16 model's global scale is bf16-representable.
 */
export const generateGlobalScale = (min: Tensor, max: Tensor): E.Either<SchemeError, Tensor<"f32">> => {
  const wd = floatDTypeOf(min, "generateGlobalScale");
  if (E.isLeft(wd)) return wd;
  const W = wd.right;
  const rW = rounder(W);
  const lo = toFloat64(min).data;
  const hi = toFloat64(max).data;
  if (lo.length !== 1 || hi.length !== 1) return E.left(unsupported("generateGlobalScale", "min and max must be single values (the tensor-wide statistics)"));
  const l = Number.isNaN(lo[0]!) ? Number.NaN : Math.min(lo[0]!, 0);
  const h = Number.isNaN(hi[0]!) ? Number.NaN : Math.max(hi[0]!, 0);
  let amax = Number.isNaN(l) || Number.isNaN(h) ? Number.NaN : Math.max(Math.abs(l), Math.abs(h));
  const tiny = W === "f64" ? 2 ** -1022 : W === "f16" ? 2 ** -14 : 2 ** -126;
  if (!Number.isNaN(amax)) amax = Math.max(amax, tiny);
  // Python's `2688.0 / t` is torch's Tensor.__rtruediv__ = reciprocal(t) * 2688: two roundings in W.
  let g = rW(rW(1 / amax) * 2688);
  if (!Number.isFinite(g)) g = 1;
  return E.right(castFromNumbers("f32", [g], [1]));
};
