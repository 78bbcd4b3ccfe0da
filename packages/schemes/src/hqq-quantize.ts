import { type Tensor, f32, roundHalfEven, toFloat32, zeros } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type SchemeError, unsupported } from "./errors.js";
import { isFloatDType } from "./working-dtype.js";

// HQQ (mobiusml/hqq 0.2.8 `Quantizer.quantize` with its default optimizer `optimize_weights_proximal_legacy`):
// calibration-free affine quantization whose zero point is refined by half-quadratic proximal iterations while the
// (inverse) scale stays at its min-max value. Every elementwise op is rounded to f32 as hqq's CPU path computes in
// float32; sums are taken in f64 and rounded once (torch's f32 cascade sums agree to about an ulp).

/** hqq's Quantizer.SUPPORTED_BITS. */
export const HQQ_BITS = [8, 6, 5, 4, 3, 2, 1.58, 1] as const;
export type HqqBits = (typeof HQQ_BITS)[number];

/** The proximal solver's parameters; hqq 0.2.8's legacy loop reads kappa but no longer applies it (β stays fixed). */
export interface HqqOptParams {
  readonly lpNorm: number;
  readonly beta: number;
  readonly iters: number;
}

export const HQQ_OPT_DEFAULTS: HqqOptParams = { lpNorm: 0.7, beta: 10, iters: 20 };

export interface HqqQuantizeOptions {
  readonly nbits: HqqBits;
  /** Consecutive elements per group along `axis` of the flattened weight; null = whole rows (axis 1) / columns (axis 0). */
  readonly groupSize?: number | null;
  readonly axis?: 0 | 1;
  readonly channelWise?: boolean;
  readonly optimize?: boolean;
  readonly roundZero?: boolean;
  readonly optParams?: HqqOptParams;
}

export interface HqqQuantized {
  /** Unpacked codes in [0, 2^b − 1] (b = 1.58 → [0, 2]), in hqq's grouped shape ([numel/g, g] for axis 1, [g, numel/g] for axis 0). */
  readonly codes: Tensor<"u8">;
  /** Dequantization scale (hqq's meta["scale"] = 1/s_inv): [groups, 1] for axis 1, [1, groups] for axis 0, [] tensor-wise. */
  readonly scale: Tensor<"f32">;
  /** Float zero point, same shape as scale (not integer after optimization, even with roundZero). */
  readonly zero: Tensor<"f32">;
  /** The original weight shape. */
  readonly shape: ReadonlyArray<number>;
  readonly nbits: HqqBits;
  readonly groupSize: number | null;
  readonly axis: 0 | 1;
  /** Proximal steps that ran (0 without optimization). */
  readonly iterations: number;
}

const fr = Math.fround;

interface Groups {
  readonly count: number;
  readonly len: number;
  readonly of: (i: number) => number;
  readonly groupedShape: number[];
  readonly metaShape: number[];
}

const groupsOf = (shape: ReadonlyArray<number>, numel: number, gs: number | null, axis: 0 | 1, channelWise: boolean): Groups => {
  if (!channelWise) return { count: 1, len: numel, of: () => 0, groupedShape: [...shape], metaShape: [] };
  const [rows, cols] = gs === null ? [shape[0]!, shape[1]!] : axis === 1 ? [numel / gs, gs] : [gs, numel / gs];
  if (axis === 1) return { count: rows, len: cols, of: (i) => Math.floor(i / cols), groupedShape: [rows, cols], metaShape: [rows, 1] };
  return { count: cols, len: rows, of: (i) => i % cols, groupedShape: [rows, cols], metaShape: [1, cols] };
};

const checkOptions = (weight: Tensor, o: HqqQuantizeOptions): E.Either<SchemeError, void> => {
  const op = "hqqQuantize";
  const bad = (d: string) => E.left(unsupported(op, d));
  if (!isFloatDType(weight.dtype)) return bad(`weight must be f64/f32/bf16/f16, got ${weight.dtype}`);
  if (weight.rank !== 2 || weight.size === 0) return bad(`weight must be a non-empty 2-D [out, in] tensor, got shape [${weight.shape}]`);
  if (!(HQQ_BITS as ReadonlyArray<number>).includes(o.nbits)) return bad(`nbits=${o.nbits} not supported (hqq supports ${HQQ_BITS.join(", ")})`);
  if (o.axis !== undefined && o.axis !== 0 && o.axis !== 1) return bad(`axis should be either 0 or 1, got ${o.axis}`);
  const gs = o.groupSize === undefined ? 64 : o.groupSize;
  if (gs !== null && (!Number.isInteger(gs) || gs < 1 || weight.size % gs !== 0))
    return bad(`group_size should be a positive divisor of the tensor's ${weight.size} elements, got ${gs}`);
  const p = o.optParams ?? HQQ_OPT_DEFAULTS;
  if (!(p.lpNorm > 0 && p.lpNorm <= 1) || !(p.beta > 0) || !Number.isInteger(p.iters) || p.iters < 1)
    return bad(`optParams need 0 < lpNorm ≤ 1, beta > 0 and a positive integer iters, got ${JSON.stringify(p)}`);
  return E.right(undefined);
};

