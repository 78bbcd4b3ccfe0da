// erf for JS numbers (there is no Math.erf). Accurate to a few ulp of f64 over the whole line, which is what the
// exact GELU needs: torch evaluates 0.5·x·(1 + erf(x/√2)) with a libm-grade erf.

const TWO_OVER_SQRT_PI = 1.1283791670955126;
const ONE_OVER_SQRT_PI = 0.5641895835477563;

/** erfc(x) for x ≥ 3 by the Laplace continued fraction, evaluated bottom-up (converges fast in this range). */
const erfcTail = (x: number): number => {
  let f = x;
  for (let k = 60; k >= 1; k--) f = x + k / 2 / f;
  return (Math.exp(-x * x) * ONE_OVER_SQRT_PI) / f;
};

/** The error function. */
export const erf = (x: number): number => {
  if (Number.isNaN(x)) return x;
  const a = Math.abs(x);
  if (a >= 6) return x > 0 ? 1 : -1; // erfc(6) ≈ 2e-17 < ulp(1)/2
  if (a >= 3) {
    const v = 1 - erfcTail(a);
    return x > 0 ? v : -v;
  }
  // erf(x) = 2/√π · e^{-x²} · Σ 2ⁿ x^{2n+1} / (2n+1)!! — all terms positive, so no cancellation.
  const x2 = a * a;
  let term = a;
  let sum = a;
  for (let n = 1; n < 200; n++) {
    term *= (2 * x2) / (2 * n + 1);
    sum += term;
    if (term < sum * 1e-17) break;
  }
  const v = TWO_OVER_SQRT_PI * Math.exp(-x2) * sum;
  return x < 0 || Object.is(x, -0) ? -v : v;
};
