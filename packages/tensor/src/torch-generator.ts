// torch's CPU generator (ATen CPUGeneratorImpl over its MT19937 engine), for draws that must equal what a Python
// reference made with `torch.Generator()`: compressed-tensors' random-hadamard signs (`randint(0, 2)`) and
// random-matrix entries (`rand`). Only the draws those need are here; their formulas are ATen's
// (DistributionsHelper.h / TransformationHelper.h): randint over a range below 2^32 is `random() % range + low`,
// rand is `(random() & (2^24 − 1)) · 2^−24` in f32 and `(random64() & (2^53 − 1)) · 2^−53` in f64, with
// random64() = random() << 32 | random().

const N = 624;
const M = 397;

/** The seed a fresh `torch.Generator()` has (c10's default_rng_seed_val). */
export const TORCH_DEFAULT_SEED = 67280421310721n;

export class TorchGenerator {
  private readonly mt = new Uint32Array(N);
  private left = 1;
  private next = 0;

  /** `torch.Generator().manual_seed(seed)`: MT19937's init_genrand with the seed's low 32 bits. */
  constructor(seed: bigint | number = TORCH_DEFAULT_SEED) {
    const s = BigInt(seed);
    const mt = this.mt;
    mt[0] = Number(BigInt.asUintN(32, s));
    for (let j = 1; j < N; j++) {
      const p = mt[j - 1]!;
      mt[j] = (Math.imul(1812433253, p ^ (p >>> 30)) + j) >>> 0;
    }
  }

  private twist(): void {
    const mt = this.mt;
    const mix = (u: number, v: number): number => (((u & 0x80000000) | (v & 0x7fffffff)) >>> 1) ^ (v & 1 ? 0x9908b0df : 0);
    for (let k = 0; k < N - M; k++) mt[k] = mt[k + M]! ^ mix(mt[k]!, mt[k + 1]!);
    for (let k = N - M; k < N - 1; k++) mt[k] = mt[k + M - N]! ^ mix(mt[k]!, mt[k + 1]!);
    mt[N - 1] = mt[M - 1]! ^ mix(mt[N - 1]!, mt[0]!);
    this.left = N;
    this.next = 0;
  }

  /** The next 32-bit output (CPUGeneratorImpl::random). */
  random(): number {
    if (--this.left === 0) this.twist();
    let y = this.mt[this.next++]!;
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** `torch.randint(low, high)` for one element, high − low ≤ 2^32 (one 32-bit draw, modulo). */
  randint(low: number, high: number): number {
    const range = high - low;
    if (!Number.isSafeInteger(low) || !Number.isSafeInteger(high) || range <= 0 || range > 2 ** 32)
      throw new Error(`TorchGenerator.randint: need integers low < high with high − low ≤ 2^32, got [${low}, ${high})`);
    return (this.random() % range) + low;
  }

  /** One element of `torch.rand(..., dtype=float32)` (an exact f32 in [0, 1)). */
  randF32(): number {
    return (this.random() & 0xffffff) / 16777216;
  }

  /** One element of `torch.rand(..., dtype=float64)`. */
  randF64(): number {
    const hi = this.random() & 0x1fffff;
    const lo = this.random();
    return (hi * 4294967296 + lo) / 9007199254740992;
  }
}
