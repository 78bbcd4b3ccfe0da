// The GGUF container (LCPP `ggml/src/gguf.cpp` gguf_init_from_reader, `docs/gguf.md`): little-endian header, typed
// key/value metadata, tensor infos, an aligned data section. Validation follows llama.cpp's reader; every length is
// checked against the bytes the file still has before anything is allocated, so a hostile header cannot make us
// allocate more than the file's size.
import * as E from "fp-ts/lib/Either.js";
import {
  type SerializationError,
  dataGap,
  duplicateTensor,
  invalidHeader,
  offsetsOutOfRange,
  overlappingTensors,
  truncatedFile,
  unsupportedDType,
} from "./errors.js";
import { GGML_TYPES, type GgmlType, ggmlByteLength, ggmlTypeById } from "./ggml-types.js";

// ----- model -----

/** GGUF metadata value types by their id in the file. */
export const GGUF_VALUE_TYPES = ["UINT8", "INT8", "UINT16", "INT16", "UINT32", "INT32", "FLOAT32", "BOOL", "STRING", "ARRAY", "UINT64", "INT64", "FLOAT64"] as const;
export type GgufValueType = (typeof GGUF_VALUE_TYPES)[number];

/** 64-bit integers are bigints; everything else a JS number, boolean or string. */
export type GgufScalar = number | bigint | boolean | string;

export type GgufValue =
  | { readonly type: Exclude<GgufValueType, "ARRAY">; readonly value: GgufScalar }
  | { readonly type: "ARRAY"; readonly itemType: Exclude<GgufValueType, "ARRAY">; readonly value: ReadonlyArray<GgufScalar> };

export interface GgufTensorInfo {
  readonly name: string;
  readonly type: GgmlType;
  /** ggml order: ne[0] is the contiguous row length. */
  readonly ne: ReadonlyArray<number>;
  /** torch order (ne reversed), as transformers' GGUF loader reports it. */
  readonly shape: ReadonlyArray<number>;
  readonly elements: number;
  readonly byteLength: number;
  /** Offset relative to the data section. */
  readonly offset: number;
}

export interface GgufHeader {
  readonly version: number;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  readonly tensors: ReadonlyArray<GgufTensorInfo>;
  readonly byName: ReadonlyMap<string, GgufTensorInfo>;
  readonly alignment: number;
  /** Absolute file offset of the data section. */
  readonly dataOffset: number;
}

// ----- constants -----

export const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** llama.cpp's GGML_MAX_NAME: tensor names must be shorter. */
const MAX_NAME = 64;
const MAX_DIMS = 4;
/** Smallest encoding of one KV pair (empty key is refused, so ≥ 1 byte) and of one tensor info. */
const MIN_KV_BYTES = 8 + 1 + 4 + 1;
const MIN_TENSOR_INFO_BYTES = 8 + 1 + 4 + 4 + 8;
const SCALAR_BYTES: Readonly<Record<Exclude<GgufValueType, "ARRAY">, number>> = {
  UINT8: 1,
  INT8: 1,
  UINT16: 2,
  INT16: 2,
  UINT32: 4,
  INT32: 4,
  FLOAT32: 4,
  BOOL: 1,
  STRING: 8,
  UINT64: 8,
  INT64: 8,
  FLOAT64: 8,
};

// ----- cursor -----

