import { describeErrno, errnoCode } from "./errno.js";

// ----- model -----

/**
 * Everything reading or writing a checkpoint can reject, as values. `file` is the path involved and `tensor` the
 * tensor name (null where the problem is not about one tensor, e.g. the header length).
 */
export type SerializationError =
  /** `code` is the errno code (ENOSPC, EROFS, EACCES…) where the system gave one; `detail` says it in words. */
  | { readonly _tag: "IoError"; readonly file: string; readonly tensor: string | null; readonly op: string; readonly code: string | null; readonly detail: string }
  | { readonly _tag: "TruncatedFile"; readonly file: string; readonly tensor: string | null; readonly expected: number; readonly actual: number }
  | { readonly _tag: "HeaderTooLarge"; readonly file: string; readonly tensor: null; readonly length: number; readonly limit: number }
  | { readonly _tag: "HeaderBeyondFile"; readonly file: string; readonly tensor: null; readonly length: number; readonly fileSize: number }
  | { readonly _tag: "InvalidHeader"; readonly file: string; readonly tensor: string | null; readonly detail: string }
  | { readonly _tag: "UnsupportedDType"; readonly file: string; readonly tensor: string; readonly dtype: string; readonly supported: ReadonlyArray<string> }
  | { readonly _tag: "DuplicateTensor"; readonly file: string; readonly tensor: string }
  | {
      readonly _tag: "OffsetsOutOfRange";
      readonly file: string;
      readonly tensor: string;
      readonly offsets: readonly [number, number];
      readonly dataLength: number;
    }
  | { readonly _tag: "OverlappingTensors"; readonly file: string; readonly tensor: string; readonly other: string }
  | { readonly _tag: "DataGap"; readonly file: string; readonly tensor: string | null; readonly from: number; readonly to: number }
  | {
      readonly _tag: "SizeMismatch";
      readonly file: string;
      readonly tensor: string;
      readonly dtype: string;
      readonly shape: ReadonlyArray<number>;
      readonly expectedBytes: number;
      readonly actualBytes: number;
    }
  | { readonly _tag: "TensorNotFound"; readonly file: string; readonly tensor: string }
  | { readonly _tag: "PathEscape"; readonly file: string; readonly tensor: string | null; readonly shard: string }
  | { readonly _tag: "InvalidIndex"; readonly file: string; readonly tensor: string | null; readonly detail: string }
  | { readonly _tag: "WriteRejected"; readonly file: string; readonly tensor: string | null; readonly detail: string }
  | { readonly _tag: "OutputExists"; readonly file: string; readonly tensor: null }
  /** The output would equal, contain or lie inside a path the run reads (the model, the dataset, the report). */
  | { readonly _tag: "OutputOverlaps"; readonly file: string; readonly tensor: null; readonly other: string; readonly relation: OverlapRelation }
  /** The output path exists and is not a directory (a file, link or device): never replaced, even with overwrite. */
  | { readonly _tag: "OutputNotDirectory"; readonly file: string; readonly tensor: null; readonly kind: string }
  /** Another live process holds the output's lock. */
  | { readonly _tag: "OutputLocked"; readonly file: string; readonly tensor: null; readonly lock: string; readonly pid: number }
  | { readonly _tag: "InvalidConfig"; readonly file: string; readonly tensor: null; readonly path: string; readonly detail: string }
  | { readonly _tag: "CompressorError"; readonly file: string; readonly tensor: string; readonly format: string; readonly detail: string };

export type SerializationErrorTag = SerializationError["_tag"];

/** How an output path relates to a protected path: the same, an ancestor of it, or inside it. */
export type OverlapRelation = "equals" | "contains" | "inside";

// ----- constructors -----

