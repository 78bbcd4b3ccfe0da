import {
  type DType,
  FP8_E4M3FN_VALUES,
  Tensor,
  allocStorage,
  castFromNumbers,
  fp4e2m1FromNumber,
  fp8e4m3FromNumber,
  kernels,
  roundHalfEven,
  sizeOf,
  toFloat64,
} from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { calculateRange } from "./calculate-range.js";
import { type SchemeError, unsupported } from "./errors.js";
import { i8Scratch } from "./f32-to-i8.js";
import { castToFp4, castToFp6 } from "./minifloat-rounding.js";
import type { QuantizationArgs } from "./quantization-args.js";
import { type FloatDType, floatValues, fp8Round, isFloatDType, promote, rounder } from "./working-dtype.js";

export interface QuantizeOptions {
  /** TENSOR_GROUP (NVFP4) global scale, f32 [1]; the effective scale is scale / globalScale. */
  readonly globalScale?: Tensor;
  /** Output dtype (torch's `dtype=` argument), e.g. "i8" or "f8_e4m3fn" for storage. */
  readonly dtype?: DType;
  /**
   * Legacy group act-order (`weight_g_idx`, written by compressed-tensors < 0.19; 0.20 removed GROUP actorder):
   * group strategies gather the columns by a stable argsort of g_idx, quantize group by group, scatter back. With
   * every group holding group_size columns (always so for GPTQ output) column c simply uses group g_idx[c].
   * Ignored when absent or all -1 (uninitialized), like CT.
   */
  readonly gIdx?: Int32Array;
}

// ----- layout: which scale element each x element uses -----

type Layout =
  | { readonly kind: "rows"; readonly cols: number; readonly groupSize: number }
  | { readonly kind: "block"; readonly cols: number; readonly bh: number; readonly bw: number; readonly ncb: number }
  | { readonly kind: "index"; readonly index: (e: number) => number };

const layoutOf = (op: string, x: Tensor, scale: Tensor, args: QuantizationArgs, gIdx?: Int32Array): E.Either<SchemeError, Layout> => {
  const shape = x.shape;
  const rank = shape.length;
  const cols = rank === 0 ? 1 : shape[rank - 1]!;
  const bad = (why: string) => E.left(unsupported(op, `${args.strategy} scale of shape [${scale.shape}] does not fit x of shape [${shape}]: ${why}`));
  if (args.strategy === "group" || args.strategy === "tensor_group") {
    const gs = args.group_size ?? 0;
    if (gs <= 0) return E.left(unsupported(op, `strategy ${args.strategy} needs a positive group_size`));
    // compressed-tensors 0.20.0 forward_helpers._process_group
    if (cols % gs !== 0) return E.left(unsupported(op, `tensor column shape must be divisible by the given group_size ${gs} but got ${cols}`));
    const rows = sizeOf(shape) / cols;
    if (scale.size !== rows * (cols / gs)) return bad(`expected ${rows * (cols / gs)} scales (rows × cols/group_size)`);
    if (gIdx !== undefined && !gIdx.every((g) => g === -1)) {
      if (gIdx.length !== cols) return E.left(unsupported(op, `g_idx has ${gIdx.length} entries for ${cols} columns`));
      const ng = cols / gs;
      // position of column c after a stable argsort of g_idx; its group is position / group_size
      const order = Array.from({ length: cols }, (_, c) => c).sort((a, b) => gIdx[a]! - gIdx[b]! || a - b);
      const groupOf = new Int32Array(cols);
      order.forEach((c, pos) => {
        groupOf[c] = Math.floor(pos / gs);
      });
      return E.right({ kind: "index", index: (e) => Math.floor(e / cols) * ng + groupOf[e % cols]! });
    }
    return E.right({ kind: "rows", cols, groupSize: gs });
  }
  if (args.strategy === "block") {
    const bs = args.block_structure;
    if (bs === null || rank !== 2) return bad("block quantization needs a 2-D x and block_structure");
    const [bh, bw] = bs;
    const R = shape[0]!;
    const C = shape[1]!;
    const nrb = Math.ceil(R / bh);
    const ncb = Math.ceil(C / bw);
    if (scale.size !== nrb * ncb) return bad(`expected [${nrb}, ${ncb}] (zero padding to whole blocks)`);
    // Padding rows/cols are quantized and cropped again by CT; they never influence kept elements.
    return E.right({ kind: "block", cols: C, bh, bw, ncb });
  }
  // tensor / channel / token / attn_head: plain right-aligned broadcasting, as torch does.
  const ss = scale.shape.length === 0 ? [1] : scale.shape;
  if (ss.length > Math.max(rank, 1)) return bad("scale has more dimensions than x");
  if (rank === 0) return scale.size === 1 ? E.right({ kind: "index", index: () => 0 }) : bad("scalar x needs one scale");
  const xStrides: number[] = [];
  const mult: number[] = [];
  let acc = 1;
  for (let d = rank - 1; d >= 0; d--) {
    xStrides[d] = acc;
    acc *= shape[d]!;
  }
  let sAcc = 1;
  const dims: number[] = [];
  for (let k = 1; k <= rank; k++) {
    const d = rank - k;
    const sd = k <= ss.length ? ss[ss.length - k]! : 1;
    if (sd !== 1 && sd !== shape[d]) return bad(`dimension ${d}: ${sd} vs ${shape[d]}`);
    mult[d] = sd === 1 ? 0 : sAcc;
    sAcc *= sd;
    if (sd !== 1) dims.push(d);
  }
  const n = sizeOf(shape);
  if (dims.length === 0) return E.right(n > 0 ? { kind: "rows", cols: n, groupSize: n } : { kind: "index", index: () => 0 });
  if (rank === 2 && dims.length === 1 && dims[0] === 0)
    return E.right({ kind: "rows", cols, groupSize: cols });
  return E.right({
    kind: "index",
    index: (e) => {
      let i = 0;
      for (const d of dims) i += (Math.floor(e / xStrides[d]!) % shape[d]!) * mult[d]!;
      return i;
    },
  });
};

