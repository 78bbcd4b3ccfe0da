import type { FileHandle } from "node:fs/promises";
import { type DType, Tensor, storageFromBytes, nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import {
  type SerializationError,
  invalidIndex,
  ioError,
  pathEscape,
  tensorNotFound,
  truncatedFile,
  unsupportedDType,
} from "./errors.js";
import { SUPPORTED_SAFETENSORS_DTYPES, llmqDTypeOf } from "./safetensors-dtype.js";
import { type SafetensorsHeader, type TensorInfo, parseHeader, parseHeaderLength, parseSafetensorsBuffer } from "./safetensors-header.js";
const { open, readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { isAbsolute, join, relative, resolve, sep } = nodeBuiltin<typeof import("node:path")>("node:path");

// ----- model -----

/** An open safetensors file: the header is parsed, tensor data is read on demand. */
export interface SafetensorsFile {
  readonly path: string;
  readonly header: SafetensorsHeader;
  readonly metadata: Readonly<Record<string, string>> | null;
  /** Tensor names in header order. */
  readonly names: ReadonlyArray<string>;
  info(name: string): TensorInfo | undefined;
  /** Reads one tensor's bytes (only those) into a fresh aligned buffer and views it as a Tensor (no copy). */
  read(name: string): TE.TaskEither<SerializationError, Tensor>;
  /** The raw little-endian bytes of one tensor. */
  readBytes(name: string): TE.TaskEither<SerializationError, Uint8Array>;
  close(): Promise<void>;
}

/** A model's weights: one `model.safetensors` or the shards named by `model.safetensors.index.json`. */
export interface Checkpoint {
  readonly dir: string;
  readonly files: ReadonlyArray<SafetensorsFile>;
  /** All tensor names, in index order (sharded) or header order (single file). */
  readonly names: ReadonlyArray<string>;
  /** The index file's `metadata` (e.g. total_size), or null for a single file. */
  readonly indexMetadata: Readonly<Record<string, unknown>> | null;
  info(name: string): { readonly file: SafetensorsFile; readonly info: TensorInfo } | undefined;
  read(name: string): TE.TaskEither<SerializationError, Tensor>;
  close(): Promise<void>;
}

// ----- constants -----

export const SAFE_WEIGHTS_NAME = "model.safetensors";
export const SAFE_WEIGHTS_INDEX_NAME = "model.safetensors.index.json";

/** Node's single-read limit is 2 GiB − 1; larger tensors are read in pieces. */
const READ_CHUNK = 1 << 30;

// ----- reading -----

export const readFully = async (fh: FileHandle, into: Uint8Array, position: number): Promise<number> => {
  let done = 0;
  while (done < into.length) {
    const want = Math.min(READ_CHUNK, into.length - done);
    const { bytesRead } = await fh.read(into, done, want, position + done);
    if (bytesRead === 0) break;
    done += bytesRead;
  }
  return done;
};

export const tryIo = <A>(file: string, op: string, f: () => Promise<A>, tensor: string | null = null): TE.TaskEither<SerializationError, A> =>
  TE.tryCatch(f, (err) => ioError(file, op, err, tensor));

/**
 * Opens a safetensors file lazily: reads the 8-byte length and the header only (bounded by MAX_HEADER_SIZE and the
 * file size), validates the header fully, and keeps the file open for `read`. Close it when done.
 */
export const openSafetensors = (path: string): TE.TaskEither<SerializationError, SafetensorsFile> =>
  pipe(
    tryIo(path, "open", () => open(path, "r")),
    TE.chain((fh) => {
      const fail = (e: SerializationError): TE.TaskEither<SerializationError, SafetensorsFile> =>
        pipe(
          TE.fromTask(() => fh.close().catch(() => undefined)),
          TE.chain(() => TE.left(e)),
        );
      return pipe(
        tryIo(path, "stat", async () => {
          const size = (await fh.stat()).size;
          const prefix = new Uint8Array(8);
          const got = await readFully(fh, prefix, 0);
          return { size, prefix: prefix.subarray(0, got) };
        }),
        TE.chainEitherK(({ size, prefix }) =>
          pipe(
            parseHeaderLength(path, prefix, size),
            E.map((n) => ({ size, n })),
          ),
        ),
        TE.chain(({ size, n }) =>
          pipe(
            tryIo(path, "read header", async () => {
              const buf = new Uint8Array(n);
              const got = await readFully(fh, buf, 8);
              return { buf, got };
            }),
            TE.chainEitherK(({ buf, got }) => (got < n ? E.left(truncatedFile(path, 8 + n, 8 + got)) : parseHeader(path, buf, size))),
          ),
        ),
        TE.map((header) => makeFile(path, fh, header)),
        TE.orElse(fail),
      );
    }),
  );

/**
 * A safetensors file over any way to read a byte range of it (a file handle, bytes in memory): `readRange(name,
 * position, length)` returns exactly those bytes in a buffer of their own.
 */
export const safetensorsFileOver = (
  path: string,
  header: SafetensorsHeader,
  readRange: (name: string, position: number, length: number) => TE.TaskEither<SerializationError, Uint8Array>,
  close: () => Promise<void>,
): SafetensorsFile => {
  const readBytes = (name: string): TE.TaskEither<SerializationError, Uint8Array> => {
    const t = header.byName.get(name);
    if (t === undefined) return TE.left(tensorNotFound(path, name));
    const [b, e] = t.dataOffsets;
    return readRange(name, header.dataOffset + b, e - b);
  };
  const read = (name: string): TE.TaskEither<SerializationError, Tensor> => {
    const t = header.byName.get(name);
    if (t === undefined) return TE.left(tensorNotFound(path, name));
    const dtype = llmqDTypeOf(t.dtype);
    if (dtype === undefined) return TE.left(unsupportedDType(path, name, t.dtype, SUPPORTED_SAFETENSORS_DTYPES));
    return pipe(
      readBytes(name),
      TE.map((buf) => tensorFromBytes(dtype, t.shape, buf)),
    );
  };
  return { path, header, metadata: header.metadata, names: header.tensors.map((t) => t.name), info: (name) => header.byName.get(name), read, readBytes, close };
};

const makeFile = (path: string, fh: FileHandle, header: SafetensorsHeader): SafetensorsFile =>
  safetensorsFileOver(
    path,
    header,
    (name, position, len) =>
      pipe(
        tryIo(
          path,
          "read",
          async () => {
            // allocUnsafeSlow: an own, 8-byte-aligned ArrayBuffer that is not zero-filled first (it is overwritten).
            const buf = new Uint8Array(Buffer.allocUnsafeSlow(len).buffer, 0, len);
            const got = await readFully(fh, buf, position);
            return { buf, got };
          },
          name,
        ),
        TE.chainEitherK(({ buf, got }) => (got < len ? E.left(truncatedFile(path, position + len, position + got, name)) : E.right(buf))),
      ),
    () => fh.close().catch(() => undefined),
  );

/** A Tensor over bytes that start at offset 0 of their own buffer (always aligned, so no copy). */
export const tensorFromBytes = (dtype: DType, shape: ReadonlyArray<number>, buf: Uint8Array): Tensor =>
  new Tensor(dtype, shape, storageFromBytes(dtype, buf.buffer, buf.byteOffset, buf.byteLength));

/**
 * All tensors of a safetensors file held in memory (e.g. fetched in a browser). Tensors view `bytes` where the
 * offset is aligned and copy otherwise.
 */
export const deserializeSafetensors = (
  file: string,
  bytes: Uint8Array,
): E.Either<SerializationError, { readonly metadata: Readonly<Record<string, string>> | null; readonly tensors: ReadonlyMap<string, Tensor> }> => {
  const h = parseSafetensorsBuffer(file, bytes);
  if (E.isLeft(h)) return h;
  const tensors = new Map<string, Tensor>();
  for (const t of h.right.tensors) {
    const dtype = llmqDTypeOf(t.dtype);
    if (dtype === undefined) return E.left(unsupportedDType(file, t.name, t.dtype, SUPPORTED_SAFETENSORS_DTYPES));
    const [b, e] = t.dataOffsets;
    tensors.set(t.name, new Tensor(dtype, t.shape, storageFromBytes(dtype, bytes.buffer, bytes.byteOffset + h.right.dataOffset + b, e - b)));
  }
  return E.right({ metadata: h.right.metadata, tensors });
};

// ----- checkpoints -----

const isPlainObject = (u: unknown): u is Record<string, unknown> => typeof u === "object" && u !== null && !Array.isArray(u);

/** A shard name from an index must stay inside the model directory (no absolute paths, no `..` escapes). */
export const resolveShard = (dir: string, indexFile: string, tensor: string | null, shard: string): E.Either<SerializationError, string> => {
  if (shard.length === 0 || shard.includes("\0") || isAbsolute(shard) || /^[a-zA-Z]:/.test(shard) || shard.includes("\\"))
    return E.left(pathEscape(indexFile, tensor, shard));
  const root = resolve(dir);
  const full = resolve(root, shard);
  const rel = relative(root, full);
  if (rel === "" || rel === ".." || rel.startsWith(`..${sep}`) || isAbsolute(rel)) return E.left(pathEscape(indexFile, tensor, shard));
  return E.right(full);
};

interface ParsedIndex {
  readonly metadata: Readonly<Record<string, unknown>> | null;
  readonly weightMap: ReadonlyArray<readonly [string, string]>;
}

export const parseIndex = (indexFile: string, dir: string, text: string): E.Either<SerializationError, ParsedIndex> => {
  let u: unknown;
  try {
    u = JSON.parse(text);
  } catch (err) {
    return E.left(invalidIndex(indexFile, null, `not valid JSON (${err instanceof Error ? err.message : String(err)})`));
  }
  if (!isPlainObject(u)) return E.left(invalidIndex(indexFile, null, "must be a JSON object with weight_map"));
  const wm = u.weight_map;
  if (!isPlainObject(wm)) return E.left(invalidIndex(indexFile, null, "weight_map must be an object of tensor name → shard file"));
  const md = u.metadata;
  if (md !== undefined && md !== null && !isPlainObject(md)) return E.left(invalidIndex(indexFile, null, "metadata must be an object"));
  const entries: Array<readonly [string, string]> = [];
  for (const [name, shard] of Object.entries(wm)) {
    if (typeof shard !== "string") return E.left(invalidIndex(indexFile, name, "the shard file name must be a string"));
    const r = resolveShard(dir, indexFile, name, shard);
    if (E.isLeft(r)) return r;
    entries.push([name, shard]);
  }
  return E.right({ metadata: isPlainObject(md) ? md : null, weightMap: entries });
};

const fileExists = async (p: string): Promise<boolean> => {
  try {
    const fh = await open(p, "r");
    await fh.close();
    return true;
  } catch {
    return false;
  }
};

/**
 * Opens a model directory the way transformers resolves it: a single `model.safetensors` if present, otherwise
 * `model.safetensors.index.json` (every shard's header is read and validated, and every weight_map entry must exist
 * in its shard).
 */
export const openCheckpoint = (dir: string): TE.TaskEither<SerializationError, Checkpoint> => {
  const indexFile = join(dir, SAFE_WEIGHTS_INDEX_NAME);
  return pipe(
    TE.fromTask(async () => ({ single: await fileExists(join(dir, SAFE_WEIGHTS_NAME)), index: await fileExists(indexFile) })),
    TE.chain(({ single, index }) => (!single && index ? openSharded(dir, indexFile) : openSingle(dir))),
  );
};

/** A checkpoint of one safetensors file. */
export const singleFileCheckpoint = (dir: string, f: SafetensorsFile): Checkpoint => ({
  dir,
  files: [f],
  names: f.names,
  indexMetadata: null,
  info: (name: string) => {
    const info = f.info(name);
    return info === undefined ? undefined : { file: f, info };
  },
  read: (name: string) => f.read(name),
  close: () => f.close(),
});

const openSingle = (dir: string): TE.TaskEither<SerializationError, Checkpoint> =>
  pipe(
    openSafetensors(join(dir, SAFE_WEIGHTS_NAME)),
    TE.map((f) => singleFileCheckpoint(dir, f)),
  );

const openSharded = (dir: string, indexFile: string): TE.TaskEither<SerializationError, Checkpoint> =>
  pipe(
    tryIo(indexFile, "read", () => readFile(indexFile, "utf8")),
    TE.chainEitherK((text) => parseIndex(indexFile, dir, text)),
    TE.chain((index) => {
      const shardNames = [...new Set(index.weightMap.map(([, s]) => s))];
      const opened: SafetensorsFile[] = [];
      const closeAll = () => Promise.all(opened.map((f) => f.close())).then(() => undefined);
      const openAll = async (): Promise<E.Either<SerializationError, Map<string, SafetensorsFile>>> => {
        const byShard = new Map<string, SafetensorsFile>();
        for (const s of shardNames) {
          const full = E.getOrElse(() => join(dir, s))(resolveShard(dir, indexFile, null, s));
          const r = await openSafetensors(full)();
          if (E.isLeft(r)) return r;
          opened.push(r.right);
          byShard.set(s, r.right);
        }
        return E.right(byShard);
      };
      return pipe(
        () => openAll(),
        TE.chainEitherK((byShard) => {
          const where = new Map<string, SafetensorsFile>();
          for (const [name, s] of index.weightMap) {
            const f = byShard.get(s)!;
            if (f.info(name) === undefined) return E.left(invalidIndex(indexFile, name, `the tensor is not in shard ${JSON.stringify(s)}`));
            where.set(name, f);
          }
          const ckpt: Checkpoint = {
            dir,
            files: opened,
            names: index.weightMap.map(([n]) => n),
            indexMetadata: index.metadata,
            info: (name) => {
              const f = where.get(name);
              const info = f?.info(name);
              return f === undefined || info === undefined ? undefined : { file: f, info };
            },
            read: (name) => {
              const f = where.get(name);
              return f === undefined ? TE.left(tensorNotFound(indexFile, name)) : f.read(name);
            },
            close: closeAll,
          };
          return E.right(ckpt);
        }),
        TE.orElse((e) =>
          pipe(
            TE.fromTask(closeAll),
            TE.chain(() => TE.left(e)),
          ),
        ),
      );
    }),
  );
