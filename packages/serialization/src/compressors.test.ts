import { readFileSync } from "node:fs";
import { join } from "node:path";
import { type Tensor, getNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { decodeQuantizationScheme } from "@llmq/schemes";
import { describe, expect, it } from "vitest";
import { compressModule } from "./compress-module.js";
import { type CompressionFormat, type CompressorScheme, inferFormat } from "./compression-format.js";
import { decompressModule } from "./decompress-module.js";
import { openSafetensors } from "./safetensors-reader.js";
import { serializeSafetensors } from "./safetensors-writer.js";
import { FIXTURES, hex, readJson } from "./test-support/fixtures.js";

interface Case {
  readonly format: CompressionFormat;
  readonly scheme: CompressorScheme;
  readonly compressed_order: string[];
  readonly decompressed_dtype: string;
}
const manifest = readJson<Record<string, Case>>("compressors/manifest.json");

const right = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected Right, got ${JSON.stringify(r.left)}`);
  return r.right;
};

const load = async (file: string): Promise<Map<string, Tensor>> => {
  const f = right(await openSafetensors(join(FIXTURES, "compressors", file))());
  const m = new Map<string, Tensor>();
  for (const n of f.names) m.set(n, right(await f.read(n)()));
  await f.close();
  return m;
};

/** The state dict in the order the fixture script built it (CT's dict order decides the output key order). */
const INPUT_ORDER = ["weight_codes", "weight_scale", "weight_zero_point", "weight_global_scale", "weight_g_idx", "input_scale"];

const values = (t: Tensor): number[] => Array.from({ length: t.size }, (_, i) => getNumber(t, i));

describe("compressed-tensors 0.20.0 compressors (fixtures from the real compressors)", () => {
  for (const [name, c] of Object.entries(manifest)) {
    it(`${name}: infers ${c.format} (wire scheme and @llmq/schemes' decoded scheme)`, () => {
      expect(inferFormat(c.scheme)).toBe(c.format);
      expect(inferFormat(right(decodeQuantizationScheme(c.scheme)))).toBe(c.format);
      expect(inferFormat(c.scheme, "Conv2d")).toBe("dense");
    });

    it(`${name}: compress writes the same bytes as compressed-tensors`, async () => {
      const inputs = await load(`${name}.inputs.safetensors`);
      const state = new Map<string, Tensor>();
      for (const k of INPUT_ORDER) if (inputs.has(k)) state.set(k === "weight_codes" ? "weight" : k, inputs.get(k)!);
      const out = right(compressModule(c.format, c.scheme, state, { module: name }));
      expect([...out.keys()]).toEqual(c.compressed_order);
      const bytes = right(serializeSafetensors([...out], { format: "pt" }));
      const expected = new Uint8Array(readFileSync(join(FIXTURES, "compressors", `${name}.compressed.safetensors`)));
      expect(hex(bytes)).toBe(hex(expected));
    });

    it(`${name}: decompress gives compressed-tensors' dequantized weight exactly`, async () => {
      const compressed = await load(`${name}.compressed.safetensors`);
      const expected = (await load(`${name}.decompressed.safetensors`)).get("weight")!;
      const out = right(decompressModule(c.format, c.scheme, compressed, { module: name }));
      const w = out.get("weight")!;
      expect(w.dtype).toBe("f32");
      expect(w.shape).toEqual(expected.shape);
      expect(values(w)).toEqual(values(expected));
    });
  }
});
