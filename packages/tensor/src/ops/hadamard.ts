import * as E from "fp-ts/lib/Either.js";
import { kernels } from "../backend.js";
import { type TensorError, invalidArgument, unsupportedDType } from "../errors.js";
import type { Kernels } from "../kernels.js";
import { Tensor } from "../tensor.js";
import { type FloatDType, FLOAT_DTYPES, allocFloat, fmtShape, requireFloat } from "./check.js";
import { KNOWN_HADAMARD_BITS } from "./hadamard-known.js";

// Hadamard matrices and transforms as compressed-tensors builds them (transform/utils/hadamard.py):
// - "sylvester": `deterministic_hadamard_matrix`, powers of two only (H_{2n} = [[H, H], [H, -H]]);
// - "known": the basis of `random_hadamard_matrix` before its random signs: with K the largest stored size such
//   that n / K is a power of two (`_fetch_hadamard_divisor`), `_matmul_hadU` applies M = H_K ⊗ H_{n/K} (Sylvester)
//   to each row, so the matrix is Mᵀ and the transform of a row x is x·Mᵀ = M·x.
// Transforms act on the last axis as x @ H (CT applies online transforms as value @ weight).

export type HadamardConstruction = "sylvester" | "known";

export const isPow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0 && n <= 2 ** 30;

const KNOWN_SIZES: ReadonlyArray<number> = Object.keys(KNOWN_HADAMARD_BITS)
  .map(Number)
  .sort((a, b) => b - a);

/** The stored size K that CT picks for n (largest K with n / K a power of two), or undefined. */
export const knownHadamardDivisor = (n: number): number | undefined =>
  Number.isInteger(n) && n > 0 ? KNOWN_SIZES.find((k) => n % k === 0 && isPow2(n / k)) : undefined;

/** True when compressed-tensors can build a Hadamard matrix of size n (2^k, or 2^k times a stored size). */
export const isHadamardSize = (n: number): boolean => isPow2(n) || knownHadamardDivisor(n) !== undefined;

const decoded = new Map<number, Int8Array>();

/** The stored ±1 matrix of size k (row-major), decoded once. */
const knownMatrix = (k: number): Int8Array => {
  const hit = decoded.get(k);
  if (hit) return hit;
  const bin = atob(KNOWN_HADAMARD_BITS[k]!);
  const m = new Int8Array(k * k);
  for (let i = 0; i < m.length; i++) m[i] = (bin.charCodeAt(i >> 3) >> (i & 7)) & 1 ? -1 : 1;
  decoded.set(k, m);
  return m;
};

const resolve = (op: string, n: number, construction: HadamardConstruction | undefined): E.Either<TensorError, HadamardConstruction> => {
  const c = construction ?? (isPow2(n) ? "sylvester" : "known");
  if (c === "sylvester" && !isPow2(n)) return E.left(invalidArgument(op, "n", `the Sylvester construction needs a power of two, got ${n}`));
  if (c === "known" && knownHadamardDivisor(n) === undefined)
    return E.left(invalidArgument(op, "n", `${n} is not 2^k times a known Hadamard size (compressed-tensors cannot build it)`));
  return E.right(c);
};

// ----- transforms -----

/** In place: every length-n row of v becomes row · H (unnormalised). */
const transformRows = (v: Float32Array | Float64Array, rows: number, n: number, c: HadamardConstruction, k: Kernels): void => {
  const K = c === "sylvester" ? 1 : knownHadamardDivisor(n)!;
  const p = n / K;
  // Sylvester part: H_p on each of the K chunks of length p.
  if (p > 1) {
    if (v instanceof Float32Array) k.fwht(v, rows * K, p);
    else k.dfwht(v, rows * K, p);
  }
  if (K === 1) return;
  // Known part: each row, seen as a K×p matrix Y, becomes H_K · Y.
  const hk = knownMatrix(K);
  const h = v instanceof Float32Array ? Float32Array.from(hk) : Float64Array.from(hk);
  if (p === 1) {
    // n = K: all rows at once, V · H_Kᵀ (row x becomes H_K · x).
    const src = v.slice();
    if (v instanceof Float32Array) k.sgemm(rows, K, K, src as Float32Array, false, h as Float32Array, true, v, 1, 0);
    else k.dgemm(rows, K, K, src as Float64Array, false, h as Float64Array, true, v as Float64Array, 1, 0);
    return;
  }
  const tmp = v instanceof Float32Array ? new Float32Array(n) : new Float64Array(n);
  for (let r = 0; r < rows; r++) {
    const row = v.subarray(r * n, (r + 1) * n);
    if (v instanceof Float32Array) k.sgemm(K, p, K, h as Float32Array, false, row as Float32Array, false, tmp as Float32Array, 1, 0);
    else k.dgemm(K, p, K, h as Float64Array, false, row as Float64Array, false, tmp as Float64Array, 1, 0);
    row.set(tmp);
  }
};

