import { roundHalfEven } from "./dtype.js";
import { expF64, lanes8Sum } from "./exp-f64.js";
import type { Kernels, Side, Uplo } from "./kernels.js";

// The reference backend: plain loops written for clarity and exactness, portable to browsers. It is the spec the
// native kernels are tested against, and the fallback when the addon is unavailable.

type F = Float32Array | Float64Array;

const gemm = <A extends F>(
  m: number,
  n: number,
  k: number,
  a: A,
  transA: boolean,
  b: A,
  transB: boolean,
  c: A,
  alpha: number,
  beta: number,
): void => {
  const isF32 = a instanceof Float32Array;
  // Accumulate a whole output row in a buffer of the operand precision (f32 accumulation for f32).
  const acc = isF32 ? new Float32Array(n) : new Float64Array(n);
  // B rows as contiguous k-vectors: when transB, B is n×k and row j of Bᵀ is strided; pack Bᵀ once.
  let bk: F = b;
  if (transB) {
    bk = isF32 ? new Float32Array(k * n) : new Float64Array(k * n);
    for (let j = 0; j < n; j++) for (let p = 0; p < k; p++) bk[p * n + j] = b[j * k + p]!;
  }
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    for (let p = 0; p < k; p++) {
      const aip = transA ? a[p * m + i]! : a[i * k + p]!;
      if (aip === 0) continue;
      const off = p * n;
      for (let j = 0; j < n; j++) acc[j]! += aip * bk[off + j]!;
    }
    const row = i * n;
    if (beta === 0) for (let j = 0; j < n; j++) c[row + j] = alpha * acc[j]!;
    else for (let j = 0; j < n; j++) c[row + j] = alpha * acc[j]! + beta * c[row + j]!;
  }
};

const syrk = <A extends F>(m: number, n: number, x: A, h: A, alpha: number): void => {
  const isF32 = x instanceof Float32Array;
  const acc = isF32 ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) {
    acc.fill(0);
    for (let r = 0; r < m; r++) {
      const xi = x[r * n + i]!;
      if (xi === 0) continue;
      const off = r * n;
      for (let j = 0; j <= i; j++) acc[j]! += xi * x[off + j]!;
    }
    for (let j = 0; j <= i; j++) {
      const v = h[i * n + j]! + alpha * acc[j]!;
      h[i * n + j] = v;
      if (j !== i) h[j * n + i] = v;
    }
  }
};

const potrf = <A extends F>(a: A, n: number): number => {
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j]!;
    for (let p = 0; p < j; p++) d -= a[j * n + p]! * a[j * n + p]!;
    if (!(d > 0)) return j;
    const ljj = Math.sqrt(d);
    a[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j]!;
      for (let p = 0; p < j; p++) s -= a[i * n + p]! * a[j * n + p]!;
      a[i * n + j] = s / ljj;
    }
  }
  for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) a[i * n + j] = 0;
  return -1;
};

const potri = <A extends F>(l: A, n: number): void => {
  // inv(A) = inv(L)ᵀ inv(L). First invert L in place (lower triangular), then form the product.
  const isF32 = l instanceof Float32Array;
  const inv = isF32 ? new Float64Array(n * n) : new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    inv[j * n + j] = 1 / l[j * n + j]!;
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let p = j; p < i; p++) s -= l[i * n + p]! * inv[p * n + j]!;
      inv[i * n + j] = s / l[i * n + i]!;
    }
  }
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = i; p < n; p++) s += inv[p * n + i]! * inv[p * n + j]!;
      l[i * n + j] = s;
      l[j * n + i] = s;
    }
  }
};

const trsm = <A extends F>(side: Side, uplo: Uplo, transT: boolean, unitDiag: boolean, m: number, n: number, t: A, b: A): void => {
  const dim = side === "left" ? m : n;
  // Effective lower/upper after transposition.
  const lowerEff = (uplo === "lower") !== transT;
  const T = (i: number, j: number): number => (transT ? t[j * dim + i]! : t[i * dim + j]!);
  if (side === "left") {
    // op(T) X = B, column by column of B (all columns at once, row-wise updates).
    const order = lowerEff ? range(0, m) : range(m - 1, -1);
    for (const i of order) {
      const rowI = i * n;
      const others = lowerEff ? range(0, i) : range(m - 1, i);
      for (const p of others) {
        const tip = T(i, p);
        if (tip === 0) continue;
        const rowP = p * n;
        for (let j = 0; j < n; j++) b[rowI + j]! -= tip * b[rowP + j]!;
      }
      if (!unitDiag) {
        const d = T(i, i);
        for (let j = 0; j < n; j++) b[rowI + j]! /= d;
      }
    }
  } else {
    // X op(T) = B ⇔ op(T)ᵀ Xᵀ = Bᵀ: row r of X solves x op(T) = b_r.
    const upperEff = !lowerEff; // x T with T upper: forward over columns
    for (let r = 0; r < m; r++) {
      const row = r * n;
      const order = upperEff ? range(0, n) : range(n - 1, -1);
      for (const j of order) {
        let s = b[row + j]!;
        const others = upperEff ? range(0, j) : range(n - 1, j);
        for (const p of others) s -= b[row + p]! * T(p, j);
        b[row + j] = unitDiag ? s : s / T(j, j);
      }
    }
  }
};

