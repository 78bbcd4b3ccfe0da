export * from "./quantization-args.js";
export * from "./errors.js";
export { TORCH_DTYPES, canonicalTorchDType } from "./torch-dtype.js";
export { decodeQuantizationArgs, defaultZpDType } from "./decode-quantization-args.js";
export { decodeQuantizationScheme } from "./decode-quantization-scheme.js";
export { decodeQuantizationConfig } from "./decode-quantization-config.js";
export { encodeQuantizationArgs, encodeQuantizationScheme, encodeQuantizationConfig } from "./encode-quantization.js";
export { PRESET_NAMES, PRESET_SCHEMES, PRESET_SCHEME_KWARGS, isPresetScheme, presetScheme } from "./preset-schemes.js";
export type { PresetName, PresetScheme } from "./preset-schemes.js";
export { calculateRange } from "./calculate-range.js";
export type { QuantRange } from "./calculate-range.js";
export { calculateQParams, generateGlobalScale, isMxArgs, roundToPowerOf2, roundToQuantizedDType } from "./calculate-qparams.js";
export type { QParams } from "./calculate-qparams.js";
export { castToFp4, castToFp6 } from "./minifloat-rounding.js";
export { quantize, dequantize, fakeQuantize } from "./quantize.js";
export type { QuantizeOptions } from "./quantize.js";
export { rtnFakeQuantizeWeight, rtnQParams, rtnQuantizeWeight, storageDType, weightMinMax } from "./rtn-quantize-weight.js";
export type { RtnQParams, RtnResult } from "./rtn-quantize-weight.js";
export { isIgnored, matchClass, matchName, matchTargets, matchesTarget, pythonRegex, resolveSchemeForModule } from "./match-target.js";
export type { ResolvedScheme } from "./match-target.js";
// llm-compressor recipes (recipe*.ts)
export type { RecipeError } from "./recipe-errors.js";
export { formatRecipeError, invalidRecipe, recipeSyntax, unknownModifier, unsupportedModifier } from "./recipe-errors.js";
export type {
  AWQMapping,
  AWQModifierConfig,
  BaseModifierFields,
  GPTQModifierConfig,
  ModifierConfig,
  ModifierType,
  ObserverOverrides,
  QuantizationMixinFields,
  QuantizationModifierConfig,
  QuIPModifierConfig,
  SmoothQuantMapping,
  SmoothQuantModifierConfig,
  SpinQuantModifierConfig,
  TransformType,
} from "./recipe-modifiers.js";
export { LLM_COMPRESSOR_MODIFIERS, MODIFIER_TYPES, decodeModifier } from "./recipe-modifiers.js";
export type { Recipe, RecipeModifier, RecipeOptions } from "./recipe.js";
export { checkHasQuantizationConfig, decodeRecipe, parseRecipe, parseRecipeMarkdown, quantizationModifiers, recipeFromModifiers } from "./recipe.js";
export { hasQuantizationConfig, needsCalibrationData, resolveQuantizationConfig } from "./recipe-resolve.js";
export { encodeModifierArgs, encodeRecipe, encodeRecipeYaml } from "./recipe-yaml.js";
export { computeDynamicQParams, dynamicMinMax } from "./compute-dynamic-qparams.js";
export { FORMAT_PREDICATES, inferModuleFormat, modelFormat } from "./infer-format.js";
export type { TransformArgs, TransformConfig, TransformLocation, TransformScheme } from "./transform-config.js";
export {
  TRANSFORM_LOCATIONS,
  TRANSFORM_TYPES,
  decodeTransformArgs,
  decodeTransformConfig,
  decodeTransformScheme,
  encodeTransformArgs,
  encodeTransformConfig,
  encodeTransformScheme,
  isOnlineLocation,
  readTorchDType,
} from "./transform-config.js";
export { HQQ_BITS, HQQ_OPT_DEFAULTS, hqqDequantize, hqqQuantize } from "./hqq-quantize.js";
export type { HqqBits, HqqOptParams, HqqQuantizeOptions, HqqQuantized } from "./hqq-quantize.js";
