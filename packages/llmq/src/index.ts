// The umbrella package: the oneshot pipeline, evaluation and CLI building blocks, plus every llmq package under its
// own namespace (flat re-exports would collide: several packages export `QParams`, `ioError`, …).
export * as tensor from "@llmq/tensor";
export * as schemes from "@llmq/schemes";
export * as observers from "@llmq/observers";
export * as gptq from "@llmq/gptq";
export * as serialization from "@llmq/serialization";
export * as models from "@llmq/models";

export { type OneshotOptions, type OneshotResult, type LayerReport, type ModuleReport, oneshot } from "./oneshot.js";
export { type Recipe, type SchemeRecipeOptions, RUNNABLE_MODIFIERS, recipeFromScheme, recipeFromYaml } from "./recipe.js";
export { type Batch, type Dataset, type DatasetKind, type DatasetOptions, type DatasetTokenizer, batches$, loadDataset, seededPermutation } from "./dataset.js";
export { type EvaluateOptions, type EvaluateResult, evaluate, finalHiddenStates } from "./evaluate.js";
export { type EvalSummary, type PositionStats, logSoftmaxRow, percentile, scoreWindow, summarize } from "./metrics.js";
export { openModelDir, optionalTokenizer } from "./open-model.js";
export { type PlannedModule, type QuantizationPlan, checkWeightFits, planQuantization } from "./plan.js";
export { type QuantizedWeight, gptqModule, rtnModule } from "./quantize-module.js";
export { COMPRESSED_TENSORS_VERSION, type CompressedModule, compressModule, groupFormat, quantizationConfigJson } from "./checkpoint-format.js";
export { type LifecycleAction, type LifecycleError, type LifecycleEvent, type LifecycleState, activeAt, created, formatLifecycleError, transition } from "./lifecycle.js";
export { type ProgressEvent, type ProgressSink, noProgress } from "./progress.js";
export { type BarDatum, type ReportSection, barChartSvg, histogramSvg, renderReport } from "./report.js";
export { type LlmqError, exitCodeOf, formatLlmqError } from "./errors.js";
export { type ConvertOptions, type ConvertResult, convertCommand } from "./convert-command.js";
export { type QuantizeCommandOptions, quantizeCommand } from "./quantize-command.js";
export { type EvalCommandOptions, type EvalCommandResult, evalCommand } from "./eval-command.js";
export { type InspectResult, inspectCommand } from "./inspect-command.js";
