import { Tensor } from "@llmq/tensor";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { formatSerializationError } from "./errors.js";
import { type QuantizedFormat, dequantizeModule } from "./quantized-checkpoint.js";

/** Case count: LLMQ_FUZZ_RUNS (CI default 2000; run locally with 10000+). GPTQ, AWQ, bitsandbytes, FP8, HQQ and AQLM part sets. */
const RUNS = Number(process.env.LLMQ_FUZZ_RUNS ?? 2000);

const dim = fc.oneof(fc.constantFrom(1, 3, 8, 16, 24, 32, 64), fc.integer({ min: 0, max: 70 }));
const tensor = fc.record({
  dtype: fc.constantFrom("i32", "i32", "i32", "f16", "f32", "i64", "u8", "u8", "i8", "f8_e4m3fn"),
  shape: fc.oneof(fc.tuple(dim, dim).map((s) => [...s]), fc.array(dim, { maxLength: 3 })),
  fill: fc.integer(),
});
const format: fc.Arbitrary<QuantizedFormat> = fc.oneof(
  fc.constant({ method: "bitsandbytes_4bit" as const }),
  fc.constant({ method: "bitsandbytes_8bit" as const }),
  fc.constant({ method: "fp8" as const }),
  fc.constant({ method: "fbgemm_fp8" as const }),
  fc.constant({ method: "hqq" as const }),
  fc.constant({ method: "aqlm" as const }),
  fc.record({
    method: fc.constant("gptq" as const),
    options: fc.record({ bits: fc.constantFrom(2, 3, 4, 8) as fc.Arbitrary<2 | 3 | 4 | 8>, groupSize: fc.oneof(fc.constantFrom(-1, 8, 32, 128), fc.integer({ min: -3, max: 100 })), v1: fc.boolean() }),
  }),
  fc.record({
    method: fc.constant("awq" as const),
    options: fc.record({ groupSize: fc.oneof(fc.constantFrom(8, 32, 64, 128), fc.integer({ min: -3, max: 300 })), version: fc.constantFrom("gemm" as const, "gemv" as const) }),
  }),
);

/** quant_state JSON with plausible and broken fields. */
const QUANT_STATE = fc
  .record({
    quant_type: fc.constantFrom("nf4", "fp4", "int4", 3),
    blocksize: fc.oneof(fc.constantFrom(64, 128), fc.integer({ min: -2, max: 300 })),
    dtype: fc.constantFrom("float32", "bfloat16", "float16", "int8"),
    shape: fc.oneof(fc.tuple(dim, dim).map((s) => [...s]), fc.array(fc.integer({ min: -1, max: 40 }), { maxLength: 3 })),
    nested_blocksize: fc.option(fc.integer({ min: -1, max: 300 })),
    nested_offset: fc.option(fc.double()),
  })
  .map((o) => new TextEncoder().encode(JSON.stringify(o)));

const make = (t: { dtype: string; shape: number[]; fill: number }): Tensor => {
  const n = t.shape.reduce((a, b) => a * b, 1);
  const data =
    t.dtype === "i32"
      ? new Int32Array(n).map((_, i) => t.fill ^ (i * 2654435761))
      : t.dtype === "f32"
        ? new Float32Array(n).fill(t.fill)
        : t.dtype === "i64"
          ? new BigInt64Array(n).fill(BigInt(t.fill))
          : t.dtype === "u8" || t.dtype === "f8_e4m3fn"
            ? new Uint8Array(n).map((_, i) => (t.fill + i * 7) & 0xff)
            : t.dtype === "i8"
              ? new Int8Array(n).map((_, i) => (t.fill + i) & 0x7f)
              : new Uint16Array(n).fill(t.fill & 0x7bff);
  return new Tensor(t.dtype as "i32", t.shape, data as Int32Array);
};

describe("GPTQ / AWQ / bitsandbytes / FP8 / HQQ / AQLM: malformed tensor sets", () => {
  it(`${RUNS} random packed-linear tensor sets → a dense weight of the implied shape or a typed error`, () => {
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom("qweight", "qzeros", "scales", "g_idx", "weight", "absmax", "quant_map", "nested_absmax", "nested_quant_map", "SCB", "weight_scale_inv", "weight_scale", "W_q", "scale", "zero", "nbits", "shape", "packing", "axis", "group_size", "codes", "codebooks"), tensor),
        fc.option(fc.oneof(fc.uint8Array({ maxLength: 40 }), QUANT_STATE)),
        format,
        (ts, qs, fmt) => {
          const parts = new Map<string, Tensor>();
          for (const [k, v] of Object.entries(ts)) parts.set(k, make(v));
          if (qs !== null) parts.set("quant_state", new Tensor("u8", [qs.length], qs));
          const r = dequantizeModule("f", "m", parts, fmt);
          if (E.isLeft(r)) {
            expect(r.left._tag).toBe("CompressorError");
            expect(formatSerializationError(r.left).length).toBeGreaterThan(0);
          } else {
            const src = parts.get(fmt.method === "gptq" || fmt.method === "awq" ? "qweight" : fmt.method === "hqq" ? "W_q" : fmt.method === "aqlm" ? "codes" : "weight")!;
            // AQLM: one tile (≤ 256 values) per code group; the others ≤ 16 values per stored element
            const bound = fmt.method === "aqlm" ? 256 * src.size : 16 * src.size;
            expect(r.right.size).toBeLessThanOrEqual(bound);
            expect(r.right.data.every((x) => Number.isFinite(x) || Number.isNaN(x))).toBe(true);
          }
        },
      ),
      { numRuns: RUNS },
    );
  });
});
