import * as E from "fp-ts/lib/Either.js";
import {
  type SerializationError,
  dataGap,
  duplicateTensor,
  headerBeyondFile,
  headerTooLarge,
  invalidHeader,
  offsetsOutOfRange,
  overlappingTensors,
  sizeMismatch,
  truncatedFile,
  unsupportedDType,
} from "./errors.js";
import {
  type SafetensorsDType,
  SAFETENSORS_DTYPES,
  isSafetensorsDType,
  safetensorsDTypeBits,
  safetensorsDTypeRank,
} from "./safetensors-dtype.js";

// ----- model -----

/** One tensor entry of a safetensors header; offsets are relative to the start of the data section. */
export interface TensorInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: ReadonlyArray<number>;
  readonly dataOffsets: readonly [number, number];
}

export interface SafetensorsHeader {
  /** `__metadata__` (string → string), or null when the header has none. */
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Tensors in header order. */
  readonly tensors: ReadonlyArray<TensorInfo>;
  readonly byName: ReadonlyMap<string, TensorInfo>;
  /** Header JSON length in bytes (the u64 at the start of the file). */
  readonly headerLength: number;
  /** Absolute file offset of the data section (8 + headerLength). */
  readonly dataOffset: number;
  readonly dataLength: number;
}

/** What the writer needs to know about a tensor before its bytes arrive. */
export interface TensorEntryInfo {
  readonly name: string;
  readonly dtype: SafetensorsDType;
  readonly shape: ReadonlyArray<number>;
  readonly byteLength: number;
}

// ----- constants -----

/** The Python/Rust library's limit (MAX_HEADER_SIZE = 100 000 000). */
export const MAX_HEADER_SIZE = 100_000_000;

const METADATA_KEY = "__metadata__";

// ----- reading -----

/** Decodes and bounds-checks the 8-byte little-endian header length. */
export const parseHeaderLength = (file: string, prefix: Uint8Array, fileSize: number): E.Either<SerializationError, number> => {
  if (prefix.length < 8 || fileSize < 8) return E.left(truncatedFile(file, 8, Math.min(prefix.length, fileSize)));
  const n = new DataView(prefix.buffer, prefix.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_SIZE)) return E.left(headerTooLarge(file, Number(n), MAX_HEADER_SIZE));
  const len = Number(n);
  if (8 + len > fileSize) return E.left(headerBeyondFile(file, len, fileSize));
  return E.right(len);
};

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * The top-level keys of a JSON object text, in order, duplicates included (JSON.parse keeps only the last one).
 * Only called on text that JSON.parse accepted, so the scan can be simple.
 */
const topLevelKeys = (text: string): string[] => {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c /* \ */) i++;
        else if (d === 0x22) break;
      }
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(text.slice(start, i + 1)) as string);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
};

const isPlainObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u);

const isIndex = (u: unknown): u is number => typeof u === "number" && Number.isSafeInteger(u) && u >= 0;

/** Bytes a tensor of `dtype` and `shape` occupies, or -1 when it is not a whole, safe number of bytes. */
export const tensorByteLength = (dtype: SafetensorsDType, shape: ReadonlyArray<number>): number => {
  let n = 1;
  for (const d of shape) {
    n *= d;
    if (!Number.isSafeInteger(n)) return -1;
  }
  const bits = n * safetensorsDTypeBits(dtype);
  if (!Number.isSafeInteger(bits) || bits % 8 !== 0) return -1;
  return bits / 8;
};

/**
 * Parses and fully validates a header: UTF-8, a JSON object starting with `{`, unique names, `__metadata__` a
 * string → string object, known dtypes, shape × dtype size equal to the offsets span, and offsets that cover the
 * data section contiguously without overlap (the rules of the Rust reader, plus duplicate names).
 */
