import type { TransformLocation, TransformScheme } from "@llmq/schemes";
import {
  type HadamardConstruction,
  Tensor,
  TorchGenerator,
  hadamardMatrix,
  hadamardTransform,
  isHadamardSize,
  isPow2,
  kernels,
  randomHadamardMatrix,
} from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";

// compressed-tensors' transform factories (transform/factory/*.py) and apply_transform_weight (utils/matrix.py).
// A factory belongs to one scheme and owns one torch.Generator with torch's default seed (CT creates it unseeded);
// matrices are cached by size alone, so the first use of a size (apply-args order, then module order) draws it and
// fixes its dtype. "hadamard" and "random-hadamard" weights are unnormalized ±1 and every application divides by √n;
// "random-matrix" weights are uniform [0, 1) draws applied as they are, their inverse (f64 linalg.inv in CT) as the
// inverse transform.

// ----- model -----

/** A transform weight: n×n, f64 or f32 (the precision of the first use), row-major. */
export interface TransformMatrix {
  readonly n: number;
  readonly data: Float64Array | Float32Array;
  /** √n for Hadamard types (applications divide by it), 1 for random-matrix. */
  readonly scale: number;
  /**
   * Hadamard types: data = M or Mᵀ (`transposed`) with M = diag(signs) · H, H the construction's matrix (x · H is
   * @llmq/tensor's hadamardTransform); lets products with M run as fast transforms instead of dense GEMMs.
   */
  readonly structure?: { readonly construction: HadamardConstruction; readonly signs: Float64Array | null; readonly transposed: boolean };
}

export interface TransformFactory {
  readonly scheme: TransformScheme;
  /** The weight of this size, drawn on first use with `precision` ("torch.float64" / "torch.float32"). */
  readonly weight: (n: number, precision: string) => E.Either<string, TransformMatrix>;
  /** The inverse CT applies for `inverse: true`: the transpose for Hadamard types, the matrix inverse for random-matrix. */
  readonly inverse: (m: TransformMatrix) => E.Either<string, TransformMatrix>;
}

// ----- factories -----

const SUPPORTED_PRECISIONS = ["torch.float64", "torch.float32"];

const transposes = new WeakMap<TransformMatrix, TransformMatrix>();

/** Mᵀ (cached: the same transposed value for the same matrix). */
const transposed = (m: TransformMatrix): TransformMatrix => {
  const hit = transposes.get(m);
  if (hit !== undefined) return hit;
  const t = transposeOf(m);
  transposes.set(m, t);
  transposes.set(t, m);
  return t;
};

const transposeOf = (m: TransformMatrix): TransformMatrix => {
  const { n, data } = m;
  const out = data instanceof Float64Array ? new Float64Array(n * n) : new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j * n + i] = data[i * n + j]!;
  return { n, data: out, scale: m.scale, ...(m.structure ? { structure: { ...m.structure, transposed: !m.structure.transposed } } : {}) };
};

/** Gauss–Jordan with partial pivoting in f64 (CT: torch.linalg.inv in f64, then the weight's dtype). */
export const invertMatrix = (a: Float64Array | Float32Array, n: number): E.Either<string, Float64Array> => {
  const m = Float64Array.from(a);
  const inv = new Float64Array(n * n);
  for (let i = 0; i < n; i++) inv[i * n + i] = 1;
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r * n + c]!) > Math.abs(m[p * n + c]!)) p = r;
    const piv = m[p * n + c]!;
    if (piv === 0 || !Number.isFinite(piv)) return E.left(`the ${n}×${n} random matrix is singular`);
    if (p !== c)
      for (let j = 0; j < n; j++) {
        [m[c * n + j], m[p * n + j]] = [m[p * n + j]!, m[c * n + j]!];
        [inv[c * n + j], inv[p * n + j]] = [inv[p * n + j]!, inv[c * n + j]!];
      }
    for (let j = 0; j < n; j++) {
      m[c * n + j] = m[c * n + j]! / piv;
      inv[c * n + j] = inv[c * n + j]! / piv;
    }
    for (let r = 0; r < n; r++) {
      const f = m[r * n + c]!;
      if (r === c || f === 0) continue;
      for (let j = 0; j < n; j++) {
        m[r * n + j] = m[r * n + j]! - f * m[c * n + j]!;
        inv[r * n + j] = inv[r * n + j]! - f * inv[c * n + j]!;
      }
    }
  }
  return E.right(inv);
};

