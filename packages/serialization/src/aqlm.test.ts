import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf } from "./quantized-checkpoint.js";
import { caseParts, f32Bits as bits, quantFixture } from "./test-support/fixtures.js";

const { cases, tensors } = quantFixture<{ shape: number[] }>("aqlm");
const fmt = quantizedFormatOf("config.json", { quant_method: "aqlm", in_group_size: 8, out_group_size: 1, num_codebooks: 1, nbits_per_codebook: 16 });
if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
const partsOf = (name: string) => caseParts(fmt.right, tensors, name);

describe("AQLM: bit for bit aqlm 1.1.7 _dequantize_weight (CPU)", () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const w = dequantizeModule("cases", name, partsOf(name), fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(bits(w.right)).toEqual(bits(tensors.get(`${name}.expected`)!));
    });
  }

  it("codes naming more codebooks than stored, or a missing part, is a CompressorError", () => {
    const p = partsOf("1x10_g8_f32");
    p.set("codebooks", tensors.get("2x8_g8_f32.codebooks")!);
    expect(E.isLeft(dequantizeModule("f", "m", p, fmt.right))).toBe(true);
    const q = partsOf("1x10_g8_f32");
    q.delete("scales");
    const r = dequantizeModule("f", "m", q, fmt.right);
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "CompressorError", format: "aqlm" });
  });
});
