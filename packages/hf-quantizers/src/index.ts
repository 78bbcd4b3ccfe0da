export { type HfQuantizerError, type HfQuantizerErrorTag, duplicateRegistration, formatHfQuantizerError, hfQuantizeFailed, invalidHfConfig, unknownQuantMethod, unsupportedHfQuantization } from "./errors.js";
export { isPyDict, isPyFloat, isPyInt, isPyList, isPyNumber, pyEqual, pyIn, pyNumber, pyRepr, pyStr, pyTruthy } from "./py-values.js";
export { type ConfigResult, type HfQuantizationConfig, Kwargs, type QuantizationConfigClass, configOf, fail, lazyDefaults, toDict, toDiffDict, toJsonString } from "./quantization-config.js";
export { BitsAndBytesConfig } from "./configs/bits-and-bytes-config.js";
export { AWQ_BACKENDS, AWQ_FORMATS, AwqConfig, GPTQ_DATASETS, GPTQConfig } from "./configs/gptq-config.js";
export { HQQ_SUPPORTED_BITS, HqqConfig } from "./configs/hqq-config.js";
export { AqlmConfig, EetqConfig, FbgemmFp8Config, QUANTO_ACTIVATIONS, QUANTO_WEIGHTS, QuantoConfig } from "./configs/weight-dtype-configs.js";
export { TORCHAO_CONFIG_DEFAULTS, TorchAoConfig } from "./configs/torchao-config.js";
export { CompressedTensorsConfig } from "./configs/compressed-tensors-config.js";
export {
  TRANSFORMERS_QUANT_METHODS,
  autoQuantizationConfig,
  configFromUserDict,
  configMethodOf,
  quantizationConfigClass,
  quantizationConfigMethods,
  registerQuantizationConfig,
} from "./config-registry.js";
export { type ModelFacts, type QuantizedTensors, type Quantizer, defaultKeysToNotConvert, modulesToNotConvert, parameterOnlySkipWarnings, preprocessModel, shouldConvertModule } from "./quantizer.js";
export { autoQuantizer, quantizerNameOf, quantizerNames, registerQuantizer } from "./quantizer-registry.js";
export { type QuantizeOnLoadResult, checkQuantizeOnLoad, quantizeOnLoad } from "./quantize-on-load.js";
export { BNB_4BIT_BLOCKSIZE, Bnb4BitQuantizer, Bnb8BitQuantizer } from "./quantizers/bnb-quantizers.js";
export { DECLARED_QUANTIZERS } from "./quantizers/declared-quantizers.js";
export { HqqQuantizer, hqqParamsOf } from "./quantizers/hqq-quantizer.js";
export { EetqQuantizer } from "./quantizers/eetq-quantizer.js";
export { type UnsignedLinear, awqModule, awqPackable, gptqModule, gptqPackable, gptqV1LostZeros, unsignedLinear } from "./gptq-awq-writers.js";
export { type TorchAoActivation, type TorchAoInt8Params, type TorchAoParams, TorchAoQuantizer, torchaoFakeQuantizeInput, torchaoInt8Weight, torchaoMetadata, torchaoParamsOf } from "./quantizers/torchao-quantizer.js";
export { type TorchAoInt4Params, torchaoInt4Weight } from "./quantizers/torchao-int4.js";
export { FbgemmFp8Quantizer, fbgemmFakeQuantizeInput, fbgemmQuantizeFp8PerRow } from "./quantizers/fbgemm-fp8-quantizer.js";