// ----- element rounding -----

const roundElement = (args: QuantizationArgs, R: FloatDType): ((y: number) => number) => {
  if (args.type === "int") return roundHalfEven;
  // fp8Round starts from the f32 value: exact for f32/bf16/f16 inputs; f64 takes the general (single-rounding) path
  if (args.num_bits === 8) return R === "f64" ? (y) => (Number.isNaN(y) ? y : FP8_E4M3FN_VALUES[fp8e4m3FromNumber(y)]!) : fp8Round;
  if (args.num_bits === 6) return castToFp6;
  return castToFp4;
};

interface Prepared {
  readonly X: FloatDType;
  readonly S: FloatDType;
  readonly Seff: FloatDType;
  readonly seff: Float64Array | Float32Array;
  readonly zp: Float64Array | null;
  readonly layout: Layout;
  readonly qMin: number;
  readonly qMax: number;
}

const prepare = (
  op: string,
  x: Tensor,
  xDType: FloatDType,
  scale: Tensor,
  zeroPoint: Tensor | null,
  args: QuantizationArgs,
  globalScale: Tensor | undefined,
  gIdx?: Int32Array,
): E.Either<SchemeError, Prepared> => {
  if (!isFloatDType(scale.dtype)) return E.left(unsupported(op, `scale must be a float tensor, got ${scale.dtype}`));
  const S = scale.dtype;
  const range = calculateRange(args);
  if (E.isLeft(range)) return range;
  const layout = layoutOf(op, x, scale, args, gIdx);
  if (E.isLeft(layout)) return layout;
  if (zeroPoint !== null && zeroPoint.size !== scale.size)
    return E.left(unsupported(op, `zero point shape [${zeroPoint.shape}] must match scale shape [${scale.shape}]`));
  let Seff: FloatDType = S;
  // f32 scales are used in place (no copy) on the hot path.
  const s = S === "f32" ? (scale.data as Float32Array) : toFloat64(scale).data;
  let seff: Float64Array | Float32Array = s;
  if (globalScale !== undefined) {
    if (!isFloatDType(globalScale.dtype) || globalScale.size !== 1) return E.left(unsupported(op, "global scale must be a single float value"));
    Seff = promote(S, globalScale.dtype);
    const r = rounder(Seff);
    const g = toFloat64(globalScale).data[0]!;
    seff = Float64Array.from(s, (v) => r(v / g));
  }
  return E.right({
    X: xDType,
    S,
    Seff,
    seff,
    zp: zeroPoint === null ? null : toFloat64(zeroPoint).data,
    layout: layout.right,
    qMin: range.right.qMin,
    qMax: range.right.qMax,
  });
};

const scaleIndex = (layout: Layout): ((e: number) => number) => {
  if (layout.kind === "index") return layout.index;
  if (layout.kind === "block") {
    const { cols, bh, bw, ncb } = layout;
    return (e) => Math.floor(Math.floor(e / cols) / bh) * ncb + Math.floor((e % cols) / bw);
  }
  const { cols, groupSize } = layout;
  const ng = cols / groupSize;
  return (e) => Math.floor(e / cols) * ng + Math.floor((e % cols) / groupSize);
};

const isGroup = (args: QuantizationArgs) => args.strategy === "group" || args.strategy === "tensor_group";

const INT_OUT: ReadonlyArray<DType> = ["i8", "i16", "i32", "f32", "f64"];

