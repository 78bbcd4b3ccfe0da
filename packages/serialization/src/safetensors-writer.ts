import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { writeAll, writeAtomically } from "./atomic-file.js";
import { type SerializationError, ioError, unsupportedDType, writeRejected } from "./errors.js";
import { SUPPORTED_LLMQ_DTYPES, safetensorsDTypeOf } from "./safetensors-dtype.js";
import { type EncodedHeader, MAX_HEADER_SIZE, type TensorEntryInfo, encodeHeader } from "./safetensors-header.js";

// ----- model -----

/** Named tensors to write; the order does not matter (the file is laid out like the Python library does). */
export type TensorEntries = ReadonlyArray<readonly [string, Tensor]> | ReadonlyMap<string, Tensor>;

export type SafetensorsMetadata = Readonly<Record<string, string>> | null;

// ----- planning -----

/** Checks names and dtypes and describes each tensor for the header. */
export const describeEntries = (file: string, entries: TensorEntries): E.Either<SerializationError, TensorEntryInfo[]> => {
  const seen = new Set<string>();
  const out: TensorEntryInfo[] = [];
  for (const [name, t] of entries) {
    if (seen.has(name)) return E.left(writeRejected(file, name, "the name is given twice"));
    seen.add(name);
    const r = describeTensor(file, name, t);
    if (E.isLeft(r)) return r;
    out.push(r.right);
  }
  return E.right(out);
};

export const describeTensor = (file: string, name: string, t: Tensor): E.Either<SerializationError, TensorEntryInfo> => {
  const dtype = safetensorsDTypeOf(t.dtype);
  if (dtype === undefined) return E.left(unsupportedDType(file, name, t.dtype, SUPPORTED_LLMQ_DTYPES));
  if (name === "__metadata__") return E.left(writeRejected(file, name, "__metadata__ is reserved for the metadata"));
  return E.right({ name, dtype, shape: t.shape, byteLength: t.byteLength });
};

/** The header, refused like the Python library refuses it when it exceeds MAX_HEADER_SIZE. */
export const encodeHeaderChecked = (
  file: string,
  infos: ReadonlyArray<TensorEntryInfo>,
  metadata: SafetensorsMetadata,
): E.Either<SerializationError, EncodedHeader> => {
  const h = encodeHeader(infos, metadata);
  return h.bytes.length - 8 > MAX_HEADER_SIZE
    ? E.left(writeRejected(file, null, `the header would be ${h.bytes.length - 8} bytes, over the ${MAX_HEADER_SIZE}-byte limit of safetensors`))
    : E.right(h);
};

const byName = (entries: TensorEntries): Map<string, Tensor> => new Map(entries);

// ----- writing -----

/** The whole file in memory: the bytes `safetensors.serialize` (Python) produces for the same tensors and metadata. */
export const serializeSafetensors = (entries: TensorEntries, metadata: SafetensorsMetadata = null): E.Either<SerializationError, Uint8Array> =>
  pipe(
    describeEntries("<memory>", entries),
    E.chain((infos) => encodeHeaderChecked("<memory>", infos, metadata)),
    E.map((h) => {
      const out = new Uint8Array(h.bytes.length + h.dataLength);
      out.set(h.bytes, 0);
      const tensors = byName(entries);
      for (const e of h.layout) out.set(tensors.get(e.name)!.bytes(), h.bytes.length + e.offset);
      return out;
    }),
  );

/**
 * Writes a safetensors file byte-identical to Python's `safetensors.*.save_file` for the same tensors and metadata
 * (metadata with one key, as transformers writes it, is byte-identical; with several keys Python's own order is
 * random). Atomic: the bytes go to a temporary sibling that is fsynced and renamed over `path`.
 */
export const writeSafetensors = (
  path: string,
  entries: TensorEntries,
  metadata: SafetensorsMetadata = null,
): TE.TaskEither<SerializationError, { readonly path: string; readonly bytes: number }> =>
  pipe(
    TE.fromEither(describeEntries(path, entries)),
    TE.chainEitherK((infos) => encodeHeaderChecked(path, infos, metadata)),
    TE.chain((h) => writeEncoded(path, h, byName(entries))),
  );

const writeEncoded = (path: string, h: EncodedHeader, tensors: ReadonlyMap<string, Tensor>) =>
  TE.tryCatch(
    async () => {
      await writeAtomically(path, async (fh) => {
        await writeAll(fh, h.bytes);
        for (const e of h.layout) await writeAll(fh, tensors.get(e.name)!.bytes());
      });
      return { path, bytes: h.bytes.length + h.dataLength };
    },
    (err) => ioError(path, "write", err),
  );
