import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jsKernels } from "./backend-js.js";
import { NATIVE_ISAS, type NativeIsa } from "./backend-native.js";
import { nativeAddon, nativeError } from "./backend.js";
import type { Kernels, Side, Uplo } from "./kernels.js";
import { FP8_E4M3FN, miniFloatToNumber } from "./dtype.js";

// Conformance of the native kernels against the js reference (the spec), run once per SIMD level the CPU has
// (AVX-512, AVX2+FMA, baseline) through addon.setIsa, plus the thread-pool path.
//
// Tolerances, per kernel:
// - fwht, groupMinMax, quantizeGroups, siluMul: EXACT (same bits; NaN compared as NaN, the sign of zero included).
// - causalAttention: |Δ| ≤ 4·(d + T)·ε (its two sgemms round differently; the softmax is the same arithmetic).
//   fwht is exact because every output is the same single f32 add/sub as the reference, in any vector width.
// - sgemm/dgemm, ssyrk/dsyrk: |Δ| ≤ 2·k·ε·(|α|·|op(A)|·|op(B)| + |β|·|C₀|) elementwise, ε = 2⁻²⁴ / 2⁻⁵³
//   (both sides accumulate in the operand precision, each within k·ε of the exact value).
// - spotrf/dpotrf: residual max|L·Lᵀ − A| ≤ c·n·ε·max|A|, strict upper zeroed, same failing pivot as js.
// - spotri/dpotri: residual max|A·A⁻¹ − I| ≤ c·n·ε·κ-bound for well-conditioned A, output symmetric.
// - strsm/dtrsm: residual max|op(T)·X − B| ≤ c·dim·ε·max(|op(T)|·|X|).

const addon = nativeAddon();
const required = process.env.LLMQ_REQUIRE_NATIVE === "1";
const skipReason = `native addon not built (${nativeError() ?? "unknown"}); run \`pnpm --filter @llmq/tensor build:native\``;

describe("native addon", () => {
  it("is available (mandatory when LLMQ_REQUIRE_NATIVE=1)", (ctx) => {
    if (!addon && !required) ctx.skip(skipReason);
    expect(addon, skipReason).not.toBeNull();
    expect(NATIVE_ISAS).toContain(addon!.isa);
    expect(addon!.threads).toBeGreaterThanOrEqual(1);
  });
});

// ----- deterministic data -----

const rng = (seed: number) => {
  let s = seed >>> 0;
  return (): number => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
};

type FA = Float32Array | Float64Array;
type Ctor = typeof Float32Array | typeof Float64Array;

/** Uniform in (−1, 1) with no exact zeros (the js gemm skips zero terms, BLAS does not; with NaN/Inf that matters). */
const rand = (ctor: Ctor, n: number, seed: number): FA => {
  const r = rng(seed);
  const a = new ctor(n);
  for (let i = 0; i < n; i++) {
    let v = r() * 2 - 1;
    if (v === 0) v = 0.5;
    a[i] = v;
  }
  return a;
};

const eps = (ctor: Ctor): number => (ctor === Float32Array ? 2 ** -24 : 2 ** -53);

const bitsEqual = (a: Float32Array | Float64Array, b: Float32Array | Float64Array): string | null => {
  if (a.length !== b.length) return `length ${a.length} vs ${b.length}`;
  for (let i = 0; i < a.length; i++) {
    const x = a[i]!;
    const y = b[i]!;
    if (Number.isNaN(x) && Number.isNaN(y)) continue;
    if (!Object.is(x, y)) return `index ${i}: native ${x} vs js ${y}`;
  }
  return null;
};

/** Elementwise |got − want| ≤ bound[i]; NaN/±Inf must match exactly. Returns the first violation. */
const withinBound = (got: FA, want: FA, bound: FA | number): string | null => {
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) || Number.isNaN(g)) {
      if (Number.isNaN(w) && Number.isNaN(g)) continue;
      return `index ${i}: native ${g} vs js ${w}`;
    }
    if (!Number.isFinite(w) || !Number.isFinite(g)) {
      if (g === w) continue;
      return `index ${i}: native ${g} vs js ${w}`;
    }
    const b = typeof bound === "number" ? bound : bound[i]!;
    if (!(Math.abs(g - w) <= b)) return `index ${i}: native ${g} vs js ${w} (|Δ| ${Math.abs(g - w)} > ${b})`;
  }
  return null;
};

const absArr = (a: FA): Float64Array => Float64Array.from(a, Math.abs);

// ----- reference results are computed once and shared by every ISA -----

const memo = new Map<string, unknown>();
const once = <R>(key: string, f: () => R): R => {
  if (!memo.has(key)) memo.set(key, f());
  return memo.get(key) as R;
};

interface GemmCase {
  m: number;
  n: number;
  k: number;
  transA: boolean;
  transB: boolean;
  alpha: number;
  beta: number;
  special?: boolean;
}

