import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf } from "./quantized-checkpoint.js";
import { caseParts, f32Bits as bits, quantFixture } from "./test-support/fixtures.js";

const { cases, tensors } = quantFixture<{ shape: number[] }>("hqq");
const fmt = quantizedFormatOf("config.json", { quant_method: "hqq", quant_config: {}, skip_modules: ["lm_head"] });
if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
const partsOf = (name: string) => caseParts(fmt.right, tensors, name);

describe("HQQ: bit for bit hqq 0.2.8's HQQLinear.dequantize (CPU)", () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const w = dequantizeModule("cases", name, partsOf(name), fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(bits(w.right)).toEqual(bits(tensors.get(`${name}.expected`)!));
    });
  }

  it("a packing that contradicts nbits, or a missing W_q, is a CompressorError", () => {
    const p = partsOf("b4_g64_ax1_f32");
    p.set("nbits", tensors.get("b8_g64_ax1_f32.nbits")!);
    expect(E.isLeft(dequantizeModule("f", "m", p, fmt.right))).toBe(true);
    const q = partsOf("b4_g64_ax1_f32");
    q.delete("W_q");
    const r = dequantizeModule("f", "m", q, fmt.right);
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "CompressorError", format: "hqq" });
  });
});
