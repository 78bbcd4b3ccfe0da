import { describe, expect, it } from "vitest";
import { Rng, rand, randn } from "./rng.js";
import { loadFixture } from "./ops/test-util.js";

// fixtures/ops.json "rng": the first outputs of an independent Python implementation of splitmix32-seeded
// xoshiro128** (tools/gen_tensor_op_fixtures.py).
const streams: Record<string, number[]> = loadFixture("ops.json").rng;

describe("Rng", () => {
  it("matches the reference xoshiro128** stream for several seeds", () => {
    for (const [seed, want] of Object.entries(streams)) {
      const r = new Rng(Number(seed));
      expect(Array.from({ length: want.length }, () => r.nextU32()), seed).toEqual(want);
    }
  });
  it("uniform is in [0, 1) and built from two draws", () => {
    const a = new Rng(7);
    const b = new Rng(7);
    for (let i = 0; i < 1000; i++) {
      const u = a.uniform();
      expect(u >= 0 && u < 1).toBe(true);
      expect(u).toBe(((b.nextU32() >>> 5) * 67108864 + (b.nextU32() >>> 6)) / 2 ** 53);
    }
  });
  it("normal has mean ≈ 0 and variance ≈ 1 (n = 200000, 5σ bounds)", () => {
    const r = new Rng(3);
    const n = 200_000;
    let s = 0;
    let s2 = 0;
    for (let i = 0; i < n; i++) {
      const v = r.normal();
      s += v;
      s2 += v * v;
    }
    expect(Math.abs(s / n)).toBeLessThan(5 / Math.sqrt(n));
    expect(Math.abs(s2 / n - 1)).toBeLessThan(5 * Math.sqrt(2 / n));
  });
  it("randint is in range and unbiased enough; permutation is a permutation", () => {
    const r = new Rng(11);
    const counts = new Array(6).fill(0);
    for (let i = 0; i < 60_000; i++) counts[r.randint(-2, 4) + 2]++;
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    const p = Array.from(new Rng(5).permutation(100));
    expect([...p].sort((a, b) => a - b)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(p).not.toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(() => r.randint(3, 3)).toThrow(/randint/);
  });
  it("same seed → same tensors; f32 uniforms stay below 1", () => {
    expect(Array.from(randn([4, 5], 42).data)).toEqual(Array.from(randn([4, 5], 42).data));
    expect(Array.from(randn([3], 1, "f64").data)).not.toEqual(Array.from(randn([3], 2, "f64").data));
    const u = rand([10_000], 9);
    expect(u.dtype).toBe("f32");
    expect(Array.from(u.data).every((v) => v >= 0 && v < 1)).toBe(true);
  });
});