const gemmCases: GemmCase[] = [
  { m: 1, n: 1, k: 1, transA: false, transB: false, alpha: 1, beta: 0 },
  { m: 7, n: 13, k: 67, transA: false, transB: false, alpha: 1, beta: 0 },
  { m: 13, n: 7, k: 131, transA: true, transB: false, alpha: -0.5, beta: 1 },
  { m: 67, n: 131, k: 7, transA: false, transB: true, alpha: 2, beta: 0.25 },
  { m: 131, n: 67, k: 13, transA: true, transB: true, alpha: 1, beta: -1 },
  { m: 1, n: 257, k: 1031, transA: false, transB: false, alpha: 1, beta: 0 },
  { m: 257, n: 1, k: 33, transA: true, transB: true, alpha: 1, beta: 0.5 },
  { m: 100, n: 100, k: 0, transA: false, transB: false, alpha: 1, beta: 0.5 },
  { m: 33, n: 47, k: 300, transA: false, transB: false, alpha: 1, beta: 0, special: true },
  { m: 513, n: 257, k: 1031, transA: false, transB: false, alpha: 1, beta: 0 },
  { m: 513, n: 257, k: 1031, transA: true, transB: true, alpha: 0.75, beta: 0.5 },
  { m: 300, n: 517, k: 290, transA: false, transB: true, alpha: 1, beta: 1 },
  // skinny products (a decode step's x·Wᵀ, m ≤ 4): the native dot-product path, k tails past every vector width
  { m: 1, n: 300, k: 1031, transA: false, transB: true, alpha: 1, beta: 0 },
  { m: 3, n: 517, k: 77, transA: false, transB: true, alpha: 0.5, beta: 0.75 },
  { m: 4, n: 1500, k: 2049, transA: false, transB: true, alpha: 1, beta: 0 },
  { m: 2, n: 33, k: 300, transA: false, transB: true, alpha: 1, beta: 0, special: true },
];

const gemmInputs = (ctor: Ctor, c: GemmCase) =>
  once(`gemm-in ${ctor.name} ${JSON.stringify(c)}`, () => {
    const a = rand(ctor, c.m * c.k, 1 + c.m);
    const b = rand(ctor, c.k * c.n, 2 + c.n);
    const c0 = rand(ctor, c.m * c.n, 3 + c.k);
    if (c.special) {
      // NaN in A (row 1), +Inf in B (column 4), denormals in A, NaN in C with beta = 0 (must not leak).
      const ai = (i: number, p: number) => (c.transA ? p * c.m + i : i * c.k + p);
      const bi = (p: number, j: number) => (c.transB ? j * c.k + p : p * c.n + j);
      a[ai(1, 2)] = Number.NaN;
      b[bi(3, 4)] = Number.POSITIVE_INFINITY;
      for (let p = 0; p < c.k; p += 3) a[ai(5, p)] = ctor === Float32Array ? 1e-40 : 1e-310;
      c0[7] = Number.NaN;
    }
    return { a, b, c0 };
  });

const gemmRef = (ctor: Ctor, c: GemmCase) =>
  once(`gemm-ref ${ctor.name} ${JSON.stringify(c)}`, () => {
    const { a, b, c0 } = gemmInputs(ctor, c);
    const want = c0.slice();
    const g = (ctor === Float32Array ? jsKernels.sgemm : jsKernels.dgemm) as (...x: unknown[]) => void;
    g(c.m, c.n, c.k, a, c.transA, b, c.transB, want, c.alpha, c.beta);
    // Error bound from |α|·|A|·|B| + |β|·|C₀| in f64.
    const bound = new Float64Array(c.m * c.n);
    const c0abs = absArr(c0);
    for (let i = 0; i < c0abs.length; i++) if (!Number.isFinite(c0abs[i]!)) c0abs[i] = 0;
    jsKernels.dgemm(c.m, c.n, c.k, absArr(a), c.transA, absArr(b), c.transB, bound, Math.abs(c.alpha), 0);
    const e = eps(ctor);
    for (let i = 0; i < bound.length; i++) bound[i] = 2 * (c.k + 2) * e * (bound[i]! + Math.abs(c.beta) * c0abs[i]!) + Number.MIN_VALUE;
    return { want, bound };
  });

interface SyrkCase {
  m: number;
  n: number;
  alpha: number;
}
const syrkCases: SyrkCase[] = [
  { m: 1, n: 1, alpha: 1 },
  { m: 7, n: 13, alpha: 1 },
  { m: 131, n: 67, alpha: -0.5 },
  { m: 67, n: 131, alpha: 2 },
  { m: 1031, n: 257, alpha: 1 },
  { m: 300, n: 290, alpha: 0.125 },
];

const symRand = (ctor: Ctor, n: number, seed: number): FA => {
  const h = rand(ctor, n * n, seed);
  for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) h[j * n + i] = h[i * n + j]!;
  return h;
};

