import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { formatSerializationError } from "./errors.js";
import { parseGgufHeader, parseGgufPrefix } from "./gguf-header.js";
import { openGguf } from "./gguf-reader.js";
import { type BrokenCase, FIXTURES, readJson } from "./test-support/fixtures.js";

/** Case count: LLMQ_FUZZ_RUNS (CI default 2000; run locally with 100000). */
const RUNS = Number(process.env.LLMQ_FUZZ_RUNS ?? 2000);
const tmp = mkdtempSync(join(tmpdir(), "llmq-gguf-fuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// ----- a byte-level GGUF builder (independent of the parser) -----

const enc = new TextEncoder();
const u32 = (v: number): number[] => [v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, (v >>> 24) & 0xff];
const u64 = (v: bigint | number): number[] => {
  const b = BigInt.asUintN(64, BigInt(v));
  return Array.from({ length: 8 }, (_, i) => Number((b >> BigInt(8 * i)) & 0xffn));
};
const str = (s: string | Uint8Array): number[] => {
  const b = typeof s === "string" ? enc.encode(s) : s;
  return [...u64(b.length), ...b];
};

interface KV {
  readonly key: string;
  /** value type id followed by the encoded value */
  readonly body: number[];
}
interface TI {
  readonly name: string;
  readonly ne: ReadonlyArray<bigint | number>;
  readonly type: number;
  readonly offset: bigint | number;
}

const kvU32 = (key: string, v: number): KV => ({ key, body: [...u32(4), ...u32(v)] });
const kvStr = (key: string, v: string): KV => ({ key, body: [...u32(8), ...str(v)] });

const gguf = (o: { version?: number; kv?: KV[]; tensors?: TI[]; data?: number; counts?: [bigint, bigint]; align?: number }): Uint8Array => {
  const kv = o.kv ?? [kvStr("general.architecture", "llama")];
  const tensors = o.tensors ?? [];
  const head = [
    ...u32(0x46554747),
    ...u32(o.version ?? 3),
    ...u64(o.counts?.[0] ?? tensors.length),
    ...u64(o.counts?.[1] ?? kv.length),
    ...kv.flatMap((k) => [...str(k.key), ...k.body]),
    ...tensors.flatMap((t) => [...str(t.name), ...u32(t.ne.length), ...t.ne.flatMap(u64), ...u32(t.type), ...u64(t.offset)]),
  ];
  const a = o.align ?? 32;
  const start = tensors.length > 0 ? Math.ceil(head.length / a) * a : head.length;
  const out = new Uint8Array(start + (o.data ?? 0));
  out.set(head);
  return out;
};

const F32 = (name: string, n: number, offset: bigint | number = 0): TI => ({ name, ne: [n], type: 0, offset });


const CORPUS: ReadonlyArray<BrokenCase> = [
  { name: "empty", bytes: new Uint8Array(0), tag: "TruncatedFile", tensor: null },
  { name: "magic-only", bytes: new Uint8Array(u32(0x46554747)), tag: "TruncatedFile", tensor: null },
  { name: "bad-magic", bytes: new Uint8Array([...u32(0x46554746), ...u32(3), ...u64(0), ...u64(0)]), tag: "InvalidHeader", tensor: null },
  { name: "version-0", bytes: gguf({ version: 0 }), tag: "InvalidHeader", tensor: null },
  { name: "version-1", bytes: gguf({ version: 1 }), tag: "InvalidHeader", tensor: null },
  { name: "version-4", bytes: gguf({ version: 4 }), tag: "InvalidHeader", tensor: null },
  { name: "big-endian", bytes: gguf({ version: 0x03000000 }), tag: "InvalidHeader", tensor: null },
  { name: "kv-count-huge", bytes: gguf({ counts: [0n, 2n ** 40n] }), tag: "TruncatedFile", tensor: null },
  { name: "kv-count-2^64-1", bytes: gguf({ counts: [0n, 2n ** 64n - 1n] }), tag: "InvalidHeader", tensor: null },
  { name: "tensor-count-huge", bytes: gguf({ counts: [2n ** 50n, 1n] }), tag: "TruncatedFile", tensor: null },
  { name: "key-length-huge", bytes: gguf({ kv: [{ key: "", body: [] }], counts: [0n, 1n] }).slice(0, 24), tag: "TruncatedFile", tensor: null },
  { name: "empty-key", bytes: gguf({ kv: [kvU32("", 1)] }), tag: "InvalidHeader", tensor: null },
  { name: "duplicate-key", bytes: gguf({ kv: [kvU32("a", 1), kvU32("a", 2)] }), tag: "InvalidHeader", tensor: null },
  { name: "value-type-13", bytes: gguf({ kv: [{ key: "a", body: [...u32(13), 0, 0, 0, 0] }] }), tag: "InvalidHeader", tensor: null },
  { name: "array-of-arrays", bytes: gguf({ kv: [{ key: "a", body: [...u32(9), ...u32(9), ...u64(0)] }] }), tag: "InvalidHeader", tensor: null },
  { name: "array-length-huge", bytes: gguf({ kv: [{ key: "a", body: [...u32(9), ...u32(4), ...u64(2n ** 40n)] }] }), tag: "TruncatedFile", tensor: null },
  { name: "string-array-huge", bytes: gguf({ kv: [{ key: "a", body: [...u32(9), ...u32(8), ...u64(2n ** 33n)] }] }), tag: "TruncatedFile", tensor: null },
  { name: "string-length-huge", bytes: gguf({ kv: [{ key: "a", body: [...u32(8), ...u64(2n ** 62n)] }] }), tag: "InvalidHeader", tensor: null },
  { name: "string-beyond-file", bytes: gguf({ kv: [{ key: "a", body: [...u32(8), ...u64(1000)] }] }), tag: "TruncatedFile", tensor: null },
  { name: "non-utf8-key", bytes: gguf({ kv: [{ key: "\udc00", body: [...u32(4), ...u32(1)] }] }).map((b, i) => (i === 32 ? 0xff : b)), tag: "InvalidHeader", tensor: null },
  { name: "alignment-not-u32", bytes: gguf({ kv: [kvStr("general.alignment", "32")] }), tag: "InvalidHeader", tensor: null },
  { name: "alignment-zero", bytes: gguf({ kv: [kvU32("general.alignment", 0)] }), tag: "InvalidHeader", tensor: null },
  { name: "alignment-not-pow2", bytes: gguf({ kv: [kvU32("general.alignment", 48)] }), tag: "InvalidHeader", tensor: null },
  { name: "duplicate-tensor", bytes: gguf({ tensors: [F32("w", 8), F32("w", 8, 32)], data: 64 }), tag: "DuplicateTensor", tensor: "w" },
  { name: "name-64-bytes", bytes: gguf({ tensors: [F32("x".repeat(64), 8)], data: 32 }), tag: "InvalidHeader", tensor: "x".repeat(64) },
  { name: "five-dims", bytes: gguf({ tensors: [{ name: "w", ne: [1, 1, 1, 1, 1], type: 0, offset: 0 }], data: 32 }), tag: "InvalidHeader", tensor: "w" },
  { name: "negative-dim", bytes: gguf({ tensors: [{ name: "w", ne: [2n ** 64n - 1n], type: 0, offset: 0 }], data: 32 }), tag: "InvalidHeader", tensor: "w" },
  { name: "elements-overflow", bytes: gguf({ tensors: [{ name: "w", ne: [2n ** 30n, 2n ** 30n], type: 0, offset: 0 }], data: 32 }), tag: "InvalidHeader", tensor: "w" },
  { name: "type-unknown", bytes: gguf({ tensors: [{ name: "w", ne: [8], type: 99, offset: 0 }], data: 32 }), tag: "UnsupportedDType", tensor: "w" },
  { name: "type-removed-q4_2", bytes: gguf({ tensors: [{ name: "w", ne: [32], type: 4, offset: 0 }], data: 32 }), tag: "UnsupportedDType", tensor: "w" },
  { name: "row-not-whole-blocks", bytes: gguf({ tensors: [{ name: "w", ne: [33], type: 2, offset: 0 }], data: 64 }), tag: "InvalidHeader", tensor: "w" },
  { name: "gap", bytes: gguf({ tensors: [F32("a", 8), F32("b", 8, 64)], data: 96 }), tag: "DataGap", tensor: "b" },
  { name: "overlap", bytes: gguf({ tensors: [F32("a", 8), F32("b", 8, 0)], data: 64 }), tag: "OverlappingTensors", tensor: "b" },
  { name: "unaligned", bytes: gguf({ tensors: [F32("a", 3), F32("b", 8, 12)], data: 64 }), tag: "OverlappingTensors", tensor: "b" },
  { name: "data-beyond-file", bytes: gguf({ tensors: [F32("a", 8), F32("b", 8, 32)], data: 40 }), tag: "OffsetsOutOfRange", tensor: "b" },
  { name: "offset-2^40", bytes: gguf({ tensors: [F32("a", 8, 2n ** 40n)], data: 32 }), tag: "DataGap", tensor: "a" },
  { name: "offset-2^60", bytes: gguf({ tensors: [F32("a", 8, 2n ** 60n)], data: 32 }), tag: "InvalidHeader", tensor: "a" },
  { name: "dim-beyond-2^53", bytes: gguf({ tensors: [{ name: "w", ne: [2n ** 60n], type: 0, offset: 0 }], data: 32 }), tag: "InvalidHeader", tensor: "w" },
];

describe("GGUF reader: hand-broken corpus", () => {
  for (const c of CORPUS) {
    it(`${c.name} → ${c.tag}${c.tensor === null ? "" : ` (${c.tensor.slice(0, 8)})`}`, async () => {
      const path = join(tmp, `${c.name}.gguf`);
      writeFileSync(path, c.bytes);
      const r = await openGguf(path)();
      if (E.isRight(r)) throw new Error("expected an error");
      expect(r.left._tag).toBe(c.tag);
      expect(r.left.tensor).toBe(c.tensor);
      expect(r.left.file).toBe(path);
      expect(formatSerializationError(r.left).length).toBeGreaterThan(0);
      const m = parseGgufHeader(path, c.bytes);
      expect(E.isLeft(m) && m.left._tag).toBe(c.tag);
    });
  }

  it("a well-formed file the builder makes opens (the corpus above fails for its one defect only)", async () => {
    const path = join(tmp, "ok.gguf");
    writeFileSync(path, gguf({ kv: [kvU32("general.alignment", 64)], tensors: [F32("a", 3), F32("b", 8, 64), { name: "q", ne: [32, 2], type: 2, offset: 128 }], data: 128 + 36, align: 64 }));
    const r = await openGguf(path)();
    if (E.isLeft(r)) throw new Error(formatSerializationError(r.left));
    expect(r.right.names).toEqual(["a", "b", "q"]);
    await r.right.close();
  });

  it("a type llmq does not dequantize (IQ2_XXS) opens; reading it is UnsupportedDType naming the tensor and the supported types", async () => {
    const path = join(tmp, "iq.gguf");
    writeFileSync(path, gguf({ tensors: [{ name: "iq", ne: [256], type: 16, offset: 0 }], data: 66 }));
    const f = await openGguf(path)();
    if (E.isLeft(f)) throw new Error(formatSerializationError(f.left));
    const r = await f.right.read("iq")();
    expect(E.isLeft(r) && r.left._tag === "UnsupportedDType" && r.left.tensor).toBe("iq");
    expect(E.isLeft(r) && formatSerializationError(r.left)).toMatch(/Q6_K/);
    expect(E.isLeft(await f.right.read("nope")()) && "ok").toBe("ok");
    await f.right.close();
  });

  it("a header larger than the first read is read in more pieces", async () => {
    const kv = Array.from({ length: 3000 }, (_, i) => kvStr(`k${i}`, "v".repeat(2000)));
    const path = join(tmp, "big-header.gguf");
    writeFileSync(path, gguf({ kv, tensors: [F32("a", 8)], data: 32 }));
    const r = await openGguf(path)();
    if (E.isLeft(r)) throw new Error(formatSerializationError(r.left));
    expect(r.right.metadata.size).toBe(3000);
    await r.right.close();
  });
});

// ----- property-based -----

const valid = new Uint8Array(readFileSync(`${FIXTURES}gguf/quants.gguf`));
/** Data section start of quants.gguf: mutations hit the header and tensor infos. */
const headerEnd = readJson<{ files: Record<string, { data_offset: number }> }>("gguf/manifest.json").files["quants.gguf"]!.data_offset;

/** Every outcome is a value: a header or a typed error; never a throw, never a `more` beyond the file. */
const total = (bytes: Uint8Array, prefix = bytes.length): void => {
  const r = parseGgufPrefix("f.gguf", bytes.subarray(0, prefix), bytes.length);
  if (E.isLeft(r)) {
    expect(formatSerializationError(r.left).length).toBeGreaterThan(0);
    return;
  }
  if ("more" in r.right) {
    expect(r.right.more).toBeGreaterThan(prefix);
    expect(r.right.more).toBeLessThanOrEqual(bytes.length);
    return;
  }
  for (const t of r.right.tensors) expect(r.right.dataOffset + t.offset + t.byteLength).toBeLessThanOrEqual(bytes.length);
};

const mutation = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat({ max: headerEnd - 1 }), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("u64" as const), at: fc.nat({ max: headerEnd - 8 }), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  fc.record({ kind: fc.constant("u32" as const), at: fc.nat({ max: headerEnd - 4 }), value: fc.nat() }),
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat({ max: valid.length }) }),
);

