import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type DType, castFromNumbers } from "@llmq/tensor";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import type { SerializationError, SerializationErrorTag } from "./errors.js";
import { formatSerializationError } from "./errors.js";
import { SAFETENSORS_DTYPES } from "./safetensors-dtype.js";
import { MAX_HEADER_SIZE, parseSafetensorsBuffer } from "./safetensors-header.js";
import { deserializeSafetensors, openCheckpoint, openSafetensors } from "./safetensors-reader.js";
import { serializeSafetensors } from "./safetensors-writer.js";
import type { BrokenCase } from "./test-support/fixtures.js";

/** Case count: LLMQ_FUZZ_RUNS (CI default 2000; run locally with 100000). */
const RUNS = Number(process.env.LLMQ_FUZZ_RUNS ?? 2000);
const tmp = mkdtempSync(join(tmpdir(), "llmq-fuzz-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const enc = new TextEncoder();

/** A safetensors file from a header text and a data section. */
const fileOf = (header: string | Uint8Array, data: Uint8Array | number = 0, lengthOverride?: bigint): Uint8Array => {
  const h = typeof header === "string" ? enc.encode(header) : header;
  const d = typeof data === "number" ? new Uint8Array(data) : data;
  const out = new Uint8Array(8 + h.length + d.length);
  new DataView(out.buffer).setBigUint64(0, lengthOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(d, 8 + h.length);
  return out;
};

const ENTRY = (dtype: string, shape: number[], b: number, e: number) => `{"dtype":"${dtype}","shape":[${shape.join(",")}],"data_offsets":[${b},${e}]}`;


/** The hand-broken corpus: each file and the error it must give. */
const CORPUS: ReadonlyArray<BrokenCase> = [
  { name: "empty", bytes: new Uint8Array(0), tag: "TruncatedFile", tensor: null },
  { name: "five-bytes", bytes: new Uint8Array(5), tag: "TruncatedFile", tensor: null },
  { name: "length-beyond-file", bytes: fileOf("{}", 0, 64n), tag: "HeaderBeyondFile", tensor: null },
  { name: "length-absurd", bytes: fileOf("{}", 0, 2n ** 63n), tag: "HeaderTooLarge", tensor: null },
  { name: "length-over-100MB", bytes: fileOf("{}", 0, BigInt(MAX_HEADER_SIZE + 1)), tag: "HeaderTooLarge", tensor: null },
  { name: "length-u64-max", bytes: fileOf("{}", 0, 2n ** 64n - 1n), tag: "HeaderTooLarge", tensor: null },
  { name: "non-utf8", bytes: fileOf(new Uint8Array([0x7b, 0xff, 0xfe, 0x7d])), tag: "InvalidHeader", tensor: null },
  { name: "lone-surrogate-utf8", bytes: fileOf(new Uint8Array([0x7b, 0xed, 0xa0, 0x80, 0x7d])), tag: "InvalidHeader", tensor: null },
  { name: "array-json", bytes: fileOf("[]"), tag: "InvalidHeader", tensor: null },
  { name: "string-json", bytes: fileOf('"x"'), tag: "InvalidHeader", tensor: null },
  { name: "leading-space", bytes: fileOf(" {}"), tag: "InvalidHeader", tensor: null },
  { name: "broken-json", bytes: fileOf('{"a":'), tag: "InvalidHeader", tensor: null },
  { name: "trailing-garbage", bytes: fileOf("{} x"), tag: "InvalidHeader", tensor: null },
  { name: "entry-not-object", bytes: fileOf('{"w":1}'), tag: "InvalidHeader", tensor: "w" },
  { name: "dtype-unknown", bytes: fileOf(`{"w":${ENTRY("F7", [1], 0, 1)}}`, 1), tag: "UnsupportedDType", tensor: "w" },
  { name: "dtype-lowercase", bytes: fileOf(`{"w":${ENTRY("f32", [1], 0, 4)}}`, 4), tag: "UnsupportedDType", tensor: "w" },
  { name: "dtype-number", bytes: fileOf('{"w":{"dtype":3,"shape":[1],"data_offsets":[0,4]}}', 4), tag: "InvalidHeader", tensor: "w" },
  { name: "shape-negative", bytes: fileOf(`{"w":${ENTRY("F32", [-1], 0, 4)}}`, 4), tag: "InvalidHeader", tensor: "w" },
  { name: "shape-fraction", bytes: fileOf(`{"w":${ENTRY("F32", [1.5], 0, 4)}}`, 4), tag: "InvalidHeader", tensor: "w" },
  { name: "shape-missing", bytes: fileOf('{"w":{"dtype":"F32","data_offsets":[0,4]}}', 4), tag: "InvalidHeader", tensor: "w" },
  { name: "offsets-three", bytes: fileOf('{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}', 4), tag: "InvalidHeader", tensor: "w" },
  { name: "offsets-reversed", bytes: fileOf(`{"w":${ENTRY("F32", [1], 4, 0)}}`, 4), tag: "InvalidHeader", tensor: "w" },
  { name: "offsets-out-of-range", bytes: fileOf(`{"w":${ENTRY("F32", [4], 0, 16)}}`, 8), tag: "OffsetsOutOfRange", tensor: "w" },
  { name: "offsets-beyond-2^53", bytes: fileOf('{"w":{"dtype":"F32","shape":[1],"data_offsets":[9007199254740993,9007199254740997]}}', 4), tag: "InvalidHeader", tensor: "w" },
  {
    name: "overlap",
    bytes: fileOf(`{"a":${ENTRY("F32", [2], 0, 8)},"b":${ENTRY("F32", [2], 4, 12)}}`, 12),
    tag: "OverlappingTensors",
    tensor: "b",
  },
  { name: "gap", bytes: fileOf(`{"a":${ENTRY("F32", [1], 0, 4)},"b":${ENTRY("F32", [1], 8, 12)}}`, 12), tag: "DataGap", tensor: "b" },
  { name: "gap-at-start", bytes: fileOf(`{"a":${ENTRY("F32", [1], 4, 8)}}`, 8), tag: "DataGap", tensor: "a" },
  { name: "trailing-data", bytes: fileOf(`{"a":${ENTRY("F32", [1], 0, 4)}}`, 9), tag: "DataGap", tensor: null },
  { name: "size-mismatch", bytes: fileOf(`{"a":${ENTRY("F32", [2, 2], 0, 8)}}`, 8), tag: "SizeMismatch", tensor: "a" },
  { name: "shape-overflow", bytes: fileOf(`{"a":${ENTRY("F32", [2 ** 30, 2 ** 30, 2 ** 30], 0, 8)}}`, 8), tag: "SizeMismatch", tensor: "a" },
  { name: "f4-odd-count", bytes: fileOf(`{"a":${ENTRY("F4", [3], 0, 1)}}`, 1), tag: "SizeMismatch", tensor: "a" },
  {
    name: "duplicate-name",
    bytes: fileOf(`{"a":${ENTRY("F32", [1], 0, 4)},"a":${ENTRY("F32", [1], 4, 8)}}`, 8),
    tag: "DuplicateTensor",
    tensor: "a",
  },
  {
    name: "duplicate-escaped-name",
    bytes: fileOf(`{"\\u0061":${ENTRY("F32", [1], 0, 4)},"a":${ENTRY("F32", [1], 4, 8)}}`, 8),
    tag: "DuplicateTensor",
    tensor: "a",
  },
  { name: "metadata-not-object", bytes: fileOf('{"__metadata__":[1]}'), tag: "InvalidHeader", tensor: "__metadata__" },
  { name: "metadata-number-value", bytes: fileOf('{"__metadata__":{"format":1}}'), tag: "InvalidHeader", tensor: "__metadata__" },
];

const check = (e: SerializationError, file: string) => {
  expect(e.file).toBe(file);
  expect(e.tensor === null || typeof e.tensor === "string").toBe(true);
  expect(formatSerializationError(e).length).toBeGreaterThan(0);
};

describe("reader: hand-broken corpus", () => {
  for (const c of CORPUS) {
    it(`${c.name} → ${c.tag}${c.tensor === null ? "" : ` (${c.tensor})`}`, async () => {
      const path = join(tmp, `${c.name}.safetensors`);
      writeFileSync(path, c.bytes);
      const r = await openSafetensors(path)();
      if (E.isRight(r)) throw new Error("expected an error");
      expect(r.left._tag).toBe(c.tag);
      expect(r.left.tensor).toBe(c.tensor);
      check(r.left, path);
      const m = parseSafetensorsBuffer(path, c.bytes);
      expect(E.isLeft(m) && m.left._tag).toBe(c.tag);
    });
  }

  it("a truncated valid file names the tensor whose data is missing", async () => {
    const full = E.getOrElseW(() => new Uint8Array())(
      serializeSafetensors([
        ["a", castFromNumbers("f32", [1, 2, 3], [3])],
        ["b", castFromNumbers("bf16", [1, 2], [2])],
      ]),
    );
    const path = join(tmp, "truncated.safetensors");
    writeFileSync(path, full.subarray(0, full.length - 2));
    const r = await openSafetensors(path)();
    expect(E.isLeft(r) && r.left._tag === "OffsetsOutOfRange" && r.left.tensor).toBe("b");
  });

  it("a dtype llmq cannot hold (U16) opens, and reading it names the tensor", async () => {
    const path = join(tmp, "u16.safetensors");
    writeFileSync(path, fileOf(`{"__metadata__":{"format":"pt"},"u":${ENTRY("U16", [2], 0, 4)}}`, 4));
    const f = await openSafetensors(path)();
    if (E.isLeft(f)) throw new Error(formatSerializationError(f.left));
    const r = await f.right.read("u")();
    expect(E.isLeft(r) && r.left._tag === "UnsupportedDType" && r.left.tensor).toBe("u");
    const nf = await f.right.read("nope")();
    expect(E.isLeft(nf) && nf.left._tag).toBe("TensorNotFound");
    await f.right.close();
  });
});

describe("reader: shard index", () => {
  const good = E.getOrElseW(() => new Uint8Array())(serializeSafetensors([["w", castFromNumbers("f32", [1], [1])]]));
  const indexCase = (name: string, index: unknown) => {
    const dir = join(tmp, `idx-${name}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "shard.safetensors"), good);
    writeFileSync(join(dir, "model.safetensors.index.json"), typeof index === "string" ? index : JSON.stringify(index));
    return dir;
  };
  for (const shard of ["../x.safetensors", "/etc/passwd", "a/../../x.safetensors", "C:\\x.safetensors", "..\\x", "", ".", "sub/..", "x\0.safetensors"]) {
    it(`rejects shard name ${JSON.stringify(shard)} as outside the directory, naming the tensor`, async () => {
      const dir = indexCase(`esc-${Buffer.from(shard).toString("hex")}`, { weight_map: { w: "shard.safetensors", evil: shard } });
      const r = await openCheckpoint(dir)();
      expect(E.isLeft(r) && r.left._tag).toBe("PathEscape");
      expect(E.isLeft(r) && r.left.tensor).toBe("evil");
    });
  }
  it("rejects an index that is not an object, a missing weight_map, a tensor absent from its shard, a missing shard", async () => {
    const tags: Array<[string, unknown, SerializationErrorTag, string | null]> = [
      ["array", "[1]", "InvalidIndex", null],
      ["nojson", "{", "InvalidIndex", null],
      ["nomap", { metadata: {} }, "InvalidIndex", null],
      ["absent", { weight_map: { w: "shard.safetensors", z: "shard.safetensors" } }, "InvalidIndex", "z"],
      ["nonstring", { weight_map: { w: 3 } }, "InvalidIndex", "w"],
      ["missing-shard", { weight_map: { w: "other.safetensors" } }, "IoError", null],
    ];
    for (const [name, index, tag, tensor] of tags) {
      const r = await openCheckpoint(indexCase(name, index))();
      expect(E.isLeft(r) && r.left._tag, name).toBe(tag);
      expect(E.isLeft(r) && r.left.tensor, name).toBe(tensor);
    }
  });
});

// ----- property-based -----

const DTYPES: ReadonlyArray<DType> = ["f64", "f32", "f16", "bf16", "f8_e4m3fn", "f8_e5m2", "i64", "i32", "i16", "i8", "u8", "bool"];

const validFile = fc
  .array(
    fc.record({
      name: fc.string({ minLength: 0, maxLength: 6 }),
      dtype: fc.constantFrom(...DTYPES),
      shape: fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 }),
    }),
    { maxLength: 5 },
  )
  .map((ts) => {
    const seen = new Set<string>();
    const entries = ts
      .filter((t) => t.name !== "__metadata__" && !seen.has(t.name) && seen.add(t.name))
      .map((t) => [t.name, castFromNumbers(t.dtype, Array.from({ length: t.shape.reduce((a, b) => a * b, 1) }, (_, i) => i % 7), t.shape)] as const);
    return E.getOrElseW(() => new Uint8Array())(serializeSafetensors(entries, { format: "pt" }));
  });

/** Byte-level damage to a valid file. */
const mutation = fc.oneof(
  fc.record({ kind: fc.constant("truncate" as const), at: fc.nat() }),
  fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant("length" as const), value: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }) }),
  fc.record({ kind: fc.constant("append" as const), extra: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant("headerText" as const), at: fc.nat(), text: fc.constantFrom('"', "{", "}", ",", "[", "]", ":", "-1", "1e999", "\\", "null", "\u00e9") }),
);

type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

const mutate = (f: Uint8Array, m: Mutation): Uint8Array => {
  switch (m.kind) {
    case "truncate":
      return f.subarray(0, f.length === 0 ? 0 : m.at % f.length);
    case "flip": {
      const c = f.slice();
      if (c.length > 0) c[m.at % c.length] = m.value;
      return c;
    }
    case "length": {
      if (f.length < 8) return f;
      const c = f.slice();
      new DataView(c.buffer).setBigUint64(0, m.value, true);
      return c;
    }
    case "append": {
      const c = new Uint8Array(f.length + m.extra.length);
      c.set(f);
      c.set(m.extra, f.length);
      return c;
    }
    case "headerText": {
      if (f.length < 8) return f;
      const n = Number(new DataView(f.buffer, f.byteOffset).getBigUint64(0, true));
      const text = Buffer.from(f.subarray(8, 8 + n)).toString("utf8");
      const at = m.at % (text.length + 1);
      const h = enc.encode(text.slice(0, at) + m.text + text.slice(at));
      return fileOf(h, f.subarray(8 + n));
    }
  }
};

/** Structurally random headers: arbitrary dtypes, shapes, offsets, duplicate names, metadata. */
const randomHeader = fc
  .record({
    entries: fc.array(
      fc.record({
        name: fc.oneof(fc.constantFrom("a", "b", "__metadata__", "x.y"), fc.string({ maxLength: 4 })),
        dtype: fc.oneof(fc.constantFrom(...SAFETENSORS_DTYPES), fc.string({ maxLength: 4 })),
        shape: fc.array(fc.oneof(fc.integer({ min: -2, max: 9 }), fc.constant(2 ** 40), fc.double()), { maxLength: 3 }),
        offsets: fc.array(fc.oneof(fc.integer({ min: -1, max: 64 }), fc.constant(2 ** 60)), { minLength: 0, maxLength: 3 }),
      }),
      { maxLength: 5 },
    ),
    dataLength: fc.integer({ min: 0, max: 64 }),
    pad: fc.integer({ min: 0, max: 9 }),
  })
  .map(({ entries, dataLength, pad }) => {
    const body = entries
      .map((e) =>
        e.name === "__metadata__"
          ? `"__metadata__":{"k":${JSON.stringify(e.dtype)}}`
          : `${JSON.stringify(e.name)}:{"dtype":${JSON.stringify(e.dtype)},"shape":${JSON.stringify(e.shape)},"data_offsets":${JSON.stringify(e.offsets)}}`,
      )
      .join(",");
    return fileOf(`{${body}}${" ".repeat(pad)}`, dataLength);
  });

/** The reader's contract on any bytes: a header or a typed error naming the file; consistent offsets when valid. */
const assertContract = (file: string, bytes: Uint8Array): void => {
  const r = deserializeSafetensors(file, bytes);
  if (E.isLeft(r)) {
    check(r.left, file);
    return;
  }
  const h = parseSafetensorsBuffer(file, bytes);
  if (E.isLeft(h)) throw new Error("parse disagrees with deserialize");
  let total = 0;
  for (const t of h.right.tensors) total += t.dataOffsets[1] - t.dataOffsets[0];
  expect(total).toBe(h.right.dataLength);
  expect(h.right.dataOffset + h.right.dataLength).toBe(bytes.length);
};

describe(`reader fuzz (${RUNS} cases per property; LLMQ_FUZZ_RUNS)`, () => {
  it("damaged valid files give a header or a typed error, never a throw", () => {
    fc.assert(
      fc.property(validFile, fc.array(mutation, { minLength: 1, maxLength: 3 }), (f, ms) => {
        assertContract("fuzz.safetensors", ms.reduce(mutate, f));
      }),
      { numRuns: RUNS },
    );
  });

  it("structurally random headers give a header or a typed error, never a throw", () => {
    fc.assert(
      fc.property(randomHeader, (f) => assertContract("random.safetensors", f)),
      { numRuns: RUNS },
    );
  });

  it("undamaged random files round-trip through the lazy file reader", async () => {
    await fc.assert(
      fc.asyncProperty(validFile, async (f) => {
        const path = join(tmp, "rt.safetensors");
        writeFileSync(path, f);
        const r = await openSafetensors(path)();
        if (E.isLeft(r)) throw new Error(formatSerializationError(r.left));
        const mem = deserializeSafetensors(path, f);
        if (E.isLeft(mem)) throw new Error(formatSerializationError(mem.left));
        for (const n of r.right.names) {
          const t = await r.right.read(n)();
          if (E.isLeft(t)) throw new Error(formatSerializationError(t.left));
          expect(Buffer.from(t.right.bytes())).toEqual(Buffer.from(mem.right.tensors.get(n)!.bytes()));
        }
        await r.right.close();
      }),
      { numRuns: Math.max(50, Math.floor(RUNS / 20)) },
    );
  });

  it("damaged files on disk: openSafetensors returns typed errors (file path named) and never rejects", async () => {
    await fc.assert(
      fc.asyncProperty(validFile, fc.array(mutation, { minLength: 1, maxLength: 2 }), async (f, ms) => {
        const path = join(tmp, "damaged.safetensors");
        writeFileSync(path, ms.reduce(mutate, f));
        const r = await openSafetensors(path)();
        if (E.isLeft(r)) check(r.left, path);
        else {
          for (const n of r.right.names) {
            const t = await r.right.read(n)();
            if (E.isLeft(t)) check(t.left, path);
          }
          await r.right.close();
        }
      }),
      { numRuns: Math.max(50, Math.floor(RUNS / 20)) },
    );
  });
});