const syrkRef = (ctor: Ctor, c: SyrkCase) =>
  once(`syrk ${ctor.name} ${JSON.stringify(c)}`, () => {
    const x = rand(ctor, c.m * c.n, 11 + c.m);
    const h0 = symRand(ctor, c.n, 12 + c.n);
    const want = h0.slice();
    const s = (ctor === Float32Array ? jsKernels.ssyrk : jsKernels.dsyrk) as (...x: unknown[]) => void;
    s(c.m, c.n, x, want, c.alpha);
    const bound = new Float64Array(c.n * c.n);
    const xa = absArr(x);
    jsKernels.dgemm(c.n, c.n, c.m, xa, true, xa, false, bound, Math.abs(c.alpha), 0);
    const e = eps(ctor);
    for (let i = 0; i < bound.length; i++) bound[i] = 2 * (c.m + 2) * e * (bound[i]! + Math.abs(h0[i]!)) + Number.MIN_VALUE;
    return { x, h0, want, bound };
  });

/** A well-conditioned SPD matrix: XᵀX/m + I (eigenvalues in about [1, 5]). */
const spd = (ctor: Ctor, n: number, seed: number): FA =>
  once(`spd ${ctor.name} ${n} ${seed}`, () => {
    const m = n + 8;
    const x = rand(Float64Array, m * n, seed) as Float64Array;
    const a = new Float64Array(n * n);
    jsKernels.dsyrk(m, n, x, a, 1 / m);
    for (let i = 0; i < n; i++) a[i * n + i]! += 1;
    return ctor.from(a);
  });

/** max |M₁·M₂ − R| over all entries, products in f64 (row-major n×n). */
const productResidual = (n: number, m1: (i: number, p: number) => number, m2: (p: number, j: number) => number, r: (i: number, j: number) => number): number => {
  let worst = 0;
  const row = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    row.fill(0);
    for (let p = 0; p < n; p++) {
      const a = m1(i, p);
      if (a === 0) continue;
      for (let j = 0; j < n; j++) row[j]! += a * m2(p, j);
    }
    for (let j = 0; j < n; j++) worst = Math.max(worst, Math.abs(row[j]! - r(i, j)));
  }
  return worst;
};

const maxAbs = (a: FA): number => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]!));
  return m;
};

// ----- the suite, once per ISA -----

const levels: NativeIsa[] = addon ? NATIVE_ISAS.slice(NATIVE_ISAS.indexOf(addon.supportedIsa)) : [];

type AnyKernel = (...x: unknown[]) => unknown;

