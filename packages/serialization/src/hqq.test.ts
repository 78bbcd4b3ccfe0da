import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf } from "./quantized-checkpoint.js";
import { bitExactCases, caseParts } from "./test-support/fixtures.js";

const CONFIG = { quant_method: "hqq", quant_config: {}, skip_modules: ["lm_head"] };
const fmt = quantizedFormatOf("config.json", CONFIG);
if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));

describe("HQQ: bit for bit hqq 0.2.8's HQQLinear.dequantize (CPU)", () => {
  const { tensors } = bitExactCases<{ shape: number[] }>("hqq", () => CONFIG);
  const partsOf = (name: string) => caseParts(fmt.right, tensors, name);

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