/** Thrown inside the parser only; parseGgufPrefix turns both into values. */
class Failure {
  constructor(readonly error: SerializationError) {}
}
class NeedMore {
  constructor(readonly bytes: number) {}
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

class Cursor {
  pos = 0;
  private readonly view: DataView;
  constructor(
    readonly file: string,
    readonly bytes: Uint8Array,
    readonly fileSize: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  /** Ensures `n` more bytes: beyond the file → TruncatedFile; beyond what was read so far → ask for more. */
  need(n: number, tensor: string | null = null): void {
    const end = this.pos + n;
    if (end > this.fileSize) throw new Failure(truncatedFile(this.file, end, this.fileSize, tensor));
    if (end > this.bytes.length) throw new NeedMore(end);
  }
  fail(tensor: string | null, detail: string): never {
    throw new Failure(invalidHeader(this.file, tensor, detail));
  }
  u8(): number {
    this.need(1);
    return this.bytes[this.pos++]!;
  }
  u32(): number {
    this.need(4);
    const v = this.view.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  u64(): bigint {
    this.need(8);
    const v = this.view.getBigUint64(this.pos, true);
    this.pos += 8;
    return v;
  }
  /** A u64 that must fit a JS safe integer (a length, count, dimension or offset). */
  size(tensor: string | null, what: string): number {
    const v = this.u64();
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) this.fail(tensor, `${what} ${v} is beyond 2^53`);
    return Number(v);
  }
  string(tensor: string | null, what: string): string {
    const n = this.size(tensor, `${what} length`);
    this.need(n, tensor);
    const s = this.bytes.subarray(this.pos, this.pos + n);
    this.pos += n;
    try {
      return utf8.decode(s);
    } catch {
      return this.fail(tensor, `${what} is not valid UTF-8`);
    }
  }
  scalar(type: Exclude<GgufValueType, "ARRAY">, key: string): GgufScalar {
    if (type === "STRING") return this.string(null, `value of ${key}`);
    this.need(SCALAR_BYTES[type]);
    const p = this.pos;
    this.pos += SCALAR_BYTES[type];
    const v = this.view;
    switch (type) {
      case "UINT8":
        return v.getUint8(p);
      case "INT8":
        return v.getInt8(p);
      case "UINT16":
        return v.getUint16(p, true);
      case "INT16":
        return v.getInt16(p, true);
      case "UINT32":
        return v.getUint32(p, true);
      case "INT32":
        return v.getInt32(p, true);
      case "FLOAT32":
        return v.getFloat32(p, true);
      case "BOOL":
        return v.getUint8(p) !== 0;
      case "UINT64":
        return v.getBigUint64(p, true);
      case "INT64":
        return v.getBigInt64(p, true);
      case "FLOAT64":
        return v.getFloat64(p, true);
    }
  }
  /** Refuses `count` items of at least `min` bytes each that the rest of the file cannot hold. */
  fits(count: number, min: number, tensor: string | null = null): void {
    if (count * min > this.fileSize - this.pos) throw new Failure(truncatedFile(this.file, this.pos + count * min, this.fileSize, tensor));
  }
}

// ----- parsing -----

const valueType = (c: Cursor, key: string): GgufValueType => {
  const id = c.u32();
  const t = GGUF_VALUE_TYPES[id];
  return t === undefined ? c.fail(null, `key ${JSON.stringify(key)} has invalid GGUF value type ${id}`) : t;
};

const readValue = (c: Cursor, key: string): GgufValue => {
  const type = valueType(c, key);
  if (type !== "ARRAY") return { type, value: c.scalar(type, key) };
  const itemType = valueType(c, key);
  if (itemType === "ARRAY") return c.fail(null, `key ${JSON.stringify(key)} is an array of arrays (llama.cpp refuses them)`);
  const n = c.size(null, `length of ${key}`);
  c.fits(n, SCALAR_BYTES[itemType]);
  const value: GgufScalar[] = new Array<GgufScalar>(n);
  for (let i = 0; i < n; i++) value[i] = c.scalar(itemType, key);
  return { type, itemType, value };
};

const readMetadata = (c: Cursor, count: number): Map<string, GgufValue> => {
  c.fits(count, MIN_KV_BYTES);
  const kv = new Map<string, GgufValue>();
  for (let i = 0; i < count; i++) {
    const key = c.string(null, `key ${i}`);
    if (key === "") c.fail(null, `key ${i} is empty`);
    if (kv.has(key)) c.fail(null, `duplicate key ${JSON.stringify(key)}`);
    kv.set(key, readValue(c, key));
  }
  return kv;
};

const alignmentOf = (c: Cursor, kv: ReadonlyMap<string, GgufValue>): number => {
  const a = kv.get("general.alignment");
  if (a === undefined) return GGUF_DEFAULT_ALIGNMENT;
  if (a.type !== "UINT32") return c.fail(null, `general.alignment must be UINT32, got ${a.type}`);
  const n = a.value as number;
  return n === 0 || (n & (n - 1)) !== 0 ? c.fail(null, `general.alignment ${n} is not a power of 2`) : n;
};

const readTensorInfo = (c: Cursor, seen: { has(name: string): boolean }): GgufTensorInfo => {
  const name = c.string(null, "tensor name");
  if (new TextEncoder().encode(name).length >= MAX_NAME) c.fail(name, `tensor name is ${MAX_NAME} bytes or longer`);
  if (seen.has(name)) throw new Failure(duplicateTensor(c.file, name));
  const nDims = c.u32();
  if (nDims > MAX_DIMS) c.fail(name, `${nDims} dimensions (at most ${MAX_DIMS})`);
  const ne: number[] = [];
  for (let j = 0; j < nDims; j++) ne.push(c.size(name, `dimension ${j}`));
  const elements = ne.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(elements)) c.fail(name, `shape [${ne.join(", ")}] has more than 2^53 elements`);
  const typeId = c.u32();
  const type = ggmlTypeById(typeId);
  if (type === undefined) throw new Failure(unsupportedDType(c.file, name, `ggml type ${typeId}`, GGML_TYPES.map((t) => t.name)));
  if ((ne[0] ?? 1) % type.blockSize !== 0) c.fail(name, `rows of ${ne[0] ?? 1} ${type.name} values are not whole blocks of ${type.blockSize}`);
  const offset = c.size(name, "data offset");
  return { name, type, ne, shape: [...ne].reverse(), elements, byteLength: ggmlByteLength(type, elements), offset };
};

const pad = (n: number, a: number): number => Math.ceil(n / a) * a;

/** Offsets must follow each other in info order, each tensor padded to the alignment (llama.cpp's rule). */
const checkLayout = (c: Cursor, tensors: ReadonlyArray<GgufTensorInfo>, dataOffset: number, alignment: number): void => {
  let expected = 0;
  let prev: string | null = null;
  for (const t of tensors) {
    if (t.offset > expected) throw new Failure(dataGap(c.file, t.name, expected, t.offset));
    if (t.offset < expected) throw new Failure(prev === null ? invalidHeader(c.file, t.name, `offset ${t.offset} < 0`) : overlappingTensors(c.file, t.name, prev));
    const end = dataOffset + t.offset + t.byteLength;
    if (end > c.fileSize) throw new Failure(offsetsOutOfRange(c.file, t.name, [t.offset, t.offset + t.byteLength], c.fileSize - dataOffset));
    expected = t.offset + pad(t.byteLength, alignment);
    prev = t.name;
  }
};

const parse = (c: Cursor): GgufHeader => {
  if (c.u32() !== GGUF_MAGIC) c.fail(null, "not a GGUF file (the magic is not \"GGUF\")");
  const version = c.u32();
  if ((version & 0xffff) === 0) c.fail(null, `GGUF version ${version} (0, or a big-endian file)`);
  if (version === 1) c.fail(null, "GGUF version 1 is no longer supported (llama.cpp refuses it too)");
  if (version > 3) c.fail(null, `GGUF version ${version} is newer than 3`);
  const nTensors = c.size(null, "tensor count");
  const nKv = c.size(null, "metadata count");
  const metadata = readMetadata(c, nKv);
  const alignment = alignmentOf(c, metadata);
  c.fits(nTensors, MIN_TENSOR_INFO_BYTES);
  const tensors: GgufTensorInfo[] = [];
  const byName = new Map<string, GgufTensorInfo>();
  for (let i = 0; i < nTensors; i++) {
    const t = readTensorInfo(c, byName);
    tensors.push(t);
    byName.set(t.name, t);
  }
  const dataOffset = nTensors > 0 ? pad(c.pos, alignment) : c.pos;
  checkLayout(c, tensors, dataOffset, alignment);
  return { version, metadata, tensors, byName, alignment, dataOffset };
};

/**
 * Parses a GGUF header from the first `bytes` of a file of `fileSize` bytes. Right(header), Left(error), or — when
 * the header runs past `bytes` but not past the file — `{ more: n }`: read at least n bytes and call again.
 */
export const parseGgufPrefix = (file: string, bytes: Uint8Array, fileSize: number): E.Either<SerializationError, GgufHeader | { readonly more: number }> => {
  try {
    return E.right(parse(new Cursor(file, bytes, fileSize)));
  } catch (e) {
    if (e instanceof Failure) return E.left(e.error);
    if (e instanceof NeedMore) return E.right({ more: e.bytes });
    throw e;
  }
};

/** Parses the header of a whole GGUF file held in memory. */
export const parseGgufHeader = (file: string, bytes: Uint8Array): E.Either<SerializationError, GgufHeader> =>
  E.chain((h: GgufHeader | { readonly more: number }) => ("more" in h ? E.left(truncatedFile(file, h.more, bytes.length)) : E.right(h)))(
    parseGgufPrefix(file, bytes, bytes.length),
  );
