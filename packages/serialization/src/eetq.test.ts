import { f16FromNumber, f16ToNumber } from "@llmq/tensor";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeEetq, eetqPreprocess, eetqQuantize, eetqShapeError, eetqUnpreprocess } from "./eetq.js";
import { dequantizeModule, quantizedFormatOf, quantizedPartsOf } from "./quantized-checkpoint.js";
import { hex, quantFixture, readJson } from "./test-support/fixtures.js";

// tools/gen_eetq_fixtures.py: kernels-community/quantization-eetq's cutlass_preprocessors.cc (symmetric_quantize +
// preprocess_weights_for_mixed_gemm, SM 75–89) compiled with g++, on the transposed weight as EetqQuantize passes it.
const { cases, tensors } = quantFixture<{ dtype: "float32" | "float16"; sm70_differs: boolean }>("eetq");
const get = (k: string) => tensors.get(k) as Tensor;
const i8 = (t: Tensor) => t.data as Int8Array;
const bytes = (a: Int8Array) => hex(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));

describe("EETQ int8: byte for byte EETQ's symmetric_quantize and preprocess_weights_for_mixed_gemm (SM 75-89)", () => {
  for (const [name, c] of Object.entries(cases)) {
    it(name, () => {
      const src = get(`${name}/source`);
      const [out, inF] = src.shape as [number, number];
      const w = c.dtype === "float16" ? Float32Array.from(src.data as Uint16Array, f16ToNumber) : (src.data as Float32Array);
      const q = eetqQuantize(w, out, inF);
      expect(bytes(q.codes)).toBe(bytes(i8(get(`${name}/codes`))));
      const scales = get(`${name}/weight_scales`);
      const stored = c.dtype === "float16" ? Uint16Array.from(q.scales, f16FromNumber) : q.scales;
      expect(hex(new Uint8Array(stored.buffer))).toBe(hex(scales.bytes()));
      const pre = eetqPreprocess(q.codes, inF, out);
      expect(E.isRight(pre) && bytes(pre.right)).toBe(bytes(i8(get(`${name}/weight`))));
      const back = eetqUnpreprocess(i8(get(`${name}/weight`)), inF, out);
      expect(E.isRight(back) && bytes(back.right)).toBe(bytes(q.codes));
      const sf = c.dtype === "float16" ? Float32Array.from(scales.data as Uint16Array, f16ToNumber) : (scales.data as Float32Array);
      const dense = dequantizeEetq(i8(get(`${name}/weight`)), [inF, out], sf);
      if (E.isLeft(dense)) throw new Error(dense.left);
      expect(dense.right.shape).toEqual([out, inF]);
      const codes = i8(get(`${name}/codes`));
      for (const [o, i] of [[0, 0], [out - 1, inF - 1], [1, 3]] as const) expect(dense.right.data[o * inF + i]).toBe(Math.fround(codes[i * out + o]! * sf[o]!));
    });
  }

  it("refuses the shapes EETQ refuses (its own messages are in the fixture manifest), and partial row tiles", () => {
    expect(eetqShapeError(64, 32)).toMatch(/out_features 32 is not a multiple of 64/);
    expect(eetqShapeError(64, 172)).toMatch(/out_features 172/);
    expect(eetqShapeError(96, 64)).toMatch(/in_features 96 is not a multiple of 64/);
    expect(eetqShapeError(128, 192)).toBeNull();
    expect(E.isLeft(eetqPreprocess(new Int8Array(64 * 32), 64, 32))).toBe(true);
    // Every [out x in] shape EETQ's FT_CHECKs refused in the fixture run is refused here too.
    const refused = readJson<{ refused: Record<string, string> }>("eetq/manifest.json").refused;
    for (const [shape, message] of Object.entries(refused)) {
      const [out, inF] = shape.split("x").map(Number) as [number, number];
      expect([shape, message, eetqShapeError(inF, out)]).toEqual([shape, expect.stringContaining("[FT][ERROR]"), expect.any(String)]);
    }
  });

  it("a transformers EETQ directory is a quantized checkpoint: weight + weight_scales per linear, dequantized as code × scale", () => {
    const fmt = quantizedFormatOf("config.json", { quant_method: "eetq", weights: "int8", modules_to_not_convert: null });
    if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
    const names = ["m.weight", "m.weight_scales", "n.weight", "norm.weight"];
    expect([...quantizedPartsOf(fmt.right, names)]).toEqual([["m.weight", ["m", "weight"]], ["m.weight_scales", ["m", "weight_scales"]]]);
    const parts = new Map([["weight", get("f16-64x128/weight")], ["weight_scales", get("f16-64x128/weight_scales")]]);
    const w = dequantizeModule("f", "m", parts, fmt.right);
    if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
    const [codes, scales] = [i8(get("f16-64x128/codes")), Float32Array.from(get("f16-64x128/weight_scales").data as Uint16Array, f16ToNumber)];
    expect(w.right.shape).toEqual([64, 128]);
    expect(Array.from(w.right.data)).toEqual(Array.from({ length: 64 * 128 }, (_, j) => Math.fround(codes[(j % 128) * 64 + Math.floor(j / 128)]! * scales[Math.floor(j / 128)]!)));
    const noScales = dequantizeModule("f", "m", new Map([["weight", get("f16-64x128/weight")]]), fmt.right);
    expect(E.isLeft(noScales) && noScales.left).toMatchObject({ _tag: "CompressorError", tensor: "m.weight", format: "eetq" });
  });
});
