export * from "./errors.js";
export * from "./llama-config.js";
export { ropeInvFreq } from "./rope.js";
export {
  type LayerWeights,
  type HeadWeights,
  type LayerHooks,
  type AttentionCache,
  layerLinears,
  linear,
  rmsNorm,
  attentionBlockForward,
  selfAttentionForward,
  mlpBlockForward,
  mlpForward,
  decoderLayerForward,
  decoderLayerTaps,
  embed,
  headForward,
  headLogitRows,
} from "./llama-forward.js";
export { type Architecture, type LayerLinear, type NormMapping, LLAMA_ARCHITECTURE, architectureOf } from "./architecture.js";
export { type WeightSource, memoryWeightSource } from "./weight-source.js";
export { type LinearModule, type ModelHandle, modelFromSource, forwardLogits } from "./model-handle.js";
export { type Llama2cHeader, type ConvertedModel, parseLlama2cHeader, interleavedToRotateHalf, llama2cConfigJson, llama2cTensors, convertLlama2c } from "./llama2c.js";
export { type Llama2cVocab, parseLlama2cTokenizer, llama2cEncode, llama2cMerges, llama2cTokenizerFiles } from "./llama2c-tokenizer.js";
export { type TextTokenizer, loadTokenizer, tokenizerFromJson } from "./tokenizer.js";
export { openModel, readConfigJson } from "./open-model.js";
export { sampleToken } from "./sample-token.js";
export { type SubmoduleRunner, submoduleRunner } from "./submodule-runner.js";
export { type HfDirectoryContents, writeHfDirectory } from "./hf-directory.js";
export { type ExpectedTensor, checkModelTensors, expectedTensors, globalTensors, layerTensors, modelTensorProblems } from "./check-model-tensors.js";
export {
  type ConvertedGguf,
  type GgufModel,
  type GgufOutputDType,
  GGUF_OUTPUT_DTYPES,
  GGUF_SUPPORTED_ARCHITECTURES,
  convertGguf,
  ggufLlamaConfigJson,
  ggufToHfName,
  ggufWeightSource,
  openGgufModel,
} from "./gguf-llama.js";
export { BYTES_TO_UNICODE, GGUF_SUPPORTED_TOKENIZERS, ggufTokenizerFiles } from "./gguf-tokenizer.js";
export { type ConvertedQuantized, type QuantizedSource, convertMsModelSlim, convertQuantized, readMsModelSlimFiles } from "./quantized-convert.js";
