import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf } from "./quantized-checkpoint.js";
import { caseParts, f32Bits as bits, quantFixture } from "./test-support/fixtures.js";

const { cases, tensors } = quantFixture<{ kind: string; shape: number[] }>("bnb");

describe("bitsandbytes: bit for bit bitsandbytes 0.50.2's dequantize_4bit / int8_vectorwise_dequant (CPU)", () => {
  for (const [name, c] of Object.entries(cases)) {
    it(`${name} (${c.kind})`, () => {
      const fmt = quantizedFormatOf("config.json", c.kind === "4bit" ? { quant_method: "bitsandbytes", load_in_4bit: true } : { quant_method: "bitsandbytes", load_in_8bit: true });
      if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
      const w = dequantizeModule("cases", name, caseParts(fmt.right, tensors, name), fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(bits(w.right)).toEqual(bits(tensors.get(`${name}.expected`)!));
    });
  }

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