/** Integers from `from` toward `to` (exclusive), stepping by ±1. */
const range = (from: number, to: number): number[] => {
  const out: number[] = [];
  if (from <= to) for (let i = from; i < to; i++) out.push(i);
  else for (let i = from; i > to; i--) out.push(i);
  return out;
};

const fwht = (x: Float32Array, rows: number, n: number): void => {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let h = 1; h < n; h *= 2) {
      for (let i = 0; i < n; i += 2 * h) {
        for (let j = i; j < i + h; j++) {
          const u = x[o + j]!;
          const v = x[o + j + h]!;
          x[o + j] = u + v;
          x[o + j + h] = u - v;
        }
      }
    }
  }
};

const dfwht = (x: Float64Array, rows: number, n: number): void => {
  for (let r = 0; r < rows; r++) {
    const o = r * n;
    for (let h = 1; h < n; h *= 2)
      for (let i = 0; i < n; i += 2 * h)
        for (let j = o + i; j < o + i + h; j++) {
          const u = x[j]!;
          const v = x[j + h]!;
          x[j] = u + v;
          x[j + h] = u - v;
        }
  }
};

const groupMinMax = (x: Float32Array, rows: number, cols: number, groupSize: number, outMin: Float32Array, outMax: Float32Array): void => {
  const g = cols / groupSize;
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < g; q++) {
      let lo = Infinity;
      let hi = -Infinity;
      let nan = false;
      const base = r * cols + q * groupSize;
      for (let j = 0; j < groupSize; j++) {
        const v = x[base + j]!;
        if (Number.isNaN(v)) nan = true;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      outMin[r * g + q] = nan ? Number.NaN : lo;
      outMax[r * g + q] = nan ? Number.NaN : hi;
    }
  }
};

const fr = Math.fround;

const quantizeGroups = (
  x: Float32Array,
  rows: number,
  cols: number,
  groupSize: number,
  scale: Float32Array,
  zp: Float32Array | null,
  qmin: number,
  qmax: number,
  fake: boolean,
  out: Float32Array,
): void => {
  const g = cols / groupSize;
  for (let r = 0; r < rows; r++) {
    for (let q = 0; q < g; q++) {
      const s = scale[r * g + q]!;
      const z = zp ? zp[r * g + q]! : 0;
      const base = r * cols + q * groupSize;
      for (let j = 0; j < groupSize; j++) {
        let y = fr(x[base + j]! / s);
        if (zp) y = fr(y + z);
        // torch.clamp propagates NaN; Math.min/max do too.
        y = Math.min(Math.max(y, qmin), qmax);
        y = roundHalfEven(y);
        out[base + j] = fake ? (zp ? fr(fr(y - z) * s) : fr(y * s)) : y;
      }
    }
  }
};

/** The reference table dequantization (see the kernel table). */
const lutDequant = (codes: Uint8Array, lut: Float32Array, scale: Float32Array, zp: Float32Array | null, group: number, scales: number, out: Float32Array): void => {
  for (let g = 0; g < codes.length / group; g++) {
    const si = g % scales;
    const s = scale[si]!;
    const z = zp === null ? 0 : zp[si]!;
    for (let j = g * group; j < (g + 1) * group; j++) out[j] = zp === null ? fr(lut[codes[j]!]! * s) : fr(fr(lut[codes[j]!]! - z) * s);
  }
};

/** The reference causal attention (the definition the native kernel follows), built on this table's sgemm. */
const causalAttention = (
  q: Float32Array,
  k: Float32Array,
  v: Float32Array,
  tokens: number,
  past: number,
  heads: number,
  kvHeads: number,
  d: number,
  window: number,
  scale: number,
  out: Float32Array,
): void => {
  const group = heads / kvHeads;
  const n = past + tokens;
  const qh = new Float32Array(tokens * d);
  const kh = new Float32Array(n * d);
  const vh = new Float32Array(n * d);
  const scores = new Float32Array(tokens * n);
  const oh = new Float32Array(tokens * d);
  for (let g = 0; g < kvHeads; g++) {
    for (let t = 0; t < n; t++) {
      kh.set(k.subarray((t * kvHeads + g) * d, (t * kvHeads + g + 1) * d), t * d);
      vh.set(v.subarray((t * kvHeads + g) * d, (t * kvHeads + g + 1) * d), t * d);
    }
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let t = 0; t < tokens; t++) qh.set(q.subarray((t * heads + h) * d, (t * heads + h + 1) * d), t * d);
      gemm(tokens, n, d, qh, false, kh, true, scores, scale, 0);
      for (let i = 0; i < tokens; i++) softmaxRow(scores, i * n, n, window === 0 ? 0 : Math.max(0, past + i - window + 1), past + i);
      gemm(tokens, d, n, scores, false, vh, false, oh, 1, 0);
      for (let t = 0; t < tokens; t++) out.set(oh.subarray(t * d, (t + 1) * d), (t * heads + h) * d);
    }
  }
};

