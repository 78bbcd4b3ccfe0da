// llmq's exponential in f64, the one the forward kernels use (softmax of attention, SiLU). Math.exp is not specified to
// the bit (engines differ), and the native kernels evaluate eˣ eight lanes at a time; both follow this definition: the
// same IEEE-754 double operations in the same order, so the js and native results agree bit for bit. Accuracy: within
// 2⁻⁵¹ relative of eˣ (tested against Math.exp), far below the f32 rounding every caller applies next.

const MAGIC = 6755399441055744; // 1.5·2⁵²: adding and subtracting it rounds to the nearest integer, ties to even
const LN2_HI = 0.6931471803691238; // ln 2 in 32 bits, so n · LN2_HI is exact
const LN2_LO = 1.9082149292705877e-10;
const INV_FACT = [1 / 6227020800, 1 / 479001600, 1 / 39916800, 1 / 3628800, 1 / 362880, 1 / 40320, 1 / 5040, 1 / 720, 1 / 120, 1 / 24, 1 / 6, 0.5, 1, 1];
/** 2ⁿ for n in [−200, 200], by exact doubling. */
const POW2 = (() => {
  const t = new Float64Array(401);
  t[200] = 1;
  for (let i = 1; i <= 200; i++) {
    t[200 + i] = t[199 + i]! * 2;
    t[200 - i] = t[201 - i]! / 2;
  }
  return t;
})();

/**
 * eˣ: x clamped to [−110, 89] (beyond it every f32 rounding of eˣ is already 0 or ∞), n = rint(x·log₂e),
 * r = (x − n·ln2_hi) − n·ln2_lo, the degree-13 Taylor polynomial of eʳ by Horner, times 2ⁿ. NaN stays NaN.
 */
export const expF64 = (x: number): number => {
  if (Number.isNaN(x)) return x;
  const xc = x < -110 ? -110 : x > 89 ? 89 : x;
  const n = xc * Math.LOG2E + MAGIC - MAGIC;
  const r = xc - n * LN2_HI - n * LN2_LO;
  let p = INV_FACT[0]!;
  for (let i = 1; i < INV_FACT.length; i++) p = p * r + INV_FACT[i]!;
  return p * POW2[200 + n]!;
};

/** Σ of term(values[j], j) for j in lo..hi in f64 over 8 interleaved lanes, ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7)): the order a vector unit sums in. */
export const lanes8Sum = (values: ArrayLike<number>, lo: number, hi: number, term: (v: number, j: number) => number = (v) => v): number => {
  const s = [0, 0, 0, 0, 0, 0, 0, 0];
  for (let j = lo; j <= hi; j++) s[(j - lo) & 7]! += term(values[j]!, j);
  return s[0]! + s[1]! + (s[2]! + s[3]!) + (s[4]! + s[5]! + (s[6]! + s[7]!));
};
