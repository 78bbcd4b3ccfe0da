import { kernels } from "@llmq/tensor";

// ----- model -----

/** The GPTQ update factor: the upper Cholesky factor U of H⁻¹ (H⁻¹ = UᵀU), row-major n×n. */
export interface HessianFactor {
  readonly hinv: Float32Array;
  /** True when Cholesky failed and U = I (round-to-nearest for the whole module), as LC 0.14 does. */
  readonly usedRtnFallback: boolean;
  /** Which step failed ("cholesky" of the damped H, or "cholesky-of-inverse"), null on success. */
  readonly failedStep: "cholesky" | "cholesky-of-inverse" | null;
  /** Columns whose Hessian diagonal was exactly 0 (never activated); LC zeroes their weights. */
  readonly dead: Int32Array;
  readonly deadColumns: number;
  /** The damping added to the diagonal: dampeningFrac · mean(diag H) in f32. */
  readonly damp: number;
}

// ----- operations -----

const fr = Math.fround;

/**
 * LC 0.14 `factorize_hessian` for one module, IN PLACE on the caller-owned n×n `h` (overwritten by U). The caller
 * zeroes the weight columns listed in `dead`. Sequence, as in torch: dead diagonal → 1 (and W[:, i] = 0); damp =
 * frac · mean(diag) added to the diagonal; L = chol(H) (cholesky_ex); H⁻¹ = cholesky_inverse(L); U =
 * cholesky(H⁻¹, upper=True), computed as the transpose of the lower factor (the same arithmetic, mirrored).
 * When the first Cholesky fails LC substitutes the identity (RTN); we do the same, and also when the second one
 * fails, where LC would raise.
 */
export const factorizeHessianInPlace = (h: Float32Array, n: number, dampeningFrac: number): HessianFactor => {
  const deadList: number[] = [];
  for (let i = 0; i < n; i++) {
    if (h[i * n + i] === 0) {
      deadList.push(i);
      h[i * n + i] = 1;
    }
  }
  const dead = Int32Array.from(deadList);
  const deadColumns = dead.length;
  // torch.mean over f32 accumulates in wider precision before one rounding; an f64 sum reproduces that for the
  // sizes GPTQ sees (checked against torch in the fixtures).
  let sum = 0;
  for (let i = 0; i < n; i++) sum += h[i * n + i]!;
  const mean = fr(sum / n);
  // `percdamp * tensor`: the Python float becomes an f32 scalar, one f32 multiply.
  const damp = fr(fr(dampeningFrac) * mean);
  for (let i = 0; i < n; i++) h[i * n + i] = h[i * n + i]! + damp;
  const k = kernels();
  const identity = (failedStep: "cholesky" | "cholesky-of-inverse"): HessianFactor => {
    h.fill(0);
    for (let i = 0; i < n; i++) h[i * n + i] = 1;
    return { hinv: h, usedRtnFallback: true, failedStep, dead, deadColumns, damp };
  };
  if (k.spotrf(h, n) !== -1) return identity("cholesky");
  k.spotri(h, n);
  if (k.spotrf(h, n) !== -1) return identity("cholesky-of-inverse");
  // Lower factor L of H⁻¹ → U = Lᵀ (upper), in place.
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      h[i * n + j] = h[j * n + i]!;
      h[j * n + i] = 0;
    }
  }
  return { hinv: h, usedRtnFallback: false, failedStep: null, dead, deadColumns, damp };
};
