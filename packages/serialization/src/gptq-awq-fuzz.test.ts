import { Tensor } from "@llmq/tensor";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { formatSerializationError } from "./errors.js";
import { type QuantizedFormat, dequantizeModule } from "./quantized-checkpoint.js";

/** Case count: LLMQ_FUZZ_RUNS (CI default 2000; run locally with 10000+). */
const RUNS = Number(process.env.LLMQ_FUZZ_RUNS ?? 2000);

const dim = fc.oneof(fc.constantFrom(1, 3, 8, 16, 24, 32, 64), fc.integer({ min: 0, max: 70 }));
const tensor = fc.record({
  dtype: fc.constantFrom("i32", "i32", "i32", "f16", "f32", "i64", "u8"),
  shape: fc.oneof(fc.tuple(dim, dim).map((s) => [...s]), fc.array(dim, { maxLength: 3 })),
  fill: fc.integer(),
});
const format: fc.Arbitrary<QuantizedFormat> = fc.oneof(
  fc.record({
    method: fc.constant("gptq" as const),
    options: fc.record({ bits: fc.constantFrom(2, 3, 4, 8) as fc.Arbitrary<2 | 3 | 4 | 8>, groupSize: fc.oneof(fc.constantFrom(-1, 8, 32, 128), fc.integer({ min: -3, max: 100 })), v1: fc.boolean() }),
  }),
  fc.record({
    method: fc.constant("awq" as const),
    options: fc.record({ groupSize: fc.oneof(fc.constantFrom(8, 32, 64, 128), fc.integer({ min: -3, max: 300 })), version: fc.constantFrom("gemm" as const, "gemv" as const) }),
  }),
);

const make = (t: { dtype: string; shape: number[]; fill: number }): Tensor => {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const data =
    t.dtype === "i32"
      ? new Int32Array(n).map((_, i) => t.fill ^ (i * 2654435761))
      : t.dtype === "f32"
        ? new Float32Array(n).fill(t.fill)
        : t.dtype === "i64"
          ? new BigInt64Array(n).fill(BigInt(t.fill))
          : t.dtype === "u8"
            ? new Uint8Array(n)
            : new Uint16Array(n).fill(t.fill & 0x7bff);
  return new Tensor(t.dtype as "i32", t.shape, data as Int32Array);
};

describe("GPTQ / AWQ: malformed tensor sets", () => {
  it(`${RUNS} random packed-linear tensor sets → a dense weight of the implied shape or a typed error`, () => {
    fc.assert(
      fc.property(
        fc.record({ qweight: fc.option(tensor), qzeros: fc.option(tensor), scales: fc.option(tensor), g_idx: fc.option(tensor) }),
        format,
        (ts, fmt) => {
          const parts = new Map<string, Tensor>();
          for (const [k, v] of Object.entries(ts)) if (v !== null) parts.set(k, make(v));
          const r = dequantizeModule("f", "m", parts, fmt);
          if (E.isLeft(r)) {
            expect(r.left._tag).toBe("CompressorError");
            expect(formatSerializationError(r.left).length).toBeGreaterThan(0);
          } else {
            expect(r.right.size).toBeLessThanOrEqual(16 * parts.get("qweight")!.size);
            expect(r.right.data.every((x) => Number.isFinite(x) || Number.isNaN(x))).toBe(true);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
