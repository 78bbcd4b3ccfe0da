import type { FileHandle } from "node:fs/promises";
import { Tensor, nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type SerializationError, tensorNotFound, truncatedFile, unsupportedDType } from "./errors.js";
import { GGUF_DEQUANTIZABLE, canDequantizeGguf, dequantizeGguf } from "./gguf-dequantize.js";
import { type GgufHeader, type GgufTensorInfo, type GgufValue, parseGgufPrefix } from "./gguf-header.js";
import { readFully, tryIo } from "./safetensors-reader.js";
const { open } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");

// ----- model -----

/** An open GGUF file: header and metadata parsed, tensor data read on demand. */
export interface GgufFile {
  readonly path: string;
  readonly header: GgufHeader;
  readonly metadata: ReadonlyMap<string, GgufValue>;
  /** Tensor names in file order. */
  readonly names: ReadonlyArray<string>;
  info(name: string): GgufTensorInfo | undefined;
  /** The tensor's stored bytes (whole ggml blocks), unconverted. */
  readBytes(name: string): TE.TaskEither<SerializationError, Uint8Array>;
  /** The tensor dequantized to f32 in torch order (shape = ne reversed). */
  read(name: string): TE.TaskEither<SerializationError, Tensor>;
  close(): Promise<void>;
}

/** The first read covers most headers (SmolLM2's vocabulary makes ~1.8 MB); larger ones grow geometrically. */
const FIRST_READ = 4 << 20;

const readHeader = (path: string, fh: FileHandle, size: number): TE.TaskEither<SerializationError, GgufHeader> =>
  pipe(
    tryIo(path, "read", async (): Promise<E.Either<SerializationError, GgufHeader>> => {
      let want = Math.min(size, FIRST_READ);
      for (;;) {
        const buf = new Uint8Array(want);
        const got = await readFully(fh, buf, 0);
        if (got < want) return E.left(truncatedFile(path, want, got));
        const r = parseGgufPrefix(path, buf, size);
        if (E.isLeft(r)) return r;
        if (!("more" in r.right)) return E.right(r.right);
        want = Math.min(size, Math.max(r.right.more, 2 * want));
      }
    }),
    TE.chainEitherK((r) => r),
  );

/** Dequantizes one tensor's bytes (already read) into an f32 tensor. */
export const ggufTensorFromBytes = (file: string, t: GgufTensorInfo, bytes: Uint8Array): E.Either<SerializationError, Tensor> =>
  canDequantizeGguf(t.type)
    ? E.right(new Tensor("f32", t.shape, dequantizeGguf(t.type, bytes)))
    : E.left(unsupportedDType(file, t.name, t.type.name, GGUF_DEQUANTIZABLE));

const fileOf = (path: string, fh: FileHandle, header: GgufHeader): GgufFile => {
  const readBytes = (name: string): TE.TaskEither<SerializationError, Uint8Array> => {
    const t = header.byName.get(name);
    if (t === undefined) return TE.left(tensorNotFound(path, name));
    return pipe(
      tryIo(path, "read", async () => {
        const buf = new Uint8Array(t.byteLength);
        return { buf, got: await readFully(fh, buf, header.dataOffset + t.offset) };
      }, name),
      TE.chainEitherK(({ buf, got }) => (got === buf.length ? E.right(buf) : E.left(truncatedFile(path, header.dataOffset + t.offset + buf.length, header.dataOffset + t.offset + got, name)))),
    );
  };
  return {
    path,
    header,
    metadata: header.metadata,
    names: header.tensors.map((t) => t.name),
    info: (name) => header.byName.get(name),
    readBytes,
    read: (name) => {
      const t = header.byName.get(name);
      if (t !== undefined && !canDequantizeGguf(t.type)) return TE.left(unsupportedDType(path, name, t.type.name, GGUF_DEQUANTIZABLE));
      return pipe(
        readBytes(name),
        TE.chainEitherK((b) => ggufTensorFromBytes(path, t!, b)),
      );
    },
    close: () => fh.close(),
  };
};

/** Opens a GGUF file: reads and validates the header (metadata and tensor infos), keeps the file open for `read`. */
export const openGguf = (path: string): TE.TaskEither<SerializationError, GgufFile> =>
  pipe(
    tryIo(path, "open", () => open(path, "r")),
    TE.chain((fh) =>
      pipe(
        tryIo(path, "stat", async () => (await fh.stat()).size),
        TE.chain((size) => readHeader(path, fh, size)),
        TE.map((header) => fileOf(path, fh, header)),
        TE.orElse((e) =>
          pipe(
            TE.fromTask(() => fh.close().catch(() => undefined)),
            TE.chain(() => TE.left(e)),
          ),
        ),
      ),
    ),
  );
