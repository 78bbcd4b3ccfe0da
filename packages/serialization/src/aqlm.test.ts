import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf } from "./quantized-checkpoint.js";
import { bitExactCases, caseParts } from "./test-support/fixtures.js";

const CONFIG = { quant_method: "aqlm", in_group_size: 8, out_group_size: 1, num_codebooks: 1, nbits_per_codebook: 16 };
const fmt = quantizedFormatOf("config.json", CONFIG);
if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));

describe("AQLM: bit for bit aqlm 1.1.7 _dequantize_weight (CPU; float32 and float16 codebooks)", () => {
  const { tensors } = bitExactCases<{ shape: number[] }>("aqlm", () => CONFIG);
  const partsOf = (name: string) => caseParts(fmt.right, tensors, name);

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