// v[i] /= s as a division, not a multiplication by 1/s, so f32 results are correctly rounded quotients. One
// function per array type keeps each loop monomorphic (a shared one runs ~4× slower).
const scaleDown32 = (v: Float32Array, s: number): void => {
  for (let i = 0; i < v.length; i++) v[i] = v[i]! / s;
};
const scaleDown64 = (v: Float64Array, s: number): void => {
  for (let i = 0; i < v.length; i++) v[i] = v[i]! / s;
};

export interface HadamardOptions {
  /** Divide by √n (orthonormal transform). Default false. */
  readonly normalize?: boolean;
  /** Default: "sylvester" for powers of two, "known" otherwise (what CT's hadamard / random-hadamard use). */
  readonly construction?: HadamardConstruction;
}

/**
 * x @ H along the last axis (size n), f32 or f64, in O(n log n + n·K) per row. Powers of two run the fwht kernel of
 * the active backend. With `normalize`, the result is divided by √n (rounded to the dtype first).
 */
export const hadamardTransform = (x: Tensor, opts: HadamardOptions = {}, k: Kernels = kernels()): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "hadamardTransform";
  const t = requireFloat(op, x);
  if (E.isLeft(t)) return t;
  const n = x.shape[x.rank - 1];
  if (n === undefined) return E.left(invalidArgument(op, "x", `needs rank ≥ 1, got shape ${fmtShape(x.shape)}`));
  const c = resolve(op, n, opts.construction);
  if (E.isLeft(c)) return c;
  const v = t.right.data.slice();
  transformRows(v, n === 0 ? 0 : v.length / n, n, c.right, k);
  if (opts.normalize) {
    if (v instanceof Float32Array) scaleDown32(v, Math.fround(Math.sqrt(n)));
    else scaleDown64(v, Math.sqrt(n));
  }
  return E.right(new Tensor(t.right.dtype, x.shape, v));
};

/** The dense n×n Hadamard matrix (±1 entries, or ±1/√n with `normalize`) of a construction. */
export const hadamardMatrix = (
  n: number,
  opts: HadamardOptions & { readonly dtype?: FloatDType } = {},
  k: Kernels = kernels(),
): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "hadamardMatrix";
  const dtype = opts.dtype ?? "f32";
  if (!FLOAT_DTYPES.includes(dtype)) return E.left(unsupportedDType(op, dtype, FLOAT_DTYPES));
  if (!Number.isInteger(n) || n <= 0) return E.left(invalidArgument(op, "n", `must be a positive integer, got ${n}`));
  const c = resolve(op, n, opts.construction);
  if (E.isLeft(c)) return c;
  // Rows of the identity transformed: I · H = H.
  const eye = allocFloat(dtype, n * n);
  for (let i = 0; i < n; i++) eye[i * n + i] = 1;
  return hadamardTransform(new Tensor(dtype, [n, n], eye), { construction: c.right, normalize: opts.normalize ?? false }, k);
};

/**
 * compressed-tensors' `random_hadamard_matrix` given its ±1 signs (the `torch.randint` draw): diag(signs) · H_known.
 * Drawing the signs with torch's generator is the caller's business.
 */
export const randomHadamardMatrix = (
  signs: ReadonlyArray<number>,
  opts: { readonly dtype?: FloatDType; readonly normalize?: boolean } = {},
  k: Kernels = kernels(),
): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "randomHadamardMatrix";
  const n = signs.length;
  const bad = signs.findIndex((s) => s !== 1 && s !== -1);
  if (bad >= 0) return E.left(invalidArgument(op, `signs[${bad}]`, `must be ±1, got ${signs[bad]}`));
  const h = hadamardMatrix(n, { construction: "known", dtype: opts.dtype ?? "f32", normalize: opts.normalize ?? false }, k);
  if (E.isLeft(h)) return E.left({ ...h.left, op } as TensorError);
  const v = h.right.data;
  for (let i = 0; i < n; i++) if (signs[i] === -1) for (let j = 0; j < n; j++) v[i * n + j] = -v[i * n + j]!;
  return h;
};
