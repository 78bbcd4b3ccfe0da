import { readFileSync } from "node:fs";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf, quantizedPartsOf } from "./quantized-checkpoint.js";
import { deserializeSafetensors } from "./safetensors-reader.js";
import { FIXTURES, readJson } from "./test-support/fixtures.js";

const manifest = readJson<{ cases: Record<string, { method: string; shape: number[] }> }>("fp8/manifest.json");
const file = deserializeSafetensors("cases", new Uint8Array(readFileSync(`${FIXTURES}fp8/cases.safetensors`)));
if (E.isLeft(file)) throw new Error(JSON.stringify(file.left));
const tensors = file.right.tensors;
const bits = (t: Tensor): Uint32Array => new Uint32Array((t.data as Float32Array).buffer, (t.data as Float32Array).byteOffset, t.size);

describe("FP8 checkpoints: bit for bit transformers' Fp8Dequantize (fine-grained) and q·scale (FBGEMM)", () => {
  for (const [name, c] of Object.entries(manifest.cases)) {
    it(`${name} (${c.method})`, () => {
      const fmt = quantizedFormatOf("config.json", { quant_method: c.method, weight_block_size: [128, 128] });
      if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
      const names = [...tensors.keys()].filter((n) => n.startsWith(`${name}.`) && !n.endsWith(".expected"));
      const parts = quantizedPartsOf(fmt.right, names);
      expect(parts.size).toBe(2);
      const w = dequantizeModule("cases", name, new Map([...parts].map(([n, [, part]]) => [part, tensors.get(n)!] as const)), fmt.right);
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
