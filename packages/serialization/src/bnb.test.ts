import { readFileSync } from "node:fs";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantizedFormatOf, quantizedPartsOf } from "./quantized-checkpoint.js";
import { deserializeSafetensors } from "./safetensors-reader.js";
import { FIXTURES, readJson } from "./test-support/fixtures.js";

const manifest = readJson<{ cases: Record<string, { kind: string; shape: number[] }> }>("bnb/manifest.json");
const file = deserializeSafetensors("cases", new Uint8Array(readFileSync(`${FIXTURES}bnb/cases.safetensors`)));
if (E.isLeft(file)) throw new Error(JSON.stringify(file.left));
const tensors = file.right.tensors;
const bits = (t: Tensor): Uint32Array => new Uint32Array((t.data as Float32Array).buffer, (t.data as Float32Array).byteOffset, t.size);

describe("bitsandbytes: bit for bit bitsandbytes 0.50.2's dequantize_4bit / int8_vectorwise_dequant (CPU)", () => {
  for (const [name, c] of Object.entries(manifest.cases)) {
    it(`${name} (${c.kind})`, () => {
      const fmt = quantizedFormatOf("config.json", c.kind === "4bit" ? { quant_method: "bitsandbytes", load_in_4bit: true } : { quant_method: "bitsandbytes", load_in_8bit: true });
      if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
      const names = [...tensors.keys()].filter((n) => n.startsWith(`${name}.`) && !n.endsWith(".expected"));
      const parts = quantizedPartsOf(fmt.right, names);
      expect(parts.size).toBe(names.length);
      expect(new Set([...parts.values()].map(([prefix]) => prefix))).toEqual(new Set([name]));
      const byPart = new Map([...parts].map(([n, [, part]]) => [part, tensors.get(n)!] as const));
      const w = dequantizeModule("cases", name, byPart, fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(bits(w.right)).toEqual(bits(tensors.get(`${name}.expected`)!));
    });
  }

  it("a broken quant_state or a missing part is a CompressorError naming the weight", () => {
    const fmt = { method: "bitsandbytes_4bit" } as const;
    const good = new Map(
      [...quantizedPartsOf(fmt, [...tensors.keys()].filter((n) => n.startsWith("nf4_dq_float32.")))].map(([n, [, part]]) => [part, tensors.get(n)!] as const),
    );
    const noAbsmax = new Map(good);
    noAbsmax.delete("absmax");
    for (const parts of [noAbsmax, new Map(good).set("quant_state", tensors.get("nf4_dq_float32.weight.absmax")!)]) {
      const r = dequantizeModule("f", "m", parts, fmt);
      expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "CompressorError", tensor: "m.weight", format: "bitsandbytes_4bit" });
    }
  });
});
