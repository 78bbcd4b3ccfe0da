import { describe, expect, it } from "vitest";
import { expF64, lanes8Sum } from "./exp-f64.js";

describe("expF64", () => {
  it("is within 2⁻⁵¹ relative of eˣ over the range every f32 result needs", () => {
    let worst = 0;
    for (let i = 0; i <= 200_000; i++) {
      const x = -104 + (192.7 * i) / 200_000;
      const want = Math.exp(x);
      worst = Math.max(worst, Math.abs(expF64(x) - want) / want);
    }
    expect(worst).toBeLessThan(2 ** -51);
  });

  it("rounds to the same f32 as Math.exp on a million f32 arguments", () => {
    let s = 12345;
    let differ = 0;
    for (let i = 0; i < 1_000_000; i++) {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      const x = Math.fround((s / 2 ** 32) * 40 - 30);
      if (Math.fround(expF64(x)) !== Math.fround(Math.exp(x))) differ++;
    }
    expect(differ).toBe(0);
  });

  it("keeps the edges: exact at 0, 0 / ∞ beyond the f32 range, NaN", () => {
    expect(expF64(0)).toBe(1);
    expect(expF64(-0)).toBe(1);
    expect(Math.fround(expF64(-1000))).toBe(0);
    expect(Math.fround(expF64(-Infinity))).toBe(0);
    expect(Math.fround(expF64(1000))).toBe(Number.POSITIVE_INFINITY);
    expect(Math.fround(expF64(Infinity))).toBe(Number.POSITIVE_INFINITY);
    expect(expF64(Number.NaN)).toBeNaN();
    expect(Math.fround(expF64(88.72))).toBe(Math.fround(Math.exp(88.72)));
  });
});

describe("lanes8Sum", () => {
  it("adds in 8 interleaved lanes, ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7))", () => {
    const v = [1e16, 1, -1e16, 1, 2, 3, 4, 5, 1, 0.5];
    const lanes = [1e16 + 1, 1 + 0.5, -1e16, 1, 2, 3, 4, 5];
    expect(lanes8Sum(v, 0, v.length - 1)).toBe(lanes[0]! + lanes[1]! + (lanes[2]! + lanes[3]!) + (lanes[4]! + lanes[5]! + (lanes[6]! + lanes[7]!)));
    expect(lanes8Sum([5, 6, 7], 1, 1)).toBe(6);
    expect(lanes8Sum([2, 3], 0, 1, (x) => x * x)).toBe(13);
  });
});
