import { FP8_E4M3FN_VALUES, f32FromBits, fp8e4m3FromNumber, roundToDType } from "@llmq/tensor";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { bf16Round, f16Round, fp8Round } from "./working-dtype.js";

// The bit-level hot-loop roundings agree with @llmq/tensor's reference conversions (including signed zeros).

const f32s = fc.integer({ min: 0, max: 0xffffffff }).map((b) => f32FromBits(b));
const edges = [0, -0, 1, -1, 2 ** -14, 2 ** -15 * 3, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 65504, 65519.99, 65520, 1e-40, 448, 464, 2 ** -6, 2 ** -10, 2 ** -9 * 1.5, 3.4e38, Infinity];

const same = (a: number, b: number) => Object.is(a, b) || (Number.isNaN(a) && Number.isNaN(b));

describe("hot-loop roundings", () => {
  it("bf16Round ≡ roundToDType('bf16')", () => {
    for (const x of [...edges, ...edges.map((e) => -e)]) expect(same(bf16Round(x), roundToDType("bf16", x)), String(x)).toBe(true);
    fc.assert(fc.property(f32s, (x) => same(bf16Round(x), roundToDType("bf16", x))), { numRuns: 20000 });
  });
  it("f16Round ≡ roundToDType('f16')", () => {
    for (const x of [...edges, ...edges.map((e) => -e)]) expect(same(f16Round(x), roundToDType("f16", x)), String(x)).toBe(true);
    fc.assert(fc.property(f32s, (x) => same(f16Round(x), roundToDType("f16", x))), { numRuns: 20000 });
    fc.assert(fc.property(fc.double({ min: -70000, max: 70000 }), (x) => same(f16Round(x), roundToDType("f16", x))), { numRuns: 20000 });
  });
  it("fp8Round ≡ the e4m3fn cast on values clamped to ±448", () => {
    const ref = (x: number) => FP8_E4M3FN_VALUES[fp8e4m3FromNumber(x)]!;
    for (const x of [...edges, ...edges.map((e) => -e)]) {
      const c = Math.min(Math.max(x, -448), 448);
      expect(same(fp8Round(c), ref(c)), String(c)).toBe(true);
    }
    fc.assert(
      fc.property(f32s, (x) => {
        const c = Number.isNaN(x) ? x : Math.min(Math.max(x, -448), 448);
        return same(fp8Round(c), ref(c));
      }),
      { numRuns: 20000 },
    );
  });
});
