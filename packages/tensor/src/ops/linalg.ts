import * as E from "fp-ts/lib/Either.js";
import { kernels } from "../backend.js";
import { type TensorError, dtypeMismatch, invalidArgument, notPositiveDefinite, shapeMismatch } from "../errors.js";
import type { Kernels } from "../kernels.js";
import { Tensor, sizeOf, stridesOf } from "../tensor.js";
import { type FloatDType, fmtShape, requireFloat } from "./check.js";
import { broadcastShapes } from "./shape.js";

// Checked linear algebra over the kernels of the active backend (`kernels()`), so the native addon accelerates
// every call. f32 runs the s* kernels (f32 accumulation), f64 the d* kernels. `k` lets tests pin a backend.

type F = Float32Array | Float64Array;

const sameFloat = (op: string, a: Tensor, b: Tensor, bName: string): E.Either<TensorError, FloatDType> => {
  const ta = requireFloat(op, a);
  if (E.isLeft(ta)) return ta;
  const tb = requireFloat(op, b);
  if (E.isLeft(tb)) return tb;
  return ta.right.dtype === tb.right.dtype ? E.right(ta.right.dtype) : E.left(dtypeMismatch(op, bName, ta.right.dtype, tb.right.dtype));
};

const gemm = (k: Kernels, d: FloatDType) =>
  d === "f32"
    ? (m: number, n: number, kk: number, a: F, ta: boolean, b: F, tb: boolean, c: F) =>
        k.sgemm(m, n, kk, a as Float32Array, ta, b as Float32Array, tb, c as Float32Array, 1, 0)
    : (m: number, n: number, kk: number, a: F, ta: boolean, b: F, tb: boolean, c: F) =>
        k.dgemm(m, n, kk, a as Float64Array, ta, b as Float64Array, tb, c as Float64Array, 1, 0);

export interface MatmulOptions {
  /** Use the transpose of the last two axes of a. */
  readonly transposeA?: boolean;
  readonly transposeB?: boolean;
}

/**
 * Matrix product of the last two axes, numpy-style batched: leading (batch) axes broadcast. Both operands must be
 * f32 (f32 accumulation) or both f64, of rank ≥ 2.
 */
export const matmul = (a: Tensor, b: Tensor, opts: MatmulOptions = {}, k: Kernels = kernels()): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "matmul";
  const dt = sameFloat(op, a, b, "b");
  if (E.isLeft(dt)) return dt;
  if (a.rank < 2 || b.rank < 2) return E.left(invalidArgument(op, a.rank < 2 ? "a" : "b", `needs rank ≥ 2, got shapes ${fmtShape(a.shape)} and ${fmtShape(b.shape)}`));
  const ta = opts.transposeA ?? false;
  const tb = opts.transposeB ?? false;
  const [ar, ac] = a.shape.slice(-2) as [number, number];
  const [br, bc] = b.shape.slice(-2) as [number, number];
  const [m, ka] = ta ? [ac, ar] : [ar, ac];
  const [kb, n] = tb ? [bc, br] : [br, bc];
  if (ka !== kb)
    return E.left(shapeMismatch(op, [a.shape, b.shape], `inner dimensions differ: ${ka} vs ${kb} (transposeA=${ta}, transposeB=${tb})`));
  const batchA = a.shape.slice(0, -2);
  const batchB = b.shape.slice(0, -2);
  const batch = broadcastShapes(batchA, batchB);
  if (E.isLeft(batch)) return E.left(shapeMismatch(op, [a.shape, b.shape], `batch axes do not broadcast: ${batch.left._tag === "ShapeMismatch" ? batch.left.detail : ""}`));
  const d = dt.right;
  const g = gemm(k, d);
  const outShape = [...batch.right, m, n];
  const out = d === "f32" ? new Float32Array(sizeOf(outShape)) : new Float64Array(sizeOf(outShape));
  const av = a.data as F;
  const bv = b.data as F;
  if (batchB.length === 0 && !ta) {
    // b is one matrix: fold every batch row of a into one tall GEMM.
    g(sizeOf(batchA) * m, n, ka, av, false, bv, tb, out);
    return E.right(new Tensor(d, outShape, out));
  }
  const nb = sizeOf(batch.right);
  const sa = stridesOfBatch(batchA, batch.right, m * ka);
  const sb = stridesOfBatch(batchB, batch.right, ka * n);
  const idx = new Array<number>(batch.right.length).fill(0);
  for (let i = 0; i < nb; i++) {
    let oa = 0;
    let ob = 0;
    for (let j = 0; j < idx.length; j++) {
      oa += idx[j]! * sa[j]!;
      ob += idx[j]! * sb[j]!;
    }
    g(m, n, ka, av.subarray(oa, oa + m * ka), ta, bv.subarray(ob, ob + ka * n), tb, out.subarray(i * m * n, (i + 1) * m * n));
    for (let j = idx.length - 1; j >= 0; j--) {
      idx[j]!++;
      if (idx[j]! < batch.right[j]!) break;
      idx[j] = 0;
    }
  }
  return E.right(new Tensor(d, outShape, out));
};