/** One legacy proximal step (hqq `optimize_weights_proximal_legacy_step`): mean |W − W_r| of the input zero, and the next zero. */
const proximalStep = (w: Float32Array, g: Groups, s: Float32Array, z: Float32Array, maxV: number, p: HqqOptParams): number => {
  const c = fr(1 / p.beta);
  const e = fr(p.lpNorm - 1);
  const sums = new Float64Array(g.count);
  let err = 0;
  for (let i = 0; i < w.length; i++) {
    const k = g.of(i);
    const si = s[k]!;
    const zi = z[k]!;
    const wi = w[i]!;
    const q = Math.min(Math.max(roundHalfEven(fr(fr(wi * si) + zi)), 0), maxV);
    const d = fr(wi - fr(fr(q - zi) / si));
    const a = Math.abs(d);
    err += a;
    // shrink_lp_op: sign(x)·relu(|x| − |x|^(p−1)/β); |x| = 0 gives −inf → 0
    const shrunk = Math.max(p.lpNorm === 1 ? fr(a - c) : fr(a - fr(c * fr(a ** e))), 0) * Math.sign(d);
    sums[k]! += fr(q - fr(fr(wi - shrunk) * si));
  }
  for (let k = 0; k < g.count; k++) z[k] = fr(fr(sums[k]!) / g.len);
  return fr(fr(err) / w.length);
};

/** The zero after hqq's early-stopped loop: the step that fails to improve the error still returns its updated zero. */
const optimizeZero = (w: Float32Array, g: Groups, s: Float32Array, z: Float32Array, maxV: number, p: HqqOptParams): number => {
  let best = Infinity;
  for (let i = 0; i < p.iters; i++) {
    const err = proximalStep(w, g, s, z, maxV, p);
    if (!(err < best)) return i + 1;
    best = err;
  }
  return p.iters;
};

/** hqq's Quantizer.quantize(W, nbits, channel_wise, group_size, optimize, round_zero, axis, bitpack=False) on CPU. */
export const hqqQuantize = (weight: Tensor, options: HqqQuantizeOptions): E.Either<SchemeError, HqqQuantized> => {
  const ok = checkOptions(weight, options);
  if (E.isLeft(ok)) return ok;
  const axis = options.axis ?? 0;
  const groupSize = options.groupSize === undefined ? 64 : options.groupSize;
  const channelWise = options.channelWise ?? true;
  const w = toFloat32(weight).data;
  const g = groupsOf(weight.shape, w.length, groupSize, axis, channelWise);
  const lo = new Float32Array(g.count).fill(Infinity);
  const hi = new Float32Array(g.count).fill(-Infinity);
  for (let i = 0; i < w.length; i++) {
    const k = g.of(i);
    lo[k] = Math.min(lo[k]!, w[i]!);
    hi[k] = Math.max(hi[k]!, w[i]!);
  }
  const maxV = roundHalfEven(2 ** options.nbits - 1);
  const s = new Float32Array(g.count);
  const z = new Float32Array(g.count);
  for (let k = 0; k < g.count; k++) {
    const denom = fr(hi[k]! - lo[k]!);
    s[k] = Math.abs(denom) <= fr(1e-4) ? 1 : Math.min(fr(fr(1 / denom) * maxV), 2e4); // python `max_v / t` is t.reciprocal() * max_v
    z[k] = fr(-lo[k]! * s[k]!);
    if (options.roundZero) z[k] = roundHalfEven(z[k]!);
  }
  const optimize = (options.optimize ?? true) && channelWise;
  const iterations = optimize ? optimizeZero(w, g, s, z, maxV, options.optParams ?? HQQ_OPT_DEFAULTS) : 0;
  const codesTensor = zeros("u8", g.groupedShape);
  const codes = codesTensor.data;
  for (let i = 0; i < w.length; i++) {
    const k = g.of(i);
    codes[i] = Math.min(Math.max(roundHalfEven(fr(fr(w[i]! * s[k]!) + z[k]!)), 0), maxV);
  }
  const scale = s.map((v) => fr(1 / v));
  return E.right({
    codes: codesTensor,
    scale: f32(scale, g.metaShape),
    zero: f32(z, g.metaShape),
    shape: [...weight.shape],
    nbits: options.nbits,
    groupSize,
    axis,
    iterations,
  });
};

/** hqq's dequantization in f32: ((W_q − zero)·scale) reshaped to the original shape. */
export const hqqDequantize = (q: HqqQuantized): Tensor<"f32"> => {
  const c = q.codes.data;
  const sc = q.scale.data;
  const z = q.zero.data;
  const g = groupsOf(q.shape, c.length, q.groupSize, q.axis, q.scale.shape.length > 0);
  const out = new Float32Array(c.length);
  for (let i = 0; i < c.length; i++) {
    const k = g.of(i);
    out[i] = fr(fr(c[i]! - z[k]!) * sc[k]!);
  }
  return f32(out, q.shape);
};
