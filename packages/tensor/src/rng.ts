import { Tensor, sizeOf } from "./tensor.js";

// A seeded, portable RNG: xoshiro128** (Blackman & Vigna) seeded by splitmix32. All state updates are 32-bit
// integer operations (Math.imul, >>>), so the stream is bit-identical on every platform and engine. `normal` uses
// Box–Muller with Math.log/Math.cos/Math.sin: identical wherever the engine's libm is (V8 ships its own fdlibm
// port, so every Node build agrees).

const rotl = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** splitmix32 step: returns [next state, output]. */
const splitmix32 = (s: number): [number, number] => {
  const st = (s + 0x9e3779b9) | 0;
  let z = st;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [st, (z ^ (z >>> 16)) >>> 0];
};

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;
  /** Second Box–Muller value, kept for the next `normal()` call. */
  private spare: number | undefined;

  /** Seeds the four state words from a 32-bit seed through splitmix32 (never all zero). */
  constructor(seed: number) {
    let s = seed >>> 0;
    const w: number[] = [];
    for (let i = 0; i < 4; i++) {
      const [ns, out] = splitmix32(s);
      s = ns;
      w.push(out);
    }
    [this.s0, this.s1, this.s2, this.s3] = w as [number, number, number, number];
    if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
  }

  /** Next 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.s1, 5), 7), 9) >>> 0;
    const t = this.s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 random bits. */
  uniform(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) / 9007199254740992;
  }

  /** Uniform in [0, 1) with 24 random bits: every value is an f32 below 1 (53-bit values could round up to 1). */
  uniformF32(): number {
    return (this.nextU32() >>> 8) / 16777216;
  }

  /** Standard normal (Box–Muller). */
  normal(): number {
    if (this.spare !== undefined) {
      const v = this.spare;
      this.spare = undefined;
      return v;
    }
    // 1 - u is in (0, 1], so the log is finite.
    const u1 = 1 - this.uniform();
    const u2 = this.uniform();
    const r = Math.sqrt(-2 * Math.log(u1));
    const a = 2 * Math.PI * u2;
    this.spare = r * Math.sin(a);
    return r * Math.cos(a);
  }

  /** Uniform integer in [lo, hi) without modulo bias (rejection sampling); the range must fit in 2^32. */
  randint(lo: number, hi: number): number {
    const span = hi - lo;
    if (!Number.isSafeInteger(lo) || !Number.isSafeInteger(hi) || span <= 0 || span > 2 ** 32)
      throw new Error(`Rng.randint: need integers lo < hi with hi - lo ≤ 2^32, got [${lo}, ${hi})`);
    const limit = 2 ** 32 - (2 ** 32 % span);
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return lo + (v % span);
    }
  }

  /** A uniformly random permutation of 0..n-1 (Fisher–Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    for (let i = n - 1; i > 0; i--) {
      const j = this.randint(0, i + 1);
      const t = p[i]!;
      p[i] = p[j]!;
      p[j] = t;
    }
    return p;
  }
}

/** A tensor of standard normal samples from a fresh generator seeded with `seed`. */
export const randn = (shape: ReadonlyArray<number>, seed: number, dtype: "f32" | "f64" = "f32"): Tensor<"f32" | "f64"> => {
  const rng = new Rng(seed);
  const n = sizeOf(shape);
  const out = dtype === "f32" ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = rng.normal();
  return new Tensor(dtype, shape, out);
};

/** A tensor of uniform samples in [0, 1) from a fresh generator seeded with `seed`. */
export const rand = (shape: ReadonlyArray<number>, seed: number, dtype: "f32" | "f64" = "f32"): Tensor<"f32" | "f64"> => {
  const rng = new Rng(seed);
  const n = sizeOf(shape);
  const out = dtype === "f32" ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = dtype === "f32" ? rng.uniformF32() : rng.uniform();
  return new Tensor(dtype, shape, out);
};
