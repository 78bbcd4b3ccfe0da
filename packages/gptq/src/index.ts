export * from "./errors.js";
export { emptyHessian, accumulateHessian, accumulateHessianInPlace, normalizeHessian } from "./hessian.js";
export type { HessianState } from "./hessian.js";
export { factorizeHessianInPlace } from "./factorize-hessian.js";
export type { HessianFactor } from "./factorize-hessian.js";
export { quantizeWeight } from "./quantize-weight.js";
export type {
  CodeDType,
  GptqArgs,
  GptqResult,
  ObserveWeight,
  QuantizeWeightOptions,
  ResolvedActorder,
  ScaleDType,
  WeightQParams,
} from "./quantize-weight.js";
export { gptqQuantizeModule } from "./gptq-quantize-module.js";
export type { GptqModuleOptions } from "./gptq-quantize-module.js";
// The weight observer moved to @llmq/observers (QuantizationModifier runs it too); re-exported for existing callers.
export { observeWeightWith, weightObserverName } from "@llmq/observers";
export type { ModuleWeightDType } from "@llmq/observers";
export { type GptqCalibrated, type GptqOptions, type LayerHessians, GPTQModifier, gptqModule, hessianFold } from "./gptq-modifier.js";