const drawWeight = (type: string, n: number, f64: boolean, gen: TorchGenerator): E.Either<string, TransformMatrix> => {
  const scale = Math.sqrt(n);
  const dtype = f64 ? "f64" : "f32";
  switch (type) {
    case "hadamard": {
      if (!isPow2(n)) return E.left(`the hadamard transform needs a power-of-two size, got ${n} (use random-hadamard or a transform_block_size)`);
      const h = hadamardMatrix(n, { construction: "sylvester", dtype });
      const structure = { construction: "sylvester" as const, signs: null, transposed: false };
      return E.bimap((e: { readonly _tag: string }) => JSON.stringify(e), (t: Tensor) => ({ n, data: t.data as Float64Array, scale, structure }))(h);
    }
    case "random-hadamard": {
      if (!isHadamardSize(n)) return E.left(`compressed-tensors cannot build a random Hadamard matrix of size ${n} (it needs 2^k times a stored size)`);
      const signs = Array.from({ length: n }, () => gen.randint(0, 2) * 2 - 1);
      const h = randomHadamardMatrix(signs, { dtype });
      const structure = { construction: "known" as const, signs: Float64Array.from(signs), transposed: false };
      return E.bimap((e: { readonly _tag: string }) => JSON.stringify(e), (t: Tensor) => ({ n, data: t.data as Float64Array, scale, structure }))(h);
    }
    case "random-matrix": {
      const data = f64 ? new Float64Array(n * n) : new Float32Array(n * n);
      for (let i = 0; i < data.length; i++) data[i] = f64 ? gen.randF64() : gen.randF32();
      return E.right({ n, data, scale: 1 });
    }
    default:
      return E.left(`unknown transform type "${type}" (compressed-tensors 0.20 registers hadamard, random-hadamard, random-matrix)`);
  }
};

/** CT's TransformFactory.from_scheme for one scheme: a fresh default-seeded generator and a per-size cache. */
export const transformFactory = (scheme: TransformScheme): TransformFactory => {
  const gen = new TorchGenerator();
  const cache = new Map<number, TransformMatrix>();
  const inverses = new Map<TransformMatrix, TransformMatrix>();
  return {
    scheme,
    weight: (n, precision) => {
      const hit = cache.get(n);
      if (hit !== undefined) return E.right(hit);
      if (!SUPPORTED_PRECISIONS.includes(precision)) return E.left(`transform precision ${precision} is not supported by llmq (torch.float64 or torch.float32)`);
      const w = drawWeight(scheme.type, n, precision === "torch.float64", gen);
      if (E.isRight(w)) cache.set(n, w.right);
      return w;
    },
    inverse: (m) => {
      if (scheme.type !== "random-matrix") return E.right(transposed(m));
      const hit = inverses.get(m);
      if (hit !== undefined) return E.right(hit);
      return E.map((inv: Float64Array) => {
        const r: TransformMatrix = { n: m.n, data: m.data instanceof Float64Array ? inv : Float32Array.from(inv), scale: 1 };
        inverses.set(m, r);
        return r;
      })(invertMatrix(m.data, m.n));
    },
  };
};

// ----- application (apply_transform_weight) -----

/** The size of a module's transform (get_transform_size): the block size when given (it must divide), else in/out. */
export const transformSize = (features: number, headDim: number | null): E.Either<string, number> =>
  headDim === null ? E.right(features) : features % headDim !== 0 ? E.left(`${headDim} must divide ${features}`) : E.right(headDim);

/** Divides in place by `scale` (a division, as torch's `/ scale`). */
const divideBy = (v: Float64Array, scale: number): Float64Array => {
  if (scale !== 1) for (let i = 0; i < v.length; i++) v[i] = v[i]! / scale;
  return v;
};

/**
 * x · R as a fast transform when R = diag(s) · H, or R = Hᵀ · diag(s) with a symmetric (Sylvester) H: rows scaled by
 * the signs, then H, in O(n log n) per row instead of n². null when R has no such structure.
 */
const hasFastPath = (r: TransformMatrix): boolean => r.structure !== undefined && (!r.structure.transposed || r.structure.construction === "sylvester");

const fastRight = (x: Float64Array, rows: number, cols: number, r: TransformMatrix): Float64Array | null => {
  const st = r.structure;
  if (st === undefined || !hasFastPath(r)) return null;
  const n = r.n;
  const signed = (v: Float64Array): Float64Array => {
    if (st.signs !== null) for (let i = 0; i < v.length; i++) v[i] = v[i]! * st.signs[i % n]!;
    return v;
  };
  const v = st.transposed ? x : signed(Float64Array.from(x));
  const h = hadamardTransform(new Tensor("f64", [(rows * cols) / n, n], v), { construction: st.construction });
  if (E.isLeft(h)) return null;
  const out = h.right.data as Float64Array;
  return st.transposed ? signed(out) : out;
};

