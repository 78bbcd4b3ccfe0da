export {
  compressorError,
  dataGap,
  duplicateTensor,
  formatSerializationError,
  headerBeyondFile,
  headerTooLarge,
  invalidConfig,
  invalidHeader,
  invalidIndex,
  ioError,
  offsetsOutOfRange,
  outputExists,
  outputLocked,
  outputNotDirectory,
  outputOverlaps,
  overlappingTensors,
  pathEscape,
  sizeMismatch,
  tensorNotFound,
  truncatedFile,
  unsupportedDType,
  writeRejected,
} from "./errors.js";
export type { OverlapRelation, SerializationError, SerializationErrorTag } from "./errors.js";
export { describeErrno, errnoCode, errnoMeaning } from "./errno.js";
export { tempSibling, writeAtomically } from "./atomic-file.js";
export type { ErrnoMeaning } from "./errno.js";
export { liveLockHolder, lockOutput, lockPathOf } from "./output-lock.js";
export type { OutputLock } from "./output-lock.js";
export { findOverlap, overlapOf, realpathLoose } from "./output-path.js";
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
export { MAX_HEADER_SIZE, compareUtf8, encodeHeader, parseHeader, parseHeaderLength, parseSafetensorsBuffer, sortForLayout, tensorByteLength } from "./safetensors-header.js";
export type { EncodedHeader, SafetensorsHeader, TensorEntryInfo, TensorInfo } from "./safetensors-header.js";
export { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME, deserializeSafetensors, openCheckpoint, openSafetensors, parseIndex, resolveShard, singleFileCheckpoint, tensorFromBytes } from "./safetensors-reader.js";
export { type MemoryShardedWriter, memoryCheckpoint, memoryShardedWriter, safetensorsFromBytes } from "./memory-checkpoint.js";
export type { Checkpoint, SafetensorsFile } from "./safetensors-reader.js";
export { describeEntries, encodeHeaderChecked, serializeSafetensors, writeSafetensors } from "./safetensors-writer.js";
export type { SafetensorsMetadata, TensorEntries } from "./safetensors-writer.js";
export { createShardedWriter, parseByteSize, parseShardSize, shardFileName, withShardedWriter } from "./sharded-writer.js";
export type { ShardedSaveResult, ShardedWriter, ShardedWriterOptions } from "./sharded-writer.js";
export { abandonStagedDirectoriesSync, outputState, removeStaleStaging, stageDirectory } from "./staged-directory.js";
export type { OutputState, StageOptions, StagedDirectory } from "./staged-directory.js";
export { PyFloat, dumpPythonJson, parsePythonJson, pyFloatRepr, pyJsonString, toPlainJson } from "./python-json.js";
export type { PyDumpOptions, PyJson, PyJsonObject } from "./python-json.js";
export { COMPRESSIBLE_MODULE_TYPES, FORMAT_PRIORITY, canCompress, inferFormat, inferModelFormat, torchName } from "./compression-format.js";
export type { CompressionFormat, CompressorArgs, CompressorContext, CompressorScheme, ModelFormat, ModuleState } from "./compression-format.js";
export { compressModule } from "./compress-module.js";
export { decompressModule } from "./decompress-module.js";
export { FP6_E2M3_MAGNITUDES, mxScaleFromFloat, mxScaleToBf16 } from "./mx-scale.js";
export { packColsToInt32, packRowsToInt32, packedWords, unpackColsFromInt32, unpackRowsFromInt32 } from "./pack-int32.js";
export {
  COMPRESSED_TENSORS_VERSION,
  CONFIG_NAME,
  QUANTIZATION_METHOD,
  checkQuantizationConfigShape,
  encodeQuantizationConfigJson,
  quantizationConfigJson,
  readModelConfig,
  updateConfigJson,
} from "./quantization-config-json.js";
export type { ModelConfig, QuantizationConfigJsonOptions } from "./quantization-config-json.js";
export { GGML_TYPES, ggmlByteLength, ggmlTypeById } from "./ggml-types.js";
export type { GgmlType } from "./ggml-types.js";
export { GGUF_DEFAULT_ALIGNMENT, GGUF_MAGIC, GGUF_VALUE_TYPES, parseGgufHeader, parseGgufPrefix } from "./gguf-header.js";
export type { GgufHeader, GgufScalar, GgufTensorInfo, GgufValue, GgufValueType } from "./gguf-header.js";
export { GGUF_DEQUANTIZABLE, canDequantizeGguf, dequantizeGguf } from "./gguf-dequantize.js";
export { ggufTensorFromBytes, openGguf } from "./gguf-reader.js";
export type { GgufFile } from "./gguf-reader.js";
export { GPTQ_BITS, awqGemvZerosWidth, dequantizeAwq, dequantizeGptq, unpackCols, unpackGptq, unpackRows } from "./gptq-awq-dequantize.js";
export type { AwqOptions, AwqParts, DenseWeight, GptqOptions, GptqParts, PackedTensor, UnpackedGptq } from "./gptq-awq-dequantize.js";
export { READABLE_QUANT_METHODS, dequantizeCheckpoint, dequantizeModule, quantMethodOf, quantizedFormatOf, quantizedPartsOf } from "./quantized-checkpoint.js";
export type { QuantizedFormat } from "./quantized-checkpoint.js";
export { dequantizeBnb4bit, dequantizeBnbInt8, parseBnbQuantState } from "./bnb-dequantize.js";
export type { Bnb4bitParts, Bnb4bitState } from "./bnb-dequantize.js";
export { dequantizeFp8Blocks, dequantizeFp8Rows } from "./fp8-dequantize.js";
export { HQQ_PACKINGS, dequantizeHqq, hqqPacking, hqqUnpack } from "./hqq-dequantize.js";
export { hqqPack } from "./hqq-pack.js";
export { type EetqQuantized, dequantizeEetq, eetqPreprocess, eetqQuantize, eetqShapeError, eetqUnpreprocess } from "./eetq.js";
export type { HqqFloat, HqqFloatTensor, HqqParts } from "./hqq-dequantize.js";
export { dequantizeAqlm } from "./aqlm-dequantize.js";
export type { AqlmParts } from "./aqlm-dequantize.js";
export { dequantizeMsModelSlim, msModelSlimFileNames, msModelSlimLayout, msWeightCodes } from "./ms-model-slim-layout.js";
export { MS_ASCEND_V1_DESCRIPTION, MS_ASCEND_V1_VERSION, MS_GIB, type MsShards, msAscendV1, msPackInt4, msPackW4A16, msShards, msTensorOrder, msUnpackInt4, msUnpackW4A16 } from "./ms-model-slim-save.js";
export type { MsLayout, MsLayoutType, MsLinear } from "./ms-model-slim-layout.js";
export { BNB_FP4_CODE, BNB_NF4_CODE, bnbDynamicMap, bnbQuantStateBytes, quantizeBlockwise, quantizeBnb4bit, quantizeBnbInt8 } from "./bnb-quantize.js";
export type { Bnb4bitOptions, Bnb4bitQuantized, BnbFloat } from "./bnb-quantize.js";
export { promoteFloat, roundTo } from "./float-rounding.js";
export type { TorchFloat } from "./float-rounding.js";
export { packAwqGemm, packAwqGemmWords, packAwqGemv, packCols, packGptq, packRows } from "./gptq-awq-pack.js";
export type { GptqPackInput } from "./gptq-awq-pack.js";