/** Strides (in elements) of a batch shape seen through the broadcast batch shape; 0 along broadcast axes. */
const stridesOfBatch = (shape: ReadonlyArray<number>, target: ReadonlyArray<number>, matSize: number): number[] => {
  const st = stridesOf(shape).map((s) => s * matSize);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : st[i - off]!));
};

// ----- XᵀX -----

const checkSyrk = (op: string, h: Tensor, x: Tensor): E.Either<TensorError, { d: FloatDType; m: number; n: number }> => {
  const dt = sameFloat(op, h, x, "x");
  if (E.isLeft(dt)) return dt;
  const n = h.shape[0] ?? 0;
  if (h.rank !== 2 || n !== h.shape[1]) return E.left(shapeMismatch(op, [h.shape], "h must be square [n, n]"));
  if (x.rank < 1 || x.shape[x.rank - 1] !== n)
    return E.left(shapeMismatch(op, [h.shape, x.shape], `the last axis of x must be n = ${n} (leading axes are rows)`));
  return E.right({ d: dt.right, m: n === 0 ? 0 : x.size / n, n });
};

const syrkInto = (k: Kernels, d: FloatDType, m: number, n: number, x: F, h: F, alpha: number): void =>
  d === "f32" ? k.ssyrk(m, n, x as Float32Array, h as Float32Array, alpha) : k.dsyrk(m, n, x as Float64Array, h as Float64Array, alpha);

/** h + alpha · XᵀX (a new tensor), X = x with its leading axes flattened into rows; the GPTQ Hessian update. */
export const accumulateXtX = (h: Tensor, x: Tensor, alpha = 1, k: Kernels = kernels()): E.Either<TensorError, Tensor<FloatDType>> =>
  E.map(({ d, m, n }: { d: FloatDType; m: number; n: number }) => {
    const out = (h.data as F).slice();
    syrkInto(k, d, m, n, x.data as F, out, alpha);
    return new Tensor(d, h.shape, out);
  })(checkSyrk("accumulateXtX", h, x));

/** MUTATES `h`: h += alpha · XᵀX in place (the caller owns h's storage; no copy on the hot calibration path). */
export const accumulateXtXInPlace = (h: Tensor, x: Tensor, alpha = 1, k: Kernels = kernels()): E.Either<TensorError, void> =>
  E.map(({ d, m, n }: { d: FloatDType; m: number; n: number }) => syrkInto(k, d, m, n, x.data as F, h.data as F, alpha))(
    checkSyrk("accumulateXtXInPlace", h, x),
  );

// ----- Cholesky -----