describe("GGUF reader: fuzzed headers and tensor infos", () => {
  it(`${RUNS} byte-level mutations of a real file → a header or a typed error`, () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.nat(), (ms, cut) => {
        let b = valid.slice();
        for (const m of ms) {
          if (m.kind === "truncate") b = b.slice(0, m.at);
          else if (m.kind === "flip") b[m.at % Math.max(1, b.length)] = m.value;
          else if (b.length >= m.at + 8) new DataView(b.buffer).setBigUint64(m.at, m.kind === "u64" ? m.value : BigInt(m.value), true);
        }
        total(b);
        total(b, b.length === 0 ? 0 : cut % b.length);
      }),
      { numRuns: RUNS },
    );
  });

  const ti = fc.record({
    name: fc.oneof(fc.constantFrom("a", "b"), fc.string({ maxLength: 70 })),
    ne: fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })), { maxLength: 5 }),
    type: fc.oneof(fc.constantFrom(0, 1, 2, 8, 10, 12, 14, 30), fc.nat({ max: 50 })),
    offset: fc.oneof(fc.constantFrom(0, 32, 64, 1024), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })),
  });
  const kv = fc.record({
    key: fc.oneof(fc.constantFrom("general.alignment", "a", ""), fc.string({ maxLength: 8 })),
    body: fc.oneof(
      fc.nat().map((v) => [...u32(4), ...u32(v)]),
      fc.tuple(fc.nat({ max: 15 }), fc.uint8Array({ maxLength: 24 })).map(([t, b]) => [...u32(t), ...b]),
      fc.tuple(fc.nat({ max: 13 }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n })).map(([t, n]) => [...u32(9), ...u32(t), ...u64(n)]),
    ),
  });

  it(`${RUNS} structurally random headers (counts, key types, dims, types, offsets) → a header or a typed error`, () => {
    fc.assert(
      fc.property(
        fc.array(kv, { maxLength: 4 }),
        fc.array(ti, { maxLength: 4 }),
        fc.nat({ max: 4096 }),
        fc.option(fc.tuple(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }))),
        (kvs, tis, data, counts) => {
          total(gguf({ kv: kvs, tensors: tis, data, ...(counts === null ? {} : { counts }) }));
        },
      ),
      { numRuns: RUNS },
    );
  });
});
