import { readFileSync } from "node:fs";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf, quantizedPartsOf } from "./quantized-checkpoint.js";
import { deserializeSafetensors } from "./safetensors-reader.js";
import { FIXTURES, readJson } from "./test-support/fixtures.js";

const manifest = readJson<{ cases: Record<string, { shape: number[] }> }>("aqlm/manifest.json");
const file = deserializeSafetensors("cases", new Uint8Array(readFileSync(`${FIXTURES}aqlm/cases.safetensors`)));
if (E.isLeft(file)) throw new Error(JSON.stringify(file.left));
const tensors = file.right.tensors;
const bits = (t: Tensor): Uint32Array => new Uint32Array((t.data as Float32Array).buffer, (t.data as Float32Array).byteOffset, t.size);
const fmt = quantizedFormatOf("config.json", { quant_method: "aqlm", in_group_size: 8, out_group_size: 1, num_codebooks: 1, nbits_per_codebook: 16 });

const partsOf = (name: string): Map<string, Tensor> => {
  if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
  const names = [...tensors.keys()].filter((n) => n.startsWith(`${name}.`) && !n.endsWith(".expected"));
  const parts = quantizedPartsOf(fmt.right, names);
  expect(parts.size).toBe(names.length);
  return new Map([...parts].map(([n, [, part]]) => [part, tensors.get(n)!] as const));
};

describe("AQLM: bit for bit aqlm 1.1.7 _dequantize_weight (CPU)", () => {
  for (const [name, c] of Object.entries(manifest.cases)) {
    it(name, () => {
      if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
      const w = dequantizeModule("cases", name, partsOf(name), fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(bits(w.right)).toEqual(bits(tensors.get(`${name}.expected`)!));
    });
  }

  it("codes naming more codebooks than stored, or a missing part, is a CompressorError", () => {
    if (E.isLeft(fmt)) throw new Error("fmt");
    const p = partsOf("1x10_g8_f32");
    p.set("codebooks", tensors.get("2x8_g8_f32.codebooks")!);
    expect(E.isLeft(dequantizeModule("f", "m", p, fmt.right))).toBe(true);
    const q = partsOf("1x10_g8_f32");
    q.delete("scales");
    const r = dequantizeModule("f", "m", q, fmt.right);
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "CompressorError", format: "aqlm" });
  });
});