/**
 * x[rows, cols] with every column block of width n replaced by block · R, divided by `scale`: CT's
 * `_multihead_matmul(x, R)` (a block-diagonal R).
 */
export const rightMultiply = (x: Float64Array, rows: number, cols: number, r: TransformMatrix): Float64Array => {
  const fast = fastRight(x, rows, cols, r);
  if (fast !== null) return divideBy(fast, r.scale);
  const out = new Float64Array(rows * cols);
  // (x viewed as [rows·blocks, n]) · R
  kernels().dgemm((rows * cols) / r.n, r.n, r.n, x, false, f64Of(r), false, out, 1, 0);
  return divideBy(out, r.scale);
};

const transposeRows = (x: Float64Array, rows: number, cols: number): Float64Array => {
  const out = new Float64Array(rows * cols);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[j * rows + i] = x[i * cols + j]!;
  return out;
};

/**
 * blockdiag(A) · x for a Sylvester A = diag(s) · H or Hᵀ · diag(s) (H symmetric): every column gets the Walsh–Hadamard
 * butterflies in the order a row transform applies them (the same sums), run across whole rows for contiguous access.
 */
const fastLeftSylvester = (x: Float64Array, rows: number, cols: number, a: TransformMatrix): Float64Array | null => {
  const st = a.structure;
  if (st === undefined || st.construction !== "sylvester") return null;
  const n = a.n;
  const v = Float64Array.from(x);
  const signRows = (): void => {
    if (st.signs === null) return;
    for (let r = 0; r < rows; r++) {
      const sg = st.signs[r % n]!;
      for (let c = r * cols; c < (r + 1) * cols; c++) v[c] = v[c]! * sg;
    }
  };
  if (st.transposed) signRows();
  for (let b = 0; b < rows; b += n)
    for (let h = 1; h < n; h *= 2)
      for (let i = 0; i < n; i += 2 * h)
        for (let j = b + i; j < b + i + h; j++) {
          const p = j * cols;
          const q = (j + h) * cols;
          for (let c = 0; c < cols; c++) {
            const u = v[p + c]!;
            const w = v[q + c]!;
            v[p + c] = u + w;
            v[q + c] = u - w;
          }
        }
  if (!st.transposed) signRows();
  return v;
};

/** blockdiag(A) · x over row blocks, divided by `scale`: `_multihead_matmul(A, x)` = (xᵀ · blockdiag(Aᵀ))ᵀ. */
export const leftMultiply = (x: Float64Array, rows: number, cols: number, a: TransformMatrix): Float64Array => {
  const sylvester = fastLeftSylvester(x, rows, cols, a);
  if (sylvester !== null) return divideBy(sylvester, a.scale);
  const at = transposed(a);
  if (hasFastPath(at)) return transposeRows(rightMultiply(transposeRows(x, rows, cols), cols, rows, at), cols, rows);
  const n = a.n;
  const out = new Float64Array(rows * cols);
  const ad = f64Of(a);
  for (let b = 0; b < rows / n; b++)
    kernels().dgemm(n, cols, n, ad, false, x.subarray(b * n * cols, (b + 1) * n * cols), false, out.subarray(b * n * cols, (b + 1) * n * cols), 1, 0);
  return divideBy(out, a.scale);
};

const f64Of = (m: TransformMatrix): Float64Array => (m.data instanceof Float64Array ? m.data : Float64Array.from(m.data));

/**
 * A fused (offline) transform of a weight in f64, as CT's apply_transform_weight: Linear weight_input W·Tᵀ, weight_output
 * Tᵀ·W (and a bias Tᵀ·b), Embedding weight_input T·W, weight_output W·T. `t` is already the inverse when args.inverse.
 */
export const applyToWeight = (
  location: TransformLocation,
  kind: "linear" | "embedding",
  t: TransformMatrix,
  w: Float64Array,
  rows: number,
  cols: number,
): E.Either<string, Float64Array> => {
  if (location === "weight_input" && kind === "linear") return E.right(rightMultiply(w, rows, cols, transposed(t)));
  if (location === "weight_output" && kind === "linear") return E.right(leftMultiply(w, rows, cols, transposed(t)));
  if (location === "weight_input" && kind === "embedding") return E.right(leftMultiply(w, rows, cols, t));
  if (location === "weight_output" && kind === "embedding") return E.right(rightMultiply(w, rows, cols, t));
  return E.left(`applying a transform to a ${kind} at ${location} is not supported`);
};
