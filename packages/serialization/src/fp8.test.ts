import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule } from "./quantized-checkpoint.js";
import { bitExactCases } from "./test-support/fixtures.js";

describe("FP8 checkpoints: bit for bit transformers' Fp8Dequantize (fine-grained) and q·scale (FBGEMM)", () => {
  const { tensors } = bitExactCases<{ method: string; shape: number[] }>(
    "fp8",
    (c) => ({ quant_method: c.method, weight_block_size: [128, 128] }),
    (name, c) => `${name} (${c.method})`,
  );

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
