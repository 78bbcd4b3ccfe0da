import * as E from "fp-ts/lib/Either.js";
import { allocStorage, isPacked4 } from "../dtype.js";
import { type TensorError, dtypeMismatch, invalidArgument, shapeMismatch, unsupportedDType } from "../errors.js";
import { Tensor, getNumber } from "../tensor.js";
import type { DType } from "../dtype.js";
import { type FloatDType, allocFloat, fmtShape, normAxis, requireFloat, splitAt } from "./check.js";
import { copierFor } from "./shape.js";
import { rmsNormRows } from "../backend-js.js";
import { kernels } from "../backend.js";

const fr = Math.fround;

// ----- softmax -----

const softmaxImpl =
  (op: string, logForm: boolean) =>
  (x: Tensor, axis: number): E.Either<TensorError, Tensor<FloatDType>> => {
    const t = requireFloat(op, x);
    if (E.isLeft(t)) return t;
    const ax = normAxis(op, axis, x.rank);
    if (E.isLeft(ax)) return ax;
    const [outer, len, inner] = splitAt(x.shape, ax.right);
    const v = t.right.data;
    const out = allocFloat(t.right.dtype, v.length);
    const r = t.right.dtype === "f32" ? fr : (a: number) => a;
    const e = new Float64Array(len);
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        // Subtracting the max keeps exp() in range (a logit of 1e3 would overflow otherwise).
        let m = -Infinity;
        for (let j = 0; j < len; j++) {
          const a = v[base + j * inner]!;
          if (a > m || Number.isNaN(a)) m = a;
          if (Number.isNaN(a)) break;
        }
        // x − max and exp round to the dtype like torch's kernels (x − max in f32 decides exp's argument); the sum
        // stays in f64: rounding it to f32 before the log would cost up to ~500 ulps of log_softmax near the max.
        let acc = 0;
        for (let j = 0; j < len; j++) {
          e[j] = r(Math.exp(r(v[base + j * inner]! - m)));
          acc += e[j]!;
        }
        const s = acc;
        const ls = Math.log(s);
        for (let j = 0; j < len; j++) out[base + j * inner] = logForm ? r(r(v[base + j * inner]! - m) - ls) : r(e[j]! / s);
      }
    }
    return E.right(new Tensor(t.right.dtype, x.shape, out));
  };

/** softmax along an axis, numerically stable (max subtracted first). */
export const softmax = softmaxImpl("softmax", false);
/** log_softmax along an axis: x − max − log Σ exp(x − max). */
export const logSoftmax = softmaxImpl("logSoftmax", true);

// ----- rmsnorm -----

/**
 * RMS norm over the last axis exactly as HF `LlamaRMSNorm`: the input is cast to f32, variance = mean(x²) in f32,
 * h = x · rsqrt(variance + eps) in f32, cast back to the input dtype, then multiplied by `weight`.
 */
export const rmsnorm = (x: Tensor, weight: Tensor, opts: { readonly eps: number }): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "rmsnorm";
  const t = requireFloat(op, x);
  if (E.isLeft(t)) return t;
  const w = requireFloat(op, weight);
  if (E.isLeft(w)) return w;
  if (w.right.dtype !== t.right.dtype) return E.left(dtypeMismatch(op, "weight", t.right.dtype, w.right.dtype));
  const d = x.shape[x.rank - 1];
  if (d === undefined || weight.rank !== 1 || weight.shape[0] !== d)
    return E.left(shapeMismatch(op, [x.shape, weight.shape], "weight must be 1-D with the size of the last axis of x"));
  if (!(opts.eps >= 0)) return E.left(invalidArgument(op, "eps", `must be ≥ 0, got ${opts.eps}`));
  const v = t.right.data;
  const rows = d === 0 ? 0 : v.length / d;
  const out = allocFloat(t.right.dtype, v.length);
  if (v instanceof Float32Array && rows > 0) kernels().rmsNorm(v, rows, d, w.right.data as Float32Array, opts.eps, out as Float32Array);
  else if (rows > 0) rmsNormRows(v, rows, d, w.right.data, opts.eps, out);
  return E.right(new Tensor(t.right.dtype, x.shape, out));
};

// ----- rope -----

/** Llama-3 `rope_scaling` (config.json names in camelCase). */
export interface Llama3RopeScaling {
  readonly factor: number;
  readonly lowFreqFactor: number;
  readonly highFreqFactor: number;
  readonly originalMaxPositionEmbeddings: number;
}

