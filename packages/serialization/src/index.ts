export * from "./errors.js";
export {
  SAFETENSORS_DTYPES,
  SUPPORTED_LLMQ_DTYPES,
  SUPPORTED_SAFETENSORS_DTYPES,
  isSafetensorsDType,
  llmqDTypeOf,
  safetensorsDTypeBits,
  safetensorsDTypeOf,
} from "./safetensors-dtype.js";
export type { SafetensorsDType } from "./safetensors-dtype.js";
export { MAX_HEADER_SIZE, compareUtf8, encodeHeader, parseHeader, parseHeaderLength, sortForLayout, tensorByteLength } from "./safetensors-header.js";
export type { EncodedHeader, SafetensorsHeader, TensorEntryInfo, TensorInfo } from "./safetensors-header.js";
export { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, openCheckpoint, openSafetensors, parseIndex, resolveShard, tensorFromBytes } from "./safetensors-reader.js";
export type { Checkpoint, SafetensorsFile } from "./safetensors-reader.js";
export { describeEntries, serializeSafetensors, writeSafetensors } from "./safetensors-writer.js";
export type { SafetensorsMetadata, TensorEntries } from "./safetensors-writer.js";
export { createShardedWriter, parseShardSize, shardFileName, withShardedWriter } from "./sharded-writer.js";
export type { ShardedSaveResult, ShardedWriter, ShardedWriterOptions } from "./sharded-writer.js";
export { PyFloat, dumpPythonJson, parsePythonJson, pyFloatRepr, pyJsonString, toPlainJson } from "./python-json.js";
export type { PyDumpOptions, PyJson, PyJsonObject } from "./python-json.js";