/**
 * The f32 × int hot path on the active kernel backend, processed in row chunks of about 1M elements so the f32
 * kernel output stays in cache while it is converted to the storage dtype. Null when the case is not covered.
 */
const tryKernel = (x: Tensor, p: Prepared, args: QuantizationArgs, fake: boolean, outDType: DType): Tensor | null => {
  if (x.dtype !== "f32" || p.Seff !== "f32" || args.type !== "int" || p.layout.kind !== "rows" || !INT_OUT.includes(outDType)) return null;
  const n = x.size;
  const { cols, groupSize } = p.layout;
  const rows = n / cols;
  const ng = cols / groupSize;
  const xs = x.data as Float32Array;
  const scale = p.seff instanceof Float32Array ? p.seff : Float32Array.from(p.seff);
  const zp = p.zp === null ? null : Float32Array.from(p.zp);
  const k = kernels();
  if (outDType === "f32") {
    const o = new Float32Array(n);
    k.quantizeGroups(xs, rows, cols, groupSize, scale, zp, p.qMin, p.qMax, fake, o);
    return new Tensor("f32", x.shape, o);
  }
  const store = allocStorage(outDType, n);
  const out = store as unknown as { set(a: ArrayLike<number>, offset: number): void };
  const chunk = Math.max(1, Math.floor(2 ** 20 / Math.max(cols, 1)));
  // int8 storage of ≤ 8-bit codes: the kernel writes into wasm memory and SIMD converts there (no per-element JS)
  const scratch = outDType === "i8" && p.qMin >= -128 && p.qMax <= 127 ? i8Scratch(Math.min(chunk, rows) * cols) : null;
  const buf = scratch !== null ? scratch.f32 : new Float32Array(Math.min(chunk, rows) * cols);
  for (let r0 = 0; r0 < rows; r0 += chunk) {
    const m = Math.min(chunk, rows - r0);
    const o = buf.subarray(0, m * cols);
    k.quantizeGroups(
      xs.subarray(r0 * cols, (r0 + m) * cols),
      m,
      cols,
      groupSize,
      scale.subarray(r0 * ng, (r0 + m) * ng),
      zp === null ? null : zp.subarray(r0 * ng, (r0 + m) * ng),
      p.qMin,
      p.qMax,
      fake,
      o,
    );
    out.set(scratch !== null ? scratch.convert(m * cols) : o, r0 * cols);
  }
  return new Tensor(outDType, x.shape, store);
};

const run = (op: string, x: Tensor, scale: Tensor, zeroPoint: Tensor | null, args: QuantizationArgs, opts: QuantizeOptions, fake: boolean) => {
  if (!isFloatDType(x.dtype)) return E.left<SchemeError, Tensor>(unsupported(op, `x must be a float tensor (f64, f32, bf16, f16), got ${x.dtype}`));
  const pr = prepare(op, x, x.dtype, scale, zeroPoint, args, opts.globalScale, opts.gIdx);
  if (E.isLeft(pr)) return pr;
  const p = pr.right;
  const R = promote(p.X, p.Seff);
  const outDType: DType = fake ? (isGroup(args) ? p.X : p.Seff) : (opts.dtype ?? (isGroup(args) ? p.X : R));
  const fast = tryKernel(x, p, args, fake, outDType);
  if (fast !== null) return E.right<SchemeError, Tensor>(fast);
  const rR = rounder(R);
  const rX = rounder(p.X);
  const rE = rounder(p.Seff);
  const rnd = roundElement(args, R);
  const xv = x.dtype === "f64" ? (x.data as Float64Array) : floatValues(x);
  const n = xv.length;
  const out = new Float64Array(n);
  const { seff, zp, qMin, qMax } = p;
  const one = (e: number, i: number): void => {
    const s = seff[i]!;
    let y = rR(xv[e]! / s);
    if (zp !== null) y = rR(y + rX(zp[i]!));
    y = Number.isNaN(y) ? y : rR(Math.min(Math.max(y, qMin), qMax));
    let q = rR(rnd(y));
    if (fake) {
      q = rE(q);
      if (zp !== null) q = rE(q - rE(zp[i]!));
      q = rE(q * s);
    }
    out[e] = q;
  };
  if (p.layout.kind === "rows") {
    const { cols, groupSize } = p.layout;
    const ng = cols / groupSize;
    for (let r = 0, e = 0; e < n; r++)
      for (let g = 0; g < ng; g++) {
        const i = r * ng + g;
        for (let j = 0; j < groupSize; j++, e++) one(e, i);
      }
  } else if (p.layout.kind === "block") {
    const { cols, bh, bw, ncb } = p.layout;
    for (let r = 0, e = 0; e < n; r++) {
      const base = Math.floor(r / bh) * ncb;
      for (let c0 = 0, cb = 0; c0 < cols; c0 += bw, cb++) {
        const end = Math.min(c0 + bw, cols);
        for (let c = c0; c < end; c++, e++) one(e, base + cb);
      }
    }
  } else {
    const idx = p.layout.index;
    for (let e = 0; e < n; e++) one(e, idx(e));
  }
  return E.right<SchemeError, Tensor>(encodeOutput(outDType, out, x.shape));
};