/** transformers' "linear" rope_type: every frequency divided by `factor` (position interpolation). */
export interface LinearRopeScaling {
  readonly ropeType: "linear";
  readonly factor: number;
}

export type RopeScaling = Llama3RopeScaling | LinearRopeScaling;

/**
 * The rotary inverse frequencies (length headDim/2) in f32, computed like transformers:
 * `1 / theta ** (arange(0, dim, 2).float() / dim)`, then `_compute_llama3_parameters` (or the linear division) when
 * `scaling` is given. Every step rounds to f32 as the torch ops do (python scalars enter the f32 ops as f32).
 */
export const ropeInvFreq = (headDim: number, theta: number, scaling?: RopeScaling): E.Either<TensorError, Float32Array> => {
  const op = "ropeInvFreq";
  if (!Number.isInteger(headDim) || headDim <= 0 || headDim % 2 !== 0) return E.left(invalidArgument(op, "headDim", `must be a positive even integer, got ${headDim}`));
  if (!(theta > 0)) return E.left(invalidArgument(op, "theta", `must be > 0, got ${theta}`));
  const half = headDim / 2;
  const inv = new Float32Array(half);
  for (let i = 0; i < half; i++) inv[i] = fr(1 / fr(fr(theta) ** fr((2 * i) / headDim)));
  if (!scaling) return E.right(inv);
  if ("ropeType" in scaling) {
    if (!(scaling.factor > 0)) return E.left(invalidArgument(op, "scaling", `needs factor > 0, got ${scaling.factor}`));
    return E.right(inv.map((f) => fr(f / fr(scaling.factor))));
  }
  const { factor, lowFreqFactor: low, highFreqFactor: high, originalMaxPositionEmbeddings: old } = scaling;
  if (!(factor > 0) || !(low > 0) || !(high > low) || !(old > 0))
    return E.left(invalidArgument(op, "scaling", `needs factor > 0, 0 < lowFreqFactor < highFreqFactor, originalMaxPositionEmbeddings > 0; got ${JSON.stringify(scaling)}`));
  const lowWavelen = fr(old / low);
  const highWavelen = fr(old / high);
  const twoPi = fr(2 * Math.PI);
  for (let i = 0; i < half; i++) {
    const f = inv[i]!;
    const wavelen = fr(twoPi / f);
    const llama = wavelen > lowWavelen ? fr(f / fr(factor)) : f;
    const smooth = fr(fr(fr(fr(old) / wavelen) - fr(low)) / fr(high - low));
    const smoothed = fr(fr(fr(fr(1 - smooth) * llama) / fr(factor)) + fr(smooth * llama));
    const medium = !(wavelen < highWavelen) && !(wavelen > lowWavelen);
    inv[i] = medium ? smoothed : llama;
  }
  return E.right(inv);
};

/**
 * cos and sin of f32(position) · inv_freq, rounded to f32, for each position: [positions, headDim/2] each (both halves
 * of HF's `emb = cat(freqs, freqs)` repeat them).
 */
