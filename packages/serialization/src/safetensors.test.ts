import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor, storageFromBytes } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { encodeHeader, parseHeader } from "./safetensors-header.js";
import { openSafetensors } from "./safetensors-reader.js";
import { serializeSafetensors, writeSafetensors } from "./safetensors-writer.js";
import { FIXTURES, TORCH_TO_LLMQ, hex, readJson } from "./test-support/fixtures.js";

interface StEntry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly hex: string;
}
interface StCase {
  readonly metadata: Record<string, string> | null;
  readonly order: string[];
  readonly tensors: StEntry[];
}
const manifest = readJson<Record<string, StCase>>("safetensors/manifest.json");
const tmp = mkdtempSync(join(tmpdir(), "llmq-st-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const right = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected Right, got ${JSON.stringify(r.left)}`);
  return r.right;
};

const tensorOf = (e: StEntry): Tensor => {
  const dtype = TORCH_TO_LLMQ[e.dtype]!;
  const bytes = new Uint8Array(Buffer.from(e.hex, "hex"));
  return new Tensor(dtype, e.shape, storageFromBytes(dtype, bytes.buffer, bytes.byteOffset, bytes.byteLength));
};

describe("safetensors fixtures written by Python safetensors 0.8.0", () => {
  for (const [file, c] of Object.entries(manifest)) {
    it(`reads ${file} lazily: header, metadata, dtypes, shapes and bytes`, async () => {
      const f = right(await openSafetensors(join(FIXTURES, "safetensors", file))());
      try {
        expect(f.metadata === null ? null : { ...f.metadata }).toEqual(c.metadata);
        expect([...f.names].sort()).toEqual([...c.order].sort());
        for (const e of c.tensors) {
          const t = right(await f.read(e.name)());
          expect(t.dtype).toBe(TORCH_TO_LLMQ[e.dtype]);
          expect(t.shape).toEqual(e.shape);
          expect(hex(t.bytes())).toBe(e.hex);
          expect(t.data.byteOffset % Math.max(1, t.data.BYTES_PER_ELEMENT)).toBe(0);
        }
      } finally {
        await f.close();
      }
    });

    const multiKey = c.metadata !== null && Object.keys(c.metadata).length > 1;
    it(`writes ${file} ${multiKey ? "(header as JSON: Python orders several metadata keys at random)" : "byte for byte"}`, async () => {
      const entries = c.order.map((n) => [n, tensorOf(c.tensors.find((t) => t.name === n)!)] as const);
      const expected = new Uint8Array(readFileSync(join(FIXTURES, "safetensors", file)));
      const mem = right(serializeSafetensors(entries, c.metadata));
      const out = join(tmp, file);
      right(await writeSafetensors(out, entries, c.metadata)());
      const disk = new Uint8Array(readFileSync(out));
      expect(hex(disk)).toBe(hex(mem));
      if (!multiKey) {
        expect(hex(mem)).toBe(hex(expected));
      } else {
        const n = Number(new DataView(expected.buffer).getBigUint64(0, true));
        expect(mem.length).toBe(expected.length);
        const a = right(parseHeader(file, mem.subarray(8, 8 + n), mem.length));
        const b = right(parseHeader(file, expected.subarray(8, 8 + n), expected.length));
        expect(a.metadata).toEqual(b.metadata);
        expect(a.tensors).toEqual(b.tensors);
        expect(hex(mem.subarray(8 + n))).toBe(hex(expected.subarray(8 + n)));
      }
    });
  }

  it("decodes values: i64 beyond 2^53, bool, bf16", async () => {
    const f = right(await openSafetensors(join(FIXTURES, "safetensors", "all-dtypes.safetensors"))());
    const i64 = right(await f.read("w.i64")());
    expect([...(i64.data as BigInt64Array)]).toEqual([-(2n ** 62n) - 3n, 2n ** 53n + 1n, -1n, 0n, 7n]);
    const b = right(await f.read("w.bool")());
    expect([...(b.data as Uint8Array)]).toEqual([1, 0, 1]);
    await f.close();
  });

  it("pads the header with spaces to a multiple of 8 and lays out dtypes by alignment, then UTF-8 name order", () => {
    const h = encodeHeader(
      [
        { name: "b", dtype: "U8", shape: [1], byteLength: 1 },
        { name: "\u{1F600}", dtype: "F32", shape: [1], byteLength: 4 },
        { name: "\uFFFF", dtype: "F32", shape: [1], byteLength: 4 },
        { name: "a", dtype: "I64", shape: [], byteLength: 8 },
      ],
      null,
    );
    expect(h.layout.map((e) => e.name)).toEqual(["a", "\uFFFF", "\u{1F600}", "b"]);
    expect((h.bytes.length - 8) % 8).toBe(0);
    const text = Buffer.from(h.bytes.subarray(8)).toString("utf8");
    expect(text.trimEnd().endsWith("}")).toBe(true);
    expect(/^ *$/.test(text.slice(text.trimEnd().length))).toBe(true);
  });

  it("leaves no temporary files behind", () => {
    expect(readdirSync(tmp).filter((f) => f.includes("llmq-tmp"))).toEqual([]);
  });
});