const suite = (isa: NativeIsa, threads: number | null) => {
  describe(`native ${isa}${threads ? `, ${threads} thread(s)` : ""} vs js`, () => {
    let nk: Kernels;
    let savedThreads = 0;
    beforeAll(() => {
      addon!.setIsa(isa);
      savedThreads = addon!.threads;
      if (threads) addon!.setThreads(threads);
      nk = addon!.kernels as Kernels;
      expect(addon!.isa).toBe(isa);
    });
    afterAll(() => {
      addon!.setIsa(addon!.supportedIsa);
      if (threads) addon!.setThreads(savedThreads);
    });

    for (const ctor of [Float32Array, Float64Array] as const) {
      const p = ctor === Float32Array ? "s" : "d";
      const gemmList = threads ? gemmCases.filter((c) => c.m * c.n * c.k > 1e7) : gemmCases;
      for (const c of gemmList) {
        it(`${p}gemm ${c.m}×${c.n}×${c.k} ${c.transA ? "Aᵀ" : "A"}${c.transB ? "Bᵀ" : "B"} α=${c.alpha} β=${c.beta}${c.special ? " NaN/Inf/denormal" : ""}`, () => {
          const { a, b, c0 } = gemmInputs(ctor, c);
          const { want, bound } = gemmRef(ctor, c);
          const got = c0.slice();
          (nk[`${p}gemm`] as AnyKernel)(c.m, c.n, c.k, a, c.transA, b, c.transB, got, c.alpha, c.beta);
          expect(withinBound(got, want, bound)).toBeNull();
          if (c.special) {
            expect(Number.isNaN(got[1 * c.n + 0]!)).toBe(true); // row 1 of A has a NaN
            expect(got[0 * c.n + 4]).toSatisfy((v: number) => !Number.isFinite(v)); // column 4 of B has +Inf
            expect(Number.isNaN(got[7]!)).toBe(false); // NaN in C with beta = 0 does not leak
          }
        });
      }
      if (threads) continue;
      for (const c of syrkCases) {
        it(`${p}syrk X ${c.m}×${c.n} α=${c.alpha}`, () => {
          const { x, h0, want, bound } = syrkRef(ctor, c);
          const got = h0.slice();
          (nk[`${p}syrk`] as AnyKernel)(c.m, c.n, x, got, c.alpha);
          expect(withinBound(got, want, bound)).toBeNull();
          for (let i = 0; i < c.n; i++) for (let j = 0; j < i; j++) expect(got[i * c.n + j]).toBe(got[j * c.n + i]);
        });
      }
      for (const n of [1, 7, 13, 67, 131, 300]) {
        it(`${p}potrf + ${p}potri n=${n}: residuals`, () => {
          const a = spd(ctor, n, 100 + n);
          const l = a.slice();
          expect((nk[`${p}potrf`] as AnyKernel)(l, n)).toBe(-1);
          for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) expect(l[i * n + j]).toBe(0);
          const e = eps(ctor);
          const rl = productResidual(
            n,
            (i, q) => l[i * n + q]!,
            (q, j) => l[j * n + q]!,
            (i, j) => a[i * n + j]!,
          );
          expect(rl).toBeLessThanOrEqual(4 * n * e * maxAbs(a));
          // The reference factor agrees (both are backward stable on a well-conditioned matrix).
          const lj = a.slice();
          expect((jsKernels[`${p}potrf`] as AnyKernel)(lj, n)).toBe(-1);
          expect(withinBound(l, lj, 8 * n * e * Math.sqrt(maxAbs(a)))).toBeNull();
          // Inverse from the factor; garbage in the strict upper triangle must be ignored.
          const inv = l.slice();
          for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) inv[i * n + j] = 1e30;
          (nk[`${p}potri`] as AnyKernel)(inv, n);
          for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) expect(inv[i * n + j]).toBe(inv[j * n + i]);
          const ri = productResidual(
            n,
            (i, q) => a[i * n + q]!,
            (q, j) => inv[q * n + j]!,
            (i, j) => (i === j ? 1 : 0),
          );
          expect(ri).toBeLessThanOrEqual(32 * n * e);
        });
      }
      it(`${p}potrf non-SPD returns the failing pivot like js`, () => {
        const n = 300;
        for (const piv of [0, 5, 127, 128, 200, 299]) {
          const a = spd(ctor, n, 7).slice();
          a[piv * n + piv] = -1;
          const aj = a.slice();
          expect((nk[`${p}potrf`] as AnyKernel)(a, n)).toBe(piv);
          expect((jsKernels[`${p}potrf`] as AnyKernel)(aj, n)).toBe(piv);
        }
        const bad = spd(ctor, 20, 9).slice();
        bad[3 * 20 + 3] = Number.NaN;
        expect((nk[`${p}potrf`] as AnyKernel)(bad, 20)).toBe(3);
      });
      for (const side of ["left", "right"] as Side[])
        for (const uplo of ["lower", "upper"] as Uplo[])
          for (const transT of [false, true])
            for (const unit of [false, true])
              for (const [m, n] of [
                [1, 1],
                [7, 13],
                [131, 67],
                [67, 131],
              ] as const) {
                it(`${p}trsm ${side} ${uplo}${transT ? " Tᵀ" : ""}${unit ? " unit" : ""} ${m}×${n}: residual`, () => {
                  const dim = side === "left" ? m : n;
                  const t = rand(ctor, dim * dim, 40 + dim);
                  // The used triangle is well conditioned; the other one is huge garbage that must be ignored.
                  const lowerT = uplo === "lower";
                  for (let i = 0; i < dim; i++)
                    for (let j = 0; j < dim; j++) {
                      const inTri = lowerT ? j <= i : j >= i;
                      if (!inTri) t[i * dim + j] = 1e20;
                      else if (i === j) t[i * dim + j] = unit ? 1e20 : 2 + t[i * dim + j]!;
                      else t[i * dim + j] = t[i * dim + j]! / dim;
                    }
                  const b0 = rand(ctor, m * n, 50 + m + n);
                  const x = b0.slice();
                  (nk[`${p}trsm`] as AnyKernel)(side, uplo, transT, unit, m, n, t, x);
                  const op = (i: number, j: number): number => {
                    const [r, c] = transT ? [j, i] : [i, j];
                    if (r === c) return unit ? 1 : t[r * dim + c]!;
                    return (lowerT ? c < r : c > r) ? t[r * dim + c]! : 0;
                  };
                  let worst = 0;
                  let scale = 0;
                  for (let i = 0; i < m; i++)
                    for (let j = 0; j < n; j++) {
                      let s = 0;
                      let sa = 0;
                      for (let q = 0; q < dim; q++) {
                        const term = side === "left" ? op(i, q) * x[q * n + j]! : x[i * n + q]! * op(q, j);
                        s += term;
                        sa += Math.abs(term);
                      }
                      worst = Math.max(worst, Math.abs(s - b0[i * n + j]!));
                      scale = Math.max(scale, sa);
                    }
                  expect(worst).toBeLessThanOrEqual(4 * dim * eps(ctor) * scale);
                });
              }
    }

    if (threads) return;

    it("fwht is exact (integer-valued and general inputs, n = 1 … 2¹⁵)", () => {
      const cases: [number, number][] = [
        [1, 1],
        [3, 2],
        [7, 4],
        [5, 8],
        [33, 16],
        [3, 32],
        [2, 64],
        [4, 128],
        [64, 4096],
        [1, 1 << 15],
      ];
      for (const [rows, n] of cases) {
        const r = rng(rows * 31 + n);
        const ints = Float32Array.from({ length: rows * n }, () => Math.floor(r() * 17) - 8);
        const gen = rand(Float32Array, rows * n, n) as Float32Array;
        for (const x of [ints, gen]) {
          const want = x.slice();
          const got = x.slice();
          jsKernels.fwht(want, rows, n);
          nk.fwht(got, rows, n);
          expect(bitsEqual(got, want), `rows ${rows} n ${n}`).toBeNull();
        }
      }
    });

    it("dfwht is exact (f64, n = 1 … 2¹⁵)", () => {
      for (const [rows, n] of [[1, 1], [3, 2], [5, 8], [33, 16], [2, 64], [64, 4096], [1, 1 << 15]] as const) {
        const x = rand(Float64Array, rows * n, n) as Float64Array;
        const want = x.slice();
        const got = x.slice();
        jsKernels.dfwht(want, rows, n);
        nk.dfwht(got, rows, n);
        expect(bitsEqual(got, want), `rows ${rows} n ${n}`).toBeNull();
      }
    });

    it("groupMinMax is exact (NaN, ±0 order, ±Inf, denormals, group sizes 1 … cols)", () => {
      const shapes: [number, number, number][] = [
        [1, 1, 1],
        [3, 7, 7],
        [5, 21, 3],
        [4, 64, 16],
        [7, 131, 131],
        [6, 256, 32],
        [2, 384, 128],
        [256, 4096, 128],
      ];
      for (const [rows, cols, gs] of shapes) {
        const x = rand(Float32Array, rows * cols, rows * cols) as Float32Array;
        const r = rng(gs);
        for (let i = 0; i < x.length; i++) {
          const u = r();
          if (u < 0.01) x[i] = Number.NaN;
          else if (u < 0.06) x[i] = 0;
          else if (u < 0.11) x[i] = -0;
          else if (u < 0.12) x[i] = Number.POSITIVE_INFINITY;
          else if (u < 0.13) x[i] = Number.NEGATIVE_INFINITY;
          else if (u < 0.15) x[i] = 1e-42;
          else if (u < 0.4) x[i] = Math.abs(x[i]!); // some groups are all non-negative: the min is then a zero
        }
        // Groups of only zeros of mixed sign, in both orders.
        if (cols >= 2 * gs) {
          for (let j = 0; j < gs; j++) x[j] = j % 2 ? 0 : -0;
          for (let j = gs; j < 2 * gs; j++) x[j] = j % 2 ? -0 : 0;
        }
        const g = rows * (cols / gs);
        const [mn, mx, jmn, jmx] = [new Float32Array(g), new Float32Array(g), new Float32Array(g), new Float32Array(g)];
        jsKernels.groupMinMax(x, rows, cols, gs, jmn, jmx);
        nk.groupMinMax(x, rows, cols, gs, mn, mx);
        expect(bitsEqual(mn, jmn), `min ${rows}×${cols} g${gs}`).toBeNull();
        expect(bitsEqual(mx, jmx), `max ${rows}×${cols} g${gs}`).toBeNull();
      }
    });

    it("quantizeGroups is exact (.5 ties, clamps, zp, fake, NaN, ±0, int4/uint4/int8)", () => {
      const schemes: { qmin: number; qmax: number; zp: boolean }[] = [
        { qmin: -8, qmax: 7, zp: false },
        { qmin: 0, qmax: 15, zp: true },
        { qmin: -128, qmax: 127, zp: false },
        { qmin: 0, qmax: 255, zp: true },
        { qmin: 0, qmax: 15, zp: false },
      ];
      const shapes: [number, number, number][] = [
        [1, 1, 1],
        [3, 7, 7],
        [5, 21, 3],
        [4, 64, 16],
        [7, 131, 131],
        [3, 384, 128],
        [128, 4096, 128],
      ];
      for (const s of schemes)
        for (const [rows, cols, gs] of shapes)
          for (const fake of [false, true]) {
            const g = rows * (cols / gs);
            const r = rng(rows + cols + gs + s.qmax);
            // Power-of-two scales make x/s exact, so x = (k + 0.5)·s lands exactly on a tie.
            const scale = Float32Array.from({ length: g }, (_, i) => (i % 3 === 0 ? 2 ** (Math.floor(r() * 6) - 3) : 0.01 + r() * 0.2));
            const zp = s.zp ? Float32Array.from({ length: g }, () => Math.floor(r() * (s.qmax + 1))) : null;
            const x = new Float32Array(rows * cols);
            for (let i = 0; i < x.length; i++) {
              const sc = scale[Math.floor(i / gs)]!;
              const u = r();
              if (u < 0.4) x[i] = (Math.floor(r() * 40) - 20 + 0.5) * sc;
              else if (u < 0.45) x[i] = -0;
              else if (u < 0.5) x[i] = -0.3 * sc;
              else if (u < 0.51) x[i] = Number.NaN;
              else if (u < 0.52) x[i] = Number.POSITIVE_INFINITY;
              else if (u < 0.53) x[i] = -1e30;
              else x[i] = (r() * 2 - 1) * sc * (s.qmax - s.qmin);
            }
            const want = new Float32Array(x.length);
            const got = new Float32Array(x.length);
            jsKernels.quantizeGroups(x, rows, cols, gs, scale, zp, s.qmin, s.qmax, fake, want);
            nk.quantizeGroups(x, rows, cols, gs, scale, zp, s.qmin, s.qmax, fake, got);
            expect(bitsEqual(got, want), `${JSON.stringify(s)} ${rows}×${cols} g${gs} fake=${fake}`).toBeNull();
          }
      // In place (out aliases x) gives the same bits.
      const x = rand(Float32Array, 4 * 256, 5) as Float32Array;
      const scale = new Float32Array(8).fill(0.0625);
      const want = new Float32Array(x.length);
      jsKernels.quantizeGroups(x, 4, 256, 128, scale, null, -8, 7, true, want);
      nk.quantizeGroups(x, 4, 256, 128, scale, null, -8, 7, true, x);
      expect(bitsEqual(x, want)).toBeNull();
    });

    it("siluMul is exact (large |g|, ±0, ±Inf, NaN)", () => {
      const n = 70_001;
      const r = rng(17);
      const g = Float32Array.from({ length: n }, (_, i) => (i % 97 === 0 ? [0, -0, Infinity, -Infinity, Number.NaN, 88.7, -104][i % 7]! : (r() * 2 - 1) * 30));
      const u = rand(Float32Array, n, 18) as Float32Array;
      const want = new Float32Array(n);
      const got = new Float32Array(n);
      jsKernels.siluMul(g, u, n, want);
      nk.siluMul(g, u, n, got);
      expect(bitsEqual(got, want)).toBeNull();
    });

    it("rmsNorm is exact (odd widths, lane tails, tiny and huge rows, zeros, NaN, threaded)", () => {
      for (const [rows, cols] of [[1, 1], [3, 7], [5, 8], [9, 17], [33, 576], [300, 2048], [2, 4099]] as const) {
        const x = rand(Float32Array, rows * cols, cols) as Float32Array;
        for (let i = 0; i < cols; i++) x[i] = x[i]! * 1e-20; // a row whose squares underflow
        if (rows > 2) x.fill(0, cols, 2 * cols); // an all-zero row: 0 · rsqrt(eps)
        if (rows > 3) x[3 * cols + (cols >> 1)] = Number.NaN;
        if (rows > 4) x[4 * cols] = 3e19; // x² overflows f32
        const w = rand(Float32Array, cols, cols + 1) as Float32Array;
        const want = new Float32Array(rows * cols);
        const got = new Float32Array(rows * cols).fill(7);
        jsKernels.rmsNorm(x, rows, cols, w, 1e-5, want);
        nk.rmsNorm(x, rows, cols, w, 1e-5, got);
        expect(bitsEqual(got, want), `${rows}×${cols}`).toBeNull();
      }
    });

    it("rope, add and scale are exact (odd head counts, head_dim 2 … 128, threaded, NaN)", () => {
      for (const [tokens, heads, d] of [[1, 1, 2], [7, 3, 10], [129, 9, 64], [600, 4, 128]] as const) {
        const x = rand(Float32Array, tokens * heads * d, d) as Float32Array;
        x[tokens >> 1] = Number.NaN;
        const cos = rand(Float32Array, (tokens * d) / 2, 1) as Float32Array;
        const sin = rand(Float32Array, (tokens * d) / 2, 2) as Float32Array;
        const want = x.slice();
        const got = x.slice();
        jsKernels.rope(want, tokens, heads, d, cos, sin);
        nk.rope(got, tokens, heads, d, cos, sin);
        expect(bitsEqual(got, want), `rope ${tokens}×${heads}×${d}`).toBeNull();
        const b = rand(Float32Array, x.length, 3) as Float32Array;
        const sumJs = new Float32Array(x.length);
        const sumNative = new Float32Array(x.length);
        jsKernels.add(x, b, x.length, sumJs);
        nk.add(x, b, x.length, sumNative);
        expect(bitsEqual(sumNative, sumJs), `add ${x.length}`).toBeNull();
        jsKernels.scale(x, Math.SQRT2, x.length, sumJs);
        nk.scale(x, Math.SQRT2, x.length, sumNative);
        expect(bitsEqual(sumNative, sumJs), `scale ${x.length}`).toBeNull();
      }
    });

    it("logitStats matches the js reference to 1e-13 (odd vocabularies, lane tails, with and without a reference, threaded)", () => {
      for (const [rows, vocab] of [[1, 1], [3, 7], [5, 513], [40, 4099], [6, 49157]] as const) {
        const lq = Float32Array.from(rand(Float32Array, rows * vocab, vocab), (x) => x * 12);
        const lr = Float32Array.from(rand(Float32Array, rows * vocab, vocab + 1), (x, i) => x * 3 + lq[i]!);
        if (vocab > 100) lr[5] = -1e4; // a reference probability that underflows to 0
        const targets = Int32Array.from({ length: rows }, (_, r) => (r * 7919) % vocab);
        for (const ref of [lr, null]) {
          const want = new Float64Array(rows * 4);
          const got = new Float64Array(rows * 4).fill(Number.NaN);
          jsKernels.logitStats(lq, ref, rows, vocab, targets, want);
          nk.logitStats(lq, ref, rows, vocab, targets, got);
          const bound = Float64Array.from(want, (w) => 1e-13 * (1 + Math.abs(w)));
          expect(withinBound(got, want, bound), `${rows}×${vocab} ${ref === null ? "alone" : "with reference"}`).toBeNull();
        }
      }
    });

    it("logitStats finds the first argmax as the scalar scan does (ties across SIMD lanes, NaN, ±0, all −∞)", () => {
      const vocab = 53; // three 16-lane vectors and a tail of 5
      const put = (l: Float32Array, at: ReadonlyArray<readonly [number, number]>): void => {
        for (const [j, v] of at) l[j] = v;
      };
      const rows: Array<(l: Float32Array) => void> = [
        (l) => put(l, [[35, 9], [3, 9], [50, 9]]), // ties in different lanes and the tail: index 3
        (l) => put(l, [[20, 9], [4, 9]]), // a later lane's tie comes first in the row
        (l) => put(l, [[0, Number.NaN], [17, 4], [1, 4]]), // NaN skipped
        (l) => void l.fill(-0).fill(0, 30), // -0 then +0: equal, the first wins
        (l) => void l.fill(Number.NEGATIVE_INFINITY), // no maximum: index 0
        (l) => put(l, [[51, 7], [52, 7]]), // only in the tail
      ];
      const lq = new Float32Array(rows.length * vocab).fill(-3);
      const lr = new Float32Array(rows.length * vocab).fill(-3);
      for (const [r, f] of rows.entries()) f(lq.subarray(r * vocab, (r + 1) * vocab));
      // The reference's argmax sits where the scalar scan puts the model's, so top-1 is 1 exactly when they agree.
      const first = [3, 4, 1, 0, 0, 51];
      put(lr, first.map((j, r) => [r * vocab + j, 5] as const));
      const targets = new Int32Array(rows.length).fill(3);
      const want = new Float64Array(rows.length * 4);
      const got = new Float64Array(rows.length * 4);
      jsKernels.logitStats(lq, lr, rows.length, vocab, targets, want);
      nk.logitStats(lq, lr, rows.length, vocab, targets, got);
      expect(Array.from({ length: rows.length }, (_, r) => want[r * 4 + 3])).toEqual([1, 1, 1, 1, 1, 1]);
      expect(Array.from({ length: rows.length }, (_, r) => got[r * 4 + 3])).toEqual(Array.from({ length: rows.length }, (_, r) => want[r * 4 + 3]));
      for (let i = 0; i < want.length; i++) if (!Number.isNaN(want[i]!)) expect(Math.abs(got[i]! - want[i]!)).toBeLessThanOrEqual(1e-13 * (1 + Math.abs(want[i]!)));
    });

    it("lutDequant is exact (fp8 and int8 tables, per-row / per-head / one scale, with and without zero points)", () => {
      const lutF8 = Float32Array.from({ length: 256 }, (_, c) => miniFloatToNumber(FP8_E4M3FN, c));
      const lutI8 = Float32Array.from({ length: 256 }, (_, c) => (c < 128 ? c : c - 256));
      for (const [n, group, scales, lut, withZp] of [
        [64 * 37, 64, 37, lutF8, false], // dynamic: a scale per row
        [8 * 3 * 16, 16, 3, lutI8, true], // static per head, asymmetric
        [1 << 17, 1 << 17, 1, lutF8, false], // one scale, threaded
        [5, 1, 5, lutI8, false],
      ] as const) {
        const codes = Uint8Array.from(rand(Float32Array, n, n) as Float32Array, (x) => Math.floor(Math.abs(x) * 997) & 255);
        const scale = Float32Array.from(rand(Float32Array, scales, 3) as Float32Array, (x) => Math.abs(x) + 1e-3);
        const zp = withZp ? Float32Array.from({ length: scales }, (_, i) => i * 7 - 9) : null;
        const want = new Float32Array(n);
        const got = new Float32Array(n).fill(Number.NaN);
        jsKernels.lutDequant(codes, lut, scale, zp, group, scales, want);
        nk.lutDequant(codes, lut, scale, zp, group, scales, got);
        expect(withinBound(got, want, 0)).toBeNull();
      }
    });

    it("causalAttention matches the js reference (GQA, sliding window) to the sgemm tolerance", () => {
      for (const [tokens, past, heads, kv, d, window] of [
        [37, 0, 4, 2, 8, 0],
        [64, 0, 8, 8, 16, 0],
        [50, 0, 6, 2, 8, 7],
        [1, 0, 2, 1, 4, 0],
        [1, 45, 4, 2, 8, 0], // one decode step against a cache of 45 positions
        [3, 29, 6, 3, 16, 11], // a few new tokens, sliding window reaching into the cache
        [200, 0, 3, 1, 64, 0], // several query blocks, the last one partial
        [131, 70, 4, 2, 32, 90], // blocks after a cache, a window that starts inside a block
        [700, 0, 2, 1, 8, 0], // a long window: blocks see up to 700 keys
      ] as const) {
        const n = past + tokens;
        const q = rand(Float32Array, tokens * heads * d, tokens) as Float32Array;
        const k = rand(Float32Array, n * kv * d, tokens + 1) as Float32Array;
        const v = rand(Float32Array, n * kv * d, tokens + 2) as Float32Array;
        const want = new Float32Array(tokens * heads * d);
        const got = new Float32Array(tokens * heads * d).fill(Number.NaN);
        jsKernels.causalAttention(q, k, v, tokens, past, heads, kv, d, window, 1 / Math.sqrt(d), want);
        nk.causalAttention(q, k, v, tokens, past, heads, kv, d, window, 1 / Math.sqrt(d), got);
        // Scores differ by the sgemms' rounding (≤ 2·d·ε·|q||k|); softmax and P·V keep that relative size.
        let worst = 0;
        for (let i = 0; i < want.length; i++) worst = Math.max(worst, Math.abs(got[i]! - want[i]!));
        expect(worst, `${tokens}+${past}×${heads}/${kv}×${d} window ${window}`).toBeLessThanOrEqual(4 * (d + n) * 2 ** -24);
      }
      // A NaN query poisons its own head's rows only; the others are unchanged.
      {
        const [t, h, kvh, d] = [70, 2, 1, 8];
        const q = rand(Float32Array, t * h * d, 11) as Float32Array;
        q[(65 * h + 1) * d + 3] = Number.NaN;
        const k = rand(Float32Array, t * kvh * d, 12) as Float32Array;
        const v = rand(Float32Array, t * kvh * d, 13) as Float32Array;
        const want = new Float32Array(t * h * d);
        const got = new Float32Array(t * h * d);
        jsKernels.causalAttention(q, k, v, t, 0, h, kvh, d, 0, 0.3, want);
        nk.causalAttention(q, k, v, t, 0, h, kvh, d, 0, 0.3, got);
        expect(withinBound(got, want, 4 * (d + t) * 2 ** -24)).toBeNull();
        expect(Number.isNaN(got[(65 * h + 1) * d]!)).toBe(true);
        expect(Number.isNaN(got[(65 * h + 0) * d]!)).toBe(false);
      }
      // A cached step computes the last row of the full causal attention (same positions, same keys).
      {
        const [t, h, kvh, d] = [9, 4, 2, 8];
        const q = rand(Float32Array, t * h * d, 5) as Float32Array;
        const k = rand(Float32Array, t * kvh * d, 6) as Float32Array;
        const v = rand(Float32Array, t * kvh * d, 7) as Float32Array;
        const full = new Float32Array(t * h * d);
        const step = new Float32Array(h * d);
        jsKernels.causalAttention(q, k, v, t, 0, h, kvh, d, 0, 0.3, full);
        jsKernels.causalAttention(q.subarray((t - 1) * h * d), k, v, 1, t - 1, h, kvh, d, 0, 0.3, step);
        for (let i = 0; i < h * d; i++) expect(Math.abs(step[i]! - full[(t - 1) * h * d + i]!)).toBeLessThanOrEqual(4 * (d + t) * 2 ** -24);
      }
      // The first row attends only to itself: exactly v of its KV head.
      const q = rand(Float32Array, 3 * 2 * 4, 1) as Float32Array;
      const k = rand(Float32Array, 3 * 4, 2) as Float32Array;
      const v = rand(Float32Array, 3 * 4, 3) as Float32Array;
      const out = new Float32Array(3 * 2 * 4);
      nk.causalAttention(q, k, v, 3, 0, 2, 1, 4, 0, 0.5, out);
      expect(Array.from(out.subarray(0, 4))).toEqual(Array.from(v.subarray(0, 4)));
    });
  });
};

if (addon) {
  for (const isa of levels) suite(isa, null);
  // The single-threaded path of the large GEMMs (the default run above uses the whole pool).
  suite(addon.supportedIsa, 1);
}