export const ropeCosSin = (invFreq: Float32Array, positions: ArrayLike<number>): { readonly cos: Float32Array; readonly sin: Float32Array } => {
  const half = invFreq.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let p = 0; p < positions.length; p++) {
    const pf = fr(positions[p]!);
    for (let i = 0; i < half; i++) {
      const a = fr(pf * invFreq[i]!);
      cos[p * half + i] = Math.cos(a);
      sin[p * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
};

export interface RopeOptions {
  readonly theta: number;
  /** "rotate-half": HF Llama (pairs i, i + d/2); "interleaved": llama2.c / GPT-J (pairs 2i, 2i+1). */
  readonly layout: "rotate-half" | "interleaved";
  readonly scaling?: RopeScaling;
  /** Axis of x that positions index (default -2, HF's [batch, heads, seq, headDim]). The last axis is headDim. */
  readonly seqAxis?: number;
}

/**
 * Rotary position embedding of x (last axis = head_dim) at the given positions. cos/sin are computed in f32 from
 * f32 inv_freq and f32 positions like HF `LlamaRotaryEmbedding`, then x·cos + rotate(x)·sin in x's dtype.
 */
export const rope = (x: Tensor, positions: ReadonlyArray<number> | Tensor, opts: RopeOptions): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "rope";
  const t = requireFloat(op, x);
  if (E.isLeft(t)) return t;
  const hd = x.shape[x.rank - 1];
  if (hd === undefined || x.rank < 2) return E.left(invalidArgument(op, "x", `needs rank ≥ 2 ([..., seq, ..., headDim]), got shape ${fmtShape(x.shape)}`));
  const ax = normAxis(op, opts.seqAxis ?? -2, x.rank);
  if (E.isLeft(ax)) return ax;
  if (ax.right === x.rank - 1) return E.left(invalidArgument(op, "seqAxis", `${opts.seqAxis} names the head_dim axis of shape ${fmtShape(x.shape)}`));
  const pos = intValues(op, "positions", positions);
  if (E.isLeft(pos)) return pos;
  const [outer, seq, inner] = splitAt(x.shape, ax.right);
  if (pos.right.length !== seq)
    return E.left(shapeMismatch(op, [x.shape, [pos.right.length]], `${pos.right.length} positions for an axis ${opts.seqAxis ?? -2} of size ${seq}`));
  const invE = ropeInvFreq(hd, opts.theta, opts.scaling);
  if (E.isLeft(invE)) return E.left({ ...invE.left, op } as TensorError);
  const half = hd / 2;
  const { cos, sin } = ropeCosSin(invE.right, pos.right);
  const r = t.right.dtype === "f32" ? fr : (a: number) => a;
  const v = t.right.data;
  const out = allocFloat(t.right.dtype, v.length);
  const heads = inner / hd;
  for (let o = 0; o < outer; o++) {
    for (let p = 0; p < seq; p++) {
      const cs = p * half;
      for (let h = 0; h < heads; h++) {
        const b = (o * seq + p) * inner + h * hd;
        for (let i = 0; i < half; i++) {
          const c = cos[cs + i]!;
          const s = sin[cs + i]!;
          const [j0, j1] = opts.layout === "interleaved" ? [b + 2 * i, b + 2 * i + 1] : [b + i, b + i + half];
          const x0 = v[j0]!;
          const x1 = v[j1]!;
          out[j0] = r(r(x0 * c) - r(x1 * s));
          out[j1] = r(r(x1 * c) + r(x0 * s));
        }
      }
    }
  }
  return E.right(new Tensor(t.right.dtype, x.shape, out));
};

// ----- embedding -----

const INT_DTYPES: ReadonlyArray<DType> = ["i64", "i32", "i16", "i8", "u8", "u4", "i4"];

const intValues = (op: string, arg: string, ids: ReadonlyArray<number> | Tensor): E.Either<TensorError, number[]> => {
  if (ids instanceof Tensor) {
    if (!INT_DTYPES.includes(ids.dtype)) return E.left(unsupportedDType(op, ids.dtype, INT_DTYPES));
    return E.right(Array.from({ length: ids.size }, (_, i) => getNumber(ids, i)));
  }
  const bad = ids.findIndex((v) => !Number.isSafeInteger(v));
  return bad >= 0 ? E.left(invalidArgument(op, `${arg}[${bad}]`, `must be an integer, got ${ids[bad]}`)) : E.right([...ids]);
};

/** Rows of a 2-D table (any dtype) gathered by integer ids: shape [...ids.shape, dim]. */
export const embedding = <D extends DType>(table: Tensor<D>, ids: ReadonlyArray<number> | Tensor): E.Either<TensorError, Tensor<D>> => {
  const op = "embedding";
  if (table.rank !== 2) return E.left(invalidArgument(op, "table", `must be 2-D [vocab, dim], got shape ${fmtShape(table.shape)}`));
  const idv = intValues(op, "ids", ids);
  if (E.isLeft(idv)) return idv;
  const [vocab, dim] = table.shape as [number, number];
  const bad = idv.right.findIndex((i) => i < 0 || i >= vocab);
  if (bad >= 0) return E.left(invalidArgument(op, `ids[${bad}]`, `${idv.right[bad]} is out of range for a table of shape ${fmtShape(table.shape)}`));
  const idShape = ids instanceof Tensor ? ids.shape : [ids.length];
  const out = allocStorage(table.dtype, idv.right.length * dim);
  if (isPacked4(table.dtype)) {
    const copy = copierFor(table.dtype);
    idv.right.forEach((id, k) => {
      for (let j = 0; j < dim; j++) copy(table.data, id * dim + j, out, k * dim + j);
    });
  } else {
    // biome-ignore lint/suspicious/noExplicitAny: same-typed storages
    const src = table.data as any;
    idv.right.forEach((id, k) => {
      (out as Float64Array).set(src.subarray(id * dim, (id + 1) * dim), k * dim);
    });
  }
  return E.right(new Tensor(table.dtype, [...idShape, dim], out));
};