/** Storage encodings of exact values, without the general minifloat encoder (hot for fp8/fp4 weights). */
const encodeOutput = (d: DType, v: Float64Array, shape: ReadonlyArray<number>): Tensor => {
  if (d === "f8_e4m3fn") {
    const codes = new Uint8Array(v.length);
    for (let i = 0; i < v.length; i++) codes[i] = fp8CodeOfExact(v[i]!);
    return new Tensor(d, shape, codes);
  }
  if (d === "f4_e2m1") {
    const codes = new Uint8Array(Math.ceil(v.length / 2));
    for (let i = 0; i < v.length; i++) {
      const x = v[i]!;
      const c = FP4_CODE[Math.abs(x) * 2] ?? fp4e2m1FromNumber(x) & 7;
      const code = (x < 0 || Object.is(x, -0) ? 8 : 0) | c;
      codes[i >> 1]! |= code << ((i & 1) * 4);
    }
    return new Tensor(d, shape, codes);
  }
  return castFromNumbers(d, v, shape);
};

// |x|·2 → e2m1 code for the eight magnitudes {0, .5, 1, 1.5, 2, 3, 4, 6}
const FP4_CODE: Readonly<Record<number, number>> = { 0: 0, 1: 1, 2: 2, 3: 3, 4: 4, 6: 5, 8: 6, 12: 7 };

const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

/** e4m3fn code of a value that is exactly representable (NaN → 0x7f like torch). */
const fp8CodeOfExact = (x: number): number => {
  if (Number.isNaN(x)) return 0x7f;
  const sign = x < 0 || Object.is(x, -0) ? 0x80 : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  if (a < 2 ** -6) return sign | (a * 512);
  F[0] = a;
  const b = U[0]!;
  const e = ((b >>> 23) & 0xff) - 127;
  if (e > 8) return fp8e4m3FromNumber(x); // out of range: the general encoder decides (NaN)
  return sign | ((e + 7) << 3) | ((b >>> 20) & 7);
};

/**
 * compressed-tensors 0.20.0 `quantize`: y = x / s (s / global_scale with a global scale), + zp, clamp to the range,
 * then round (int: half to even; fp8: RNE cast; fp4/fp6: CT's grid rounding). Output is in torch's result dtype
 * (x's dtype for group strategies) unless `opts.dtype` asks for a storage dtype.
 */
export const quantize = (
  x: Tensor,
  scale: Tensor,
  zeroPoint: Tensor | null,
  args: QuantizationArgs,
  opts: QuantizeOptions = {},
): E.Either<SchemeError, Tensor> => run("quantize", x, scale, zeroPoint, args, opts, false);

/** compressed-tensors 0.20.0 `fake_quantize` (the fused quantize-dequantize: no integer intermediate). */
export const fakeQuantize = (
  x: Tensor,
  scale: Tensor,
  zeroPoint: Tensor | null,
  args: QuantizationArgs,
  opts: { readonly globalScale?: Tensor; readonly gIdx?: Int32Array } = {},
): E.Either<SchemeError, Tensor> => run("fakeQuantize", x, scale, zeroPoint, args, opts, true);

/**
 * compressed-tensors 0.20.0 `dequantize`: (q − zp) · s in the (effective) scale's dtype, cast to `opts.dtype`, by
 * default the scale's dtype. q may be any dtype (int codes, fp8/fp4 codes, floats).
 */
export const dequantize = (
  q: Tensor,
  scale: Tensor,
  zeroPoint: Tensor | null,
  args: QuantizationArgs,
  opts: QuantizeOptions = {},
): E.Either<SchemeError, Tensor> => {
  const op = "dequantize";
  const pr = prepare(op, q, "f32", scale, zeroPoint, args, opts.globalScale, opts.gIdx);
  if (E.isLeft(pr)) return pr;
  const p = pr.right;
  const rE = rounder(p.Seff);
  const idx = scaleIndex(p.layout);
  const qv = toFloat64(q).data;
  const out = new Float64Array(qv.length);
  for (let e = 0; e < qv.length; e++) {
    const i = idx(e);
    let d = rE(qv[e]!);
    if (p.zp !== null) d = rE(d - rE(p.zp[i]!));
    out[e] = rE(d * p.seff[i]!);
  }
  return E.right(castFromNumbers(opts.dtype ?? p.S, out, q.shape));
};
