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
export { gptqQuantizeModule, observeWeightWith, weightObserverName } from "./gptq-quantize-module.js";
export type { GptqModuleOptions, ModuleWeightDType } from "./gptq-quantize-module.js";