export const parseHeader = (file: string, headerBytes: Uint8Array, fileSize: number): E.Either<SerializationError, SafetensorsHeader> => {
  const headerLength = headerBytes.length;
  const dataOffset = 8 + headerLength;
  const dataLength = fileSize - dataOffset;
  let text: string;
  try {
    text = utf8.decode(headerBytes);
  } catch {
    return E.left(invalidHeader(file, null, "the header is not valid UTF-8"));
  }
  if (!text.startsWith("{")) return E.left(invalidHeader(file, null, "the header must be a JSON object starting with '{'"));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return E.left(invalidHeader(file, null, `the header is not valid JSON (${err instanceof Error ? err.message : String(err)})`));
  }
  if (!isPlainObject(parsed)) return E.left(invalidHeader(file, null, "the header must be a JSON object"));
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) return E.left(duplicateTensor(file, k));
    seen.add(k);
  }

  let metadata: Record<string, string> | null = null;
  const tensors: TensorInfo[] = [];
  for (const name of keys) {
    const v = parsed[name];
    if (name === METADATA_KEY) {
      if (!isPlainObject(v)) return E.left(invalidHeader(file, METADATA_KEY, "__metadata__ must be an object of strings"));
      const m: Record<string, string> = Object.create(null) as Record<string, string>;
      for (const [mk, mv] of Object.entries(v)) {
        if (typeof mv !== "string") return E.left(invalidHeader(file, METADATA_KEY, `__metadata__.${mk} must be a string, got ${typeof mv}`));
        m[mk] = mv;
      }
      metadata = m;
      continue;
    }
    if (!isPlainObject(v)) return E.left(invalidHeader(file, name, "a tensor entry must be an object with dtype, shape and data_offsets"));
    const { dtype, shape, data_offsets: offs } = v;
    if (typeof dtype !== "string") return E.left(invalidHeader(file, name, "dtype must be a string"));
    if (!isSafetensorsDType(dtype)) return E.left(unsupportedDType(file, name, dtype, SAFETENSORS_DTYPES));
    if (!Array.isArray(shape) || !shape.every(isIndex))
      return E.left(invalidHeader(file, name, "shape must be an array of non-negative integers"));
    if (!Array.isArray(offs) || offs.length !== 2 || !isIndex(offs[0]) || !isIndex(offs[1]))
      return E.left(invalidHeader(file, name, "data_offsets must be [begin, end] with non-negative integers"));
    const begin = offs[0] as number;
    const end = offs[1] as number;
    if (end < begin) return E.left(invalidHeader(file, name, `data_offsets [${begin}, ${end}] end before they begin`));
    if (end > dataLength) return E.left(offsetsOutOfRange(file, name, [begin, end], dataLength));
    const need = tensorByteLength(dtype, shape as number[]);
    if (need !== end - begin) return E.left(sizeMismatch(file, name, dtype, shape as number[], need, end - begin));
    tensors.push({ name, dtype, shape: Object.freeze([...(shape as number[])]), dataOffsets: [begin, end] });
  }

  const sorted = [...tensors].sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let pos = 0;
  let prev: TensorInfo | null = null;
  for (const t of sorted) {
    const [b, e] = t.dataOffsets;
    if (b < pos) return E.left(overlappingTensors(file, t.name, prev!.name));
    if (b > pos) return E.left(dataGap(file, t.name, pos, b));
    pos = e;
    prev = t;
  }
  if (pos !== dataLength) return E.left(dataGap(file, null, pos, dataLength));

  return E.right({
    metadata,
    tensors,
    byName: new Map(tensors.map((t) => [t.name, t])),
    headerLength,
    dataOffset,
    dataLength,
  });
};

/** Header of a safetensors file held in memory (the same checks as openSafetensors). */
export const parseSafetensorsBuffer = (file: string, bytes: Uint8Array): E.Either<SerializationError, SafetensorsHeader> => {
  const n = parseHeaderLength(file, bytes.subarray(0, 8), bytes.length);
  return E.isLeft(n) ? n : parseHeader(file, bytes.subarray(8, 8 + n.right), bytes.length);
};

// ----- writing -----

const utf8Encoder = new TextEncoder();

/** Name order of the Rust library: byte-wise on UTF-8 (not UTF-16 code units as JS `<` compares). */
export const compareUtf8 = (a: string, b: string): number => {
  const x = utf8Encoder.encode(a);
  const y = utf8Encoder.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i]! < y[i]! ? -1 : 1;
  return x.length === y.length ? 0 : x.length < y.length ? -1 : 1;
};

/**
 * The order in which the Python library lays out tensors: by dtype alignment descending, then by name
 * (`prepare` in safetensors/src/tensor.rs).
 */
export const sortForLayout = <T extends { readonly name: string; readonly dtype: SafetensorsDType }>(entries: ReadonlyArray<T>): T[] =>
  [...entries].sort((a, b) => safetensorsDTypeRank(b.dtype) - safetensorsDTypeRank(a.dtype) || compareUtf8(a.name, b.name));

export interface EncodedHeader {
  /** 8-byte length + header JSON padded with spaces to a multiple of 8. */
  readonly bytes: Uint8Array;
  /** Entries in data order with their offsets. */
  readonly layout: ReadonlyArray<TensorEntryInfo & { readonly offset: number }>;
  readonly dataLength: number;
}

/**
 * The header bytes the Python library writes for these tensors: serde_json compact output of
 * `{"__metadata__": {...}, name: {"dtype", "shape", "data_offsets"}, ...}` in layout order, padded with spaces.
 * serde_json escapes strings exactly as JSON.stringify does for well-formed strings. Metadata keys keep the given
 * order; Python passes metadata through a Rust HashMap, so with several keys its own order varies between runs.
 */
export const encodeHeader = (entries: ReadonlyArray<TensorEntryInfo>, metadata: Readonly<Record<string, string>> | null): EncodedHeader => {
  const layout = sortForLayout(entries);
  const parts: string[] = [];
  if (metadata !== null) {
    const m = Object.entries(metadata)
      .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
      .join(",");
    parts.push(`"${METADATA_KEY}":{${m}}`);
  }
  let offset = 0;
  const placed: Array<TensorEntryInfo & { offset: number }> = [];
  for (const e of layout) {
    parts.push(`${JSON.stringify(e.name)}:{"dtype":"${e.dtype}","shape":[${e.shape.join(",")}],"data_offsets":[${offset},${offset + e.byteLength}]}`);
    placed.push({ ...e, offset });
    offset += e.byteLength;
  }
  const json = utf8Encoder.encode(`{${parts.join(",")}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  const bytes = new Uint8Array(8 + padded);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(padded), true);
  bytes.set(json, 8);
  bytes.fill(0x20, 8 + json.length);
  return { bytes, layout: placed, dataLength: offset };
};