const square = (op: string, a: Tensor, arg: string): E.Either<TensorError, { d: FloatDType; n: number }> => {
  const t = requireFloat(op, a);
  if (E.isLeft(t)) return t;
  if (a.rank !== 2 || a.shape[0] !== a.shape[1]) return E.left(shapeMismatch(op, [a.shape], `${arg} must be a square matrix [n, n]`));
  return E.right({ d: t.right.dtype, n: a.shape[0]! });
};

/**
 * Lower Cholesky factor L of a symmetric positive-definite matrix (A = L Lᵀ, only A's lower triangle is read).
 * A matrix that is not positive definite gives NotPositiveDefinite with the first failing pivot.
 */
export const cholesky = (a: Tensor, k: Kernels = kernels()): E.Either<TensorError, Tensor<FloatDType>> =>
  E.flatMap(({ d, n }: { d: FloatDType; n: number }) => {
    const l = (a.data as F).slice();
    const piv = d === "f32" ? k.spotrf(l as Float32Array, n) : k.dpotrf(l as Float64Array, n);
    return piv >= 0 ? E.left(notPositiveDefinite("cholesky", piv, n)) : E.right(new Tensor(d, a.shape, l));
  })(square("cholesky", a, "a"));

/** A⁻¹ from the lower Cholesky factor L of A (torch.cholesky_inverse); the full symmetric inverse. */
export const choleskyInverse = (l: Tensor, k: Kernels = kernels()): E.Either<TensorError, Tensor<FloatDType>> =>
  E.flatMap(({ d, n }: { d: FloatDType; n: number }) => {
    const v = l.data as F;
    for (let i = 0; i < n; i++) {
      const p = v[i * n + i]!;
      if (!(p !== 0 && Number.isFinite(p))) return E.left(invalidArgument("choleskyInverse", "l", `diagonal entry ${i} is ${p}; the factor must be invertible (shape ${fmtShape(l.shape)})`));
    }
    const out = v.slice();
    if (d === "f32") k.spotri(out as Float32Array, n);
    else k.dpotri(out as Float64Array, n);
    return E.right(new Tensor(d, l.shape, out));
  })(square("choleskyInverse", l, "l"));

export interface TriangularSolveOptions {
  /** Which triangle of t holds the matrix (the other is ignored). */
  readonly upper: boolean;
  /** true: solve op(T) X = B; false: X op(T) = B. Default true. */
  readonly left?: boolean;
  /** Use Tᵀ instead of T. */
  readonly transpose?: boolean;
  /** Assume a unit diagonal (not read). */
  readonly unitDiagonal?: boolean;
}

/** Solves a triangular system (torch.linalg.solve_triangular) for a 2-D right-hand side b; returns X. */
export const triangularSolve = (t: Tensor, b: Tensor, opts: TriangularSolveOptions, k: Kernels = kernels()): E.Either<TensorError, Tensor<FloatDType>> => {
  const op = "triangularSolve";
  const sq = square(op, t, "t");
  if (E.isLeft(sq)) return sq;
  const dt = sameFloat(op, t, b, "b");
  if (E.isLeft(dt)) return dt;
  if (b.rank !== 2) return E.left(invalidArgument(op, "b", `must be 2-D, got shape ${fmtShape(b.shape)}`));
  const left = opts.left ?? true;
  const [m, n] = b.shape as [number, number];
  if ((left ? m : n) !== sq.right.n)
    return E.left(shapeMismatch(op, [t.shape, b.shape], `t of size ${sq.right.n} must match the ${left ? "rows" : "columns"} of b`));
  const x = (b.data as F).slice();
  const side = left ? "left" : "right";
  const uplo = opts.upper ? "upper" : "lower";
  const tr = opts.transpose ?? false;
  const unit = opts.unitDiagonal ?? false;
  if (dt.right === "f32") k.strsm(side, uplo, tr, unit, m, n, t.data as Float32Array, x as Float32Array);
  else k.dtrsm(side, uplo, tr, unit, m, n, t.data as Float64Array, x as Float64Array);
  return E.right(new Tensor(dt.right, b.shape, x));
};