export const ioError = (file: string, op: string, err: unknown, tensor: string | null = null): SerializationError => ({
  _tag: "IoError",
  file,
  tensor,
  op,
  code: errnoCode(err),
  detail: describeErrno(err),
});
export const truncatedFile = (file: string, expected: number, actual: number, tensor: string | null = null): SerializationError => ({
  _tag: "TruncatedFile",
  file,
  tensor,
  expected,
  actual,
});
export const headerTooLarge = (file: string, length: number, limit: number): SerializationError => ({
  _tag: "HeaderTooLarge",
  file,
  tensor: null,
  length,
  limit,
});
export const headerBeyondFile = (file: string, length: number, fileSize: number): SerializationError => ({
  _tag: "HeaderBeyondFile",
  file,
  tensor: null,
  length,
  fileSize,
});
export const invalidHeader = (file: string, tensor: string | null, detail: string): SerializationError => ({
  _tag: "InvalidHeader",
  file,
  tensor,
  detail,
});
export const unsupportedDType = (file: string, tensor: string, dtype: string, supported: ReadonlyArray<string>): SerializationError => ({
  _tag: "UnsupportedDType",
  file,
  tensor,
  dtype,
  supported,
});
export const duplicateTensor = (file: string, tensor: string): SerializationError => ({ _tag: "DuplicateTensor", file, tensor });
export const offsetsOutOfRange = (file: string, tensor: string, offsets: readonly [number, number], dataLength: number): SerializationError => ({
  _tag: "OffsetsOutOfRange",
  file,
  tensor,
  offsets,
  dataLength,
});
export const overlappingTensors = (file: string, tensor: string, other: string): SerializationError => ({
  _tag: "OverlappingTensors",
  file,
  tensor,
  other,
});
export const dataGap = (file: string, tensor: string | null, from: number, to: number): SerializationError => ({
  _tag: "DataGap",
  file,
  tensor,
  from,
  to,
});
export const sizeMismatch = (
  file: string,
  tensor: string,
  dtype: string,
  shape: ReadonlyArray<number>,
  expectedBytes: number,
  actualBytes: number,
): SerializationError => ({ _tag: "SizeMismatch", file, tensor, dtype, shape, expectedBytes, actualBytes });
export const tensorNotFound = (file: string, tensor: string): SerializationError => ({ _tag: "TensorNotFound", file, tensor });
export const pathEscape = (file: string, tensor: string | null, shard: string): SerializationError => ({
  _tag: "PathEscape",
  file,
  tensor,
  shard,
});
export const invalidIndex = (file: string, tensor: string | null, detail: string): SerializationError => ({
  _tag: "InvalidIndex",
  file,
  tensor,
  detail,
});
/** A non-empty output directory that the caller did not allow to be replaced. */
export const outputExists = (file: string): SerializationError => ({ _tag: "OutputExists", file, tensor: null });
export const outputOverlaps = (file: string, other: string, relation: OverlapRelation): SerializationError => ({
  _tag: "OutputOverlaps",
  file,
  tensor: null,
  other,
  relation,
});
export const outputNotDirectory = (file: string, kind: string): SerializationError => ({ _tag: "OutputNotDirectory", file, tensor: null, kind });
export const outputLocked = (file: string, lock: string, pid: number): SerializationError => ({ _tag: "OutputLocked", file, tensor: null, lock, pid });
export const writeRejected = (file: string, tensor: string | null, detail: string): SerializationError => ({
  _tag: "WriteRejected",
  file,
  tensor,
  detail,
});
export const invalidConfig = (file: string, path: string, detail: string): SerializationError => ({
  _tag: "InvalidConfig",
  file,
  tensor: null,
  path,
  detail,
});
export const compressorError = (file: string, tensor: string, format: string, detail: string): SerializationError => ({
  _tag: "CompressorError",
  file,
  tensor,
  format,
  detail,
});

// ----- destructors -----

const OVERLAP_WORDS: Readonly<Record<OverlapRelation, string>> = { equals: "is", contains: "contains", inside: "lies inside" };

const where = (e: SerializationError): string => (e.tensor === null ? e.file : `${e.file}: tensor ${JSON.stringify(e.tensor)}`);

/** One readable sentence for a serialization error, naming the file and the tensor. */
export const formatSerializationError = (e: SerializationError): string => {
  switch (e._tag) {
    case "IoError":
      return `${where(e)}: ${e.op} failed: ${e.detail}`;
    case "TruncatedFile":
      return `${where(e)}: file is truncated (needs ${e.expected} bytes, has ${e.actual})`;
    case "HeaderTooLarge":
      return `${where(e)}: safetensors header length ${e.length} exceeds the limit of ${e.limit} bytes`;
    case "HeaderBeyondFile":
      return `${where(e)}: safetensors header length ${e.length} runs past the end of the ${e.fileSize}-byte file`;
    case "InvalidHeader":
      return `${where(e)}: invalid safetensors header: ${e.detail}`;
    case "UnsupportedDType":
      return `${where(e)}: dtype ${e.dtype} is not supported (supported: ${e.supported.join(", ")})`;
    case "DuplicateTensor":
      return `${where(e)}: the name appears more than once`;
    case "OffsetsOutOfRange":
      return `${where(e)}: data_offsets [${e.offsets[0]}, ${e.offsets[1]}] are outside the ${e.dataLength}-byte data section`;
    case "OverlappingTensors":
      return `${where(e)}: data overlaps tensor ${JSON.stringify(e.other)}`;
    case "DataGap":
      return `${where(e)}: bytes ${e.from}..${e.to} of the data section belong to no tensor (tensors must cover it contiguously)`;
    case "SizeMismatch":
      return `${where(e)}: ${e.dtype}[${e.shape.join(", ")}] needs ${e.expectedBytes} bytes but data_offsets span ${e.actualBytes}`;
    case "TensorNotFound":
      return `${where(e)}: no such tensor`;
    case "PathEscape":
      return `${where(e)}: shard file ${JSON.stringify(e.shard)} is outside the model directory`;
    case "InvalidIndex":
      return `${where(e)}: invalid shard index: ${e.detail}`;
    case "WriteRejected":
      return `${where(e)}: cannot write: ${e.detail}`;
    case "OutputExists":
      return `${e.file}: exists and is not empty (allow overwriting to replace it)`;
    case "OutputOverlaps":
      return `${e.file}: ${OVERLAP_WORDS[e.relation]} ${e.other}, which this run reads (choose an output outside it)`;
    case "OutputNotDirectory":
      return `${e.file}: exists and is a ${e.kind}, not a directory (remove it or choose another output)`;
    case "OutputLocked":
      return `${e.file}: another llmq process (pid ${e.pid}) is writing this output (wait for it to finish, or remove ${e.lock} if that process is gone)`;
    case "InvalidConfig":
      return `${e.file}: ${e.path === "" ? "" : `${e.path}: `}${e.detail}`;
    case "CompressorError":
      return `${where(e)}: ${e.format}: ${e.detail}`;
  }
};
