import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule } from "./quantized-checkpoint.js";
import { bitExactCases, caseParts } from "./test-support/fixtures.js";

describe("bitsandbytes: bit for bit bitsandbytes 0.50.2's dequantize_4bit / int8_vectorwise_dequant (CPU)", () => {
  const { tensors } = bitExactCases<{ kind: string; shape: number[] }>(
    "bnb",
    (c) => ({ quant_method: "bitsandbytes", ...(c.kind === "4bit" ? { load_in_4bit: true } : { load_in_8bit: true }) }),
    (name, c) => `${name} (${c.kind})`,
  );

  it("a broken quant_state or a missing part is a CompressorError naming the weight", () => {
    const fmt = { method: "bitsandbytes_4bit" } as const;
    const good = caseParts(fmt, tensors, "nf4_dq_float32");
    const noAbsmax = new Map(good);
    noAbsmax.delete("absmax");
    for (const parts of [noAbsmax, new Map(good).set("quant_state", tensors.get("nf4_dq_float32.weight.absmax")!)]) {
      const r = dequantizeModule("f", "m", parts, fmt);
      expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "CompressorError", tensor: "m.weight", format: "bitsandbytes_4bit" });
    }
  });
});
