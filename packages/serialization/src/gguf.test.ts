import { readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeGguf } from "./gguf-dequantize.js";
import { type GgufScalar, type GgufValue, parseGgufHeader } from "./gguf-header.js";
import { type GgufFile, openGguf } from "./gguf-reader.js";
import { ggmlTypeById } from "./ggml-types.js";
import { deserializeSafetensors } from "./safetensors-reader.js";
import { FIXTURES, readJson } from "./test-support/fixtures.js";

interface ManifestTensor {
  readonly name: string;
  readonly type: string;
  readonly ne: number[];
  readonly shape: number[];
  readonly n_bytes: number;
  readonly data_offset: number;
}
interface ManifestFile {
  readonly alignment: number;
  readonly data_offset: number;
  readonly metadata: Record<string, { types: string[]; value: unknown }>;
  readonly tensors: ManifestTensor[];
}
const manifest = readJson<{ files: Record<string, ManifestFile> }>("gguf/manifest.json");

const open = async (name: string): Promise<GgufFile> => {
  const r = await openGguf(`${FIXTURES}gguf/${name}`)();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

/** gguf-py's view of a value: 64-bit integers beyond 2^53 as decimal strings. */
const plain = (v: GgufScalar): unknown => (typeof v === "bigint" ? (v > 2n ** 53n || v < -(2n ** 53n) ? v.toString() : Number(v)) : v);
const contents = (v: GgufValue): unknown => (v.type === "ARRAY" ? v.value.map(plain) : plain(v.value));

const bits = (a: Float32Array): Uint32Array => new Uint32Array(a.buffer, a.byteOffset, a.length);

describe("GGUF container: what gguf-py's GGUFReader reads", () => {
  for (const [file, m] of Object.entries(manifest.files)) {
    it(`${file}: metadata, alignment and tensor infos`, async () => {
      const g = await open(file);
      try {
        expect(g.header.alignment).toBe(m.alignment);
        expect(g.header.dataOffset).toBe(m.data_offset);
        expect([...g.metadata.keys()]).toEqual(Object.keys(m.metadata));
        for (const [k, want] of Object.entries(m.metadata)) {
          const v = g.metadata.get(k)!;
          expect(v.type === "ARRAY" ? ["ARRAY", v.itemType] : [v.type]).toEqual(want.types);
          if (v.type === "FLOAT32") expect(v.value).toBe(Math.fround(want.value as number));
          else expect(contents(v)).toEqual(want.value);
        }
        expect(
          g.header.tensors.map((t) => ({ name: t.name, type: t.type.name, ne: t.ne, shape: t.shape, n_bytes: t.byteLength, data_offset: g.header.dataOffset + t.offset })),
        ).toEqual(m.tensors);
      } finally {
        await g.close();
      }
    });
  }
});

describe("GGUF dequantization: bit for bit gguf-py's numpy port of ggml's dequantize_row_*", () => {
  const expected = deserializeSafetensors("expected", new Uint8Array(readFileSync(`${FIXTURES}gguf/quants.expected.safetensors`)));
  if (E.isLeft(expected)) throw new Error(JSON.stringify(expected.left));
  for (const t of manifest.files["quants.gguf"]!.tensors) {
    it(`${t.type} (${t.name}, shape [${t.shape.join(", ")}])`, async () => {
      const g = await open("quants.gguf");
      try {
        const r = await g.read(t.name)();
        if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
        const want = expected.right.tensors.get(t.name)!;
        expect(r.right.shape).toEqual(want.shape);
        expect(bits(r.right.data as Float32Array)).toEqual(bits(want.data as Float32Array));
      } finally {
        await g.close();
      }
    });
  }

  it("the in-memory path (browser) gives the same header and values", () => {
    const bytes = new Uint8Array(readFileSync(`${FIXTURES}gguf/quants.gguf`));
    const h = parseGgufHeader("quants.gguf", bytes);
    if (E.isLeft(h)) throw new Error(JSON.stringify(h.left));
    const t = h.right.byName.get("t.q6_k")!;
    const start = h.right.dataOffset + t.offset;
    const y = dequantizeGguf(t.type, bytes.subarray(start, start + t.byteLength));
    const want = E.getOrElseW(() => null)(expected)!.tensors.get("t.q6_k")!;
    expect(bits(y)).toEqual(bits(want.data as Float32Array));
  });

  it("a type llmq does not dequantize (IQ2_XXS) is a typed error naming the supported ones", async () => {
    const iq = ggmlTypeById(16)!;
    expect(() => dequantizeGguf(iq, new Uint8Array(iq.typeSize))).toThrow(/IQ2_XXS/);
  });
});
