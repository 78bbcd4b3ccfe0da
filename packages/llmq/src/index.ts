// The umbrella package: the oneshot pipeline, evaluation and CLI building blocks, plus every llmq package under its
// own namespace (flat re-exports would collide: several packages export `QParams`, `ioError`, …).
export * as tensor from "@llmq/tensor";
export * as schemes from "@llmq/schemes";
export * as observers from "@llmq/observers";
export * as gptq from "@llmq/gptq";
export * as transforms from "@llmq/transforms";
export * as kvCache from "@llmq/kv-cache";
export * as serialization from "@llmq/serialization";
export * as models from "@llmq/models";
export * as trainer from "@llmq/train";

export { type OneshotOptions, type OneshotResult, type LayerReport, type ModuleReport, oneshot } from "./oneshot.js";
export { type OneshotFilesOptions, type OneshotFilesResult, oneshotFiles } from "./oneshot-files.js";
export { type EpochRecord, type TrainOptions, type TrainResult, train } from "./qat-train.js";
export { type Pass, type PipelineName, ERROR_WINDOWS, planPasses, runPipeline } from "./pipeline.js";
export { type Recipe, type SchemeRecipeOptions, RUNNABLE_MODIFIERS, recipeFromScheme, recipeFromYaml } from "./recipe.js";
export { type Batch, type Dataset, type DatasetKind, type DatasetOptions, type DatasetTokenizer, batches$, datasetFromText, loadDataset, seededPermutation } from "./dataset.js";
export {
  type EvaluateOptions,
  type EvaluateResult,
  type KvCacheOverride,
  KV_CACHE_OVERRIDES,
  evaluate,
  finalHiddenStates,
  kvCacheLabel,
  layerKvFormat,
  modelLogits,
} from "./evaluate.js";
export { type GenerateOptions, type GeneratedToken, type LoadedModel, generate, lastLogits, loadForGeneration, sampleToken } from "./generate.js";
export { type GenerateCommandOptions, type GenerateCommandResult, formatGenerate, generateCommand } from "./generate-command.js";
export { type ReferenceEntry, type ReferenceStore, referenceCacheDir } from "./reference-cache.js";
export { type EvalSummary, type PositionStats, percentile, scoreWindow, summarize } from "./metrics.js";
export { openModelDir, openModelFiles, optionalTokenizer } from "./open-model.js";
export { COMPRESSED_TENSORS_VERSION, type CompressedModule, compressModule, configGroups, groupFormat, quantizationConfigJson } from "./checkpoint-format.js";
// The modifier contract and the modifiers llmq runs (owned by @llmq/observers and @llmq/gptq), for custom modifiers.
export {
  type Calibration,
  type EpochEnd,
  type LayerState,
  type ModelInfo,
  type Modifier,
  type ModifierError,
  type ModuleInfo,
  type QuantizedModule,
  type Tap,
  QuantizationModifier,
  modifierError,
  reducer,
  withTensors,
} from "@llmq/observers";
export { GPTQModifier } from "@llmq/gptq";
export { AWQModifier, SmoothQuantModifier } from "@llmq/transforms";
export { KvCacheModifier } from "@llmq/kv-cache";
export { type ProgressEvent, type ProgressSink, noProgress } from "./progress.js";
export { type BarDatum, type ReportSection, barChartSvg, histogramSvg, renderReport } from "./report.js";
export { type LlmqError, exitCodeOf, formatLlmqError } from "./errors.js";
export { CONVERT_TARGETS, type ConvertOptions, type ConvertResult, type ConvertTarget, convertCommand } from "./convert-command.js";
export { type QuantizeCommandOptions, quantizeCommand } from "./quantize-command.js";
export { type HfQuantizeOptions, type HfQuantizeResult, formatHfQuantize, hfQuantizeCommand, resolveHfQuantizer } from "./hf-quantize-command.js";
export * as hfQuantizers from "@llmq/hf-quantizers";
export { type EvalCommandOptions, type EvalCommandResult, evalCommand } from "./eval-command.js";
export { type InspectResult, inspectCommand } from "./inspect-command.js";
// msModelSlim (QuantConfig → modifiers, its safe_tensor layout)
export { MS_RUNNABLE_TYPES, msIgnore, msModelSlimRecipe, msModifierEntries, msUnsupported } from "./ms-model-slim-recipe.js";
export { MS_TYPES, type MsModelSlimOptions, type MsModelSlimResult, type MsSaveOptions, compressedTensorsToMsModelSlim, msSaveOptions, quantizeWithMsModelSlim } from "./ms-model-slim.js";
export { type MsAutoDisable, MS_FEATURE_SAMPLES, msAutoDisable, msDisableLevel } from "./ms-auto-disable.js";
export { type MsToCompressedTensorsResult, msModelSlimToCompressedTensors } from "./ms-to-compressed-tensors.js";
export { type CtToMsResult, compressedTensorsDirToMsModelSlim, msTypeOfCompressedTensors } from "./ct-to-ms-model-slim.js";
