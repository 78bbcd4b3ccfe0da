import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf } from "./quantized-checkpoint.js";
import { caseParts, f32Bits as bits, quantFixture } from "./test-support/fixtures.js";

const { cases, tensors } = quantFixture<{ method: string; shape: number[] }>("fp8");

describe("FP8 checkpoints: bit for bit transformers' Fp8Dequantize (fine-grained) and q·scale (FBGEMM)", () => {
  for (const [name, c] of Object.entries(cases)) {
    it(`${name} (${c.method})`, () => {
      const fmt = quantizedFormatOf("config.json", { quant_method: c.method, weight_block_size: [128, 128] });
      if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
      const parts = caseParts(fmt.right, tensors, name);
      expect(parts.size).toBe(2);
      const w = dequantizeModule("cases", name, parts, fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(bits(w.right)).toEqual(bits(tensors.get(`${name}.expected`)!));
    });
  }

  it("a scale grid that does not divide the weight, or a non-fp8 weight, is a CompressorError", () => {
    const fmt = { method: "fp8" } as const;
    const w = tensors.get("fp8_per_tensor.weight")!; // [24, 40]
    const grid = tensors.get("fp8_block128.weight_scale_inv")!; // [2, 3]: 40 columns are not 3 blocks
    const r = dequantizeModule("f", "m", new Map([["weight", w], ["weight_scale_inv", grid]]), fmt);
    expect(E.isLeft(r) && r.left._tag).toBe("CompressorError");
    const r2 = dequantizeModule("f", "m", new Map([["weight", tensors.get("fbgemm.expected")!], ["weight_scale", tensors.get("fbgemm.weight_scale")!]]), { method: "fbgemm_fp8" });
    expect(E.isLeft(r2) && r2.left._tag).toBe("CompressorError");
  });
});