/** One attention row over columns lo..hi (the rest of the row becomes 0). */
const softmaxRow = (scores: Float32Array, row: number, tokens: number, lo: number, hi: number): void => {
  let max = Number.NEGATIVE_INFINITY;
  for (let j = lo; j <= hi; j++) if (scores[row + j]! > max) max = scores[row + j]!;
  scores.fill(0, row, row + lo);
  scores.fill(0, row + hi + 1, row + tokens);
  for (let j = lo; j <= hi; j++) scores[row + j] = expF64(scores[row + j]! - max);
  const inv = 1 / fr(lanes8Sum(scores, row + lo, row + hi));
  for (let j = lo; j <= hi; j++) scores[row + j] = scores[row + j]! * inv;
};

const siluMul = (gate: Float32Array, up: Float32Array, n: number, out: Float32Array): void => {
  for (let i = 0; i < n; i++) {
    const g = gate[i]!;
    out[i] = fr(fr(g / fr(1 + fr(expF64(-g)))) * up[i]!);
  }
};

/** HF LlamaRMSNorm of each row (the definition; @llmq/tensor's `rmsnorm` op and the models' forward use it). */
export const rmsNormRows = (x: Float32Array | Float64Array, rows: number, cols: number, w: Float32Array | Float64Array, eps: number, out: Float32Array | Float64Array): void => {
  const round = out instanceof Float32Array ? fr : (a: number) => a;
  // HF casts the input to f32 first, whatever its dtype; the square of an f32 is exact in f64.
  const square = (v: number): number => {
    const a = fr(v);
    return a * a;
  };
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const variance = fr(lanes8Sum(x, o, o + cols - 1, square) / cols);
    const inv = fr(1 / Math.sqrt(fr(variance + eps)));
    for (let j = 0; j < cols; j++) out[o + j] = round(w[j]! * fr(fr(x[o + j]!) * inv));
  }
};

const rmsNorm = (x: Float32Array, rows: number, cols: number, w: Float32Array, eps: number, out: Float32Array): void => rmsNormRows(x, rows, cols, w, eps, out);

const rope = (x: Float32Array, tokens: number, heads: number, dim: number, cos: Float32Array, sin: Float32Array): void => {
  const half = dim / 2;
  for (let t = 0; t < tokens; t++) {
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * dim;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i]!;
        const x2 = x[o + half + i]!;
        const c = cos[t * half + i]!;
        const s = sin[t * half + i]!;
        x[o + i] = fr(x1 * c) - fr(x2 * s);
        x[o + half + i] = fr(x2 * c) + fr(x1 * s);
      }
    }
  }
};

const add = (a: Float32Array, b: Float32Array, n: number, out: Float32Array): void => {
  for (let i = 0; i < n; i++) out[i] = a[i]! + b[i]!;
};

const scale = (a: Float32Array, s: number, n: number, out: Float32Array): void => {
  const sf = fr(s);
  for (let i = 0; i < n; i++) out[i] = a[i]! * sf;
};

/** max, first argmax and log Σ exp(l − max) of one logit row (see the kernel table's logitStats). */
const rowLse = (l: Float32Array, off: number, n: number): { readonly lse: number; readonly arg: number } => {
  let m = Number.NEGATIVE_INFINITY;
  let arg = 0;
  for (let j = 0; j < n; j++)
    if (l[off + j]! > m) {
      m = l[off + j]!;
      arg = j;
    }
  return { lse: m + Math.log(lanes8Sum(l, off, off + n - 1, (v) => expF64(v - m))), arg };
};

const logitStats = (lq: Float32Array, lr: Float32Array | null, rows: number, vocab: number, targets: Int32Array, out: Float64Array): void => {
  for (let r = 0; r < rows; r++) {
    const off = r * vocab;
    const q = rowLse(lq, off, vocab);
    out[4 * r] = q.lse - lq[off + targets[r]!]!;
    out.fill(0, 4 * r + 1, 4 * r + 4);
    if (lr === null) continue;
    const p = rowLse(lr, off, vocab);
    out[4 * r + 1] = p.lse - lr[off + targets[r]!]!;
    const kl = lanes8Sum(lr, off, off + vocab - 1, (v, j) => {
      const lp = v - p.lse;
      const pr = expF64(lp);
      return pr > 0 ? pr * (lp - (lq[j]! - q.lse)) : 0;
    });
    out[4 * r + 2] = kl > 0 ? kl : 0;
    out[4 * r + 3] = q.arg === p.arg ? 1 : 0;
  }
};

/** The reference kernel table. */
export const jsKernels: Kernels = {
  sgemm: gemm,
  dgemm: gemm,
  ssyrk: syrk,
  dsyrk: syrk,
  spotrf: potrf,
  dpotrf: potrf,
  spotri: potri,
  dpotri: potri,
  strsm: trsm,
  dtrsm: trsm,
  fwht,
  dfwht,
  groupMinMax,
  quantizeGroups,
  siluMul,
  causalAttention,
  lutDequant,
  rmsNorm,
  rope,
  add,
  scale,
  logitStats,
};
