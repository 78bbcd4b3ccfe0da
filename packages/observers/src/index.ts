export type { ObserverError } from "./errors.js";
export {
  formatObserverError,
  invalidObserverKwarg,
  noObservations,
  nonFiniteTensor,
  observedShape,
  qparamsError,
  unknownObserver,
  unsupportedStrategy,
} from "./errors.js";
export type { CalibrationRows, ObservedKind } from "./flatten-for-calibration.js";
export { flattenForCalibration } from "./flatten-for-calibration.js";
export type { MinMaxStatistics } from "./statistics.js";
export { checkFinite, lerpStatistics, rowMinMax, widen } from "./statistics.js";
export type { Observer, ObserverFactory, ObserverOptions, ObserverSpec, ObserverState } from "./observer.js";
export { makeObserver } from "./observer.js";
export type { QParams } from "./qparams-from-statistics.js";
export { fusedGlobalScale, generateGParam, qparamsFromStatistics } from "./qparams-from-statistics.js";
export { memorylessMinMax, movingAverageMinMax, staticMinMax } from "./min-max.js";
export type { MseSettings } from "./mse.js";
export { MSE_DEFAULTS, NVFP4_EXPANDED_MSE_DEFAULTS, gridSearchMse, memorylessMse, movingAverageMse, nvfp4ExpandedMse, rowErrors } from "./mse.js";
export type { HistogramSettings, HistogramState, MixedState } from "./histogram.js";
export { MIXED_RANGE_THRESHOLD, histogram, histogramStep, minMaxOrHistogram, nonLinearParamSearch } from "./histogram.js";
export type { IMatrixSettings, ImportanceState } from "./imatrix.js";
export { IMATRIX_DEFAULTS, NVFP4_EXPANDED_IMATRIX_DEFAULTS, imatrixMse, importanceStep, nvfp4ExpandedImatrix } from "./imatrix.js";
export type { ObserverName } from "./registry.js";
export { OBSERVERS, OBSERVER_NAMES, createObserver, resolveObserverName } from "./registry.js";
export { observe, observeStates } from "./observe.js";
export type { ModuleWeightDType, ScaleDType, WeightQParams } from "./observe-weight.js";
export { observeWeightWith, weightObserverName } from "./observe-weight.js";
// the modifier contract (modifier*.ts) and llm-compressor's QuantizationModifier
export type {
  ArchitectureInfo,
  AttentionShape,
  Calibration,
  EpochContext,
  EpochEnd,
  LayerState,
  ModelInfo,
  OnlineTransform,
  RotationInfo,
  ModelPlan,
  Modifier,
  ModifierError,
  ModifierEvent,
  ModuleInfo,
  QuantizedModule,
  QuantizedWeight,
  SubmoduleRunner,
  Tap,
  TransformRecord,
} from "./modifier.js";
export { formatModifierError, modifierError, reducer, withQuantized, withTensors } from "./modifier.js";
export { type CombinedModifier, combineModifiers } from "./combine-modifiers.js";
export type { LifecycleAction, LifecycleError, LifecycleState, ModifierRun } from "./modifier-lifecycle.js";
export {
  activeAt,
  calibrationEpochEnd,
  calibrationEpochStart,
  created,
  createRun,
  endRun,
  expectRun,
  finalizeRun,
  formatLifecycleError,
  initializeAndStart,
  initializeRun,
  sequentialEpochEnd,
  startRun,
  transition,
} from "./modifier-lifecycle.js";
export type { PlannedModule, QuantizationPlan } from "./plan-quantization.js";
export { checkWeightFits, planQuantization } from "./plan-quantization.js";
export { activationQParams, activationScaleDType, fusedGlobalScales, inputObserver, rtnModule } from "./rtn-module.js";
export type { ObservedInputs, QuantizationMixinState } from "./quantization-modifier.js";
export {
  QuantizationModifier,
  emptyFold,
  initializeQuantizationMixin,
  inputCalibration,
  layerFusedScales,
  layerModules,
  layerWeight,
  moduleActivationParams,
  noObservedInputs,
  quantizeLayer,
} from "./quantization-modifier.js";
export { type HqqModifierOptions, HqqModifier } from "./hqq-modifier.js";
export { type MsRangeStats, MsRangeParamModifier, msAutoDisableNames, msRangeParam, msRangeStatsStep } from "./ms-range-param.js";
