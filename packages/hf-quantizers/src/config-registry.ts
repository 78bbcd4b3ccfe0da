// transformers' AutoQuantizationConfig / AUTO_QUANTIZATION_CONFIG_MAPPING and register_quantization_config: a dict
// picks its class by quant_method, except that a truthy load_in_4bit / load_in_8bit means bitsandbytes whatever
// quant_method says. Third-party methods register a class under a new name; a taken name is refused.
import type { PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, duplicateRegistration, unknownQuantMethod } from "./errors.js";
import type { ConfigResult, QuantizationConfigClass } from "./quantization-config.js";
import { pyTruthy } from "./py-values.js";
import { BitsAndBytesConfig } from "./configs/bits-and-bytes-config.js";
import { AwqConfig, GPTQConfig } from "./configs/gptq-config.js";
import { HqqConfig } from "./configs/hqq-config.js";
import { AqlmConfig, EetqConfig, FbgemmFp8Config, QuantoConfig } from "./configs/weight-dtype-configs.js";
import { TorchAoConfig } from "./configs/torchao-config.js";
import { CompressedTensorsConfig } from "./configs/compressed-tensors-config.js";

/** transformers 5.24's AUTO_QUANTIZER_MAPPING keys, to say when a method is transformers' but not llmq's. */
export const TRANSFORMERS_QUANT_METHODS: ReadonlyArray<string> = [
  "awq", "bitsandbytes_4bit", "bitsandbytes_8bit", "gptq", "aqlm", "quanto", "quark", "fouroversix", "fp_quant", "eetq", "higgs", "hqq",
  "compressed-tensors", "fbgemm_fp8", "torchao", "bitnet", "vptq", "spqr", "fp8", "gguf", "nvfp4", "mxfp8", "auto-round", "mxfp4", "metal", "sinq", "gemma",
];

const BUILTIN_CONFIGS: ReadonlyArray<readonly [string, QuantizationConfigClass]> = [
  ["awq", AwqConfig],
  ["bitsandbytes_4bit", BitsAndBytesConfig],
  ["bitsandbytes_8bit", BitsAndBytesConfig],
  ["eetq", EetqConfig],
  ["gptq", GPTQConfig],
  ["aqlm", AqlmConfig],
  ["quanto", QuantoConfig],
  ["hqq", HqqConfig],
  ["compressed-tensors", CompressedTensorsConfig],
  ["fbgemm_fp8", FbgemmFp8Config],
  ["torchao", TorchAoConfig],
];

const configClasses = new Map<string, QuantizationConfigClass>(BUILTIN_CONFIGS);

/** register_quantization_config(method): a name already taken (built in or registered) is refused. */
export const registerQuantizationConfig = (method: string, cls: QuantizationConfigClass): E.Either<HfQuantizerError, void> => {
  if (configClasses.has(method)) return E.left(duplicateRegistration("config", method));
  configClasses.set(method, cls);
  return E.right(undefined);
};

export const quantizationConfigMethods = (): ReadonlyArray<string> => [...configClasses.keys()];

/** AutoQuantizationConfig.from_dict's choice of registry key: bitsandbytes flags first, then quant_method. */
export const configMethodOf = (d: PyJsonObject): E.Either<HfQuantizerError, string> => {
  if (pyTruthy(d.load_in_8bit) || pyTruthy(d.load_in_4bit)) return E.right(pyTruthy(d.load_in_4bit) ? "bitsandbytes_4bit" : "bitsandbytes_8bit");
  const m = d.quant_method;
  if (m === undefined || m === null)
    return E.left(
      unknownQuantMethod(null, quantizationConfigMethods(), "The model's quantization config from the arguments has no `quant_method` attribute. Make sure that the model has been correctly quantized"),
    );
  const method = String(m);
  if (configClasses.has(method)) return E.right(method);
  const known = quantizationConfigMethods();
  const theirs = TRANSFORMERS_QUANT_METHODS.includes(method) ? " (transformers knows it; llmq has no config class for it)" : "";
  return E.left(unknownQuantMethod(method, known, `Unknown quantization type, got ${method}${theirs} - supported types are: [${known.map((k) => `'${k}'`).join(", ")}]`));
};

/** The config class registered for a method name. */
export const quantizationConfigClass = (method: string): QuantizationConfigClass | undefined => configClasses.get(method);

/** AutoQuantizationConfig.from_dict(d). */
export const autoQuantizationConfig = (d: PyJsonObject): ConfigResult =>
  E.chain((m: string) => (configClasses.get(m) as QuantizationConfigClass).fromDict(d))(configMethodOf(d));

/** A dict as a user writes it for `llmq quantize --hf-config`: from_dict, or the class's own reading of a user dict. */
export const configFromUserDict = (d: PyJsonObject): ConfigResult =>
  E.chain((m: string) => {
    const cls = configClasses.get(m) as QuantizationConfigClass;
    return (cls.fromUserDict ?? cls.fromDict)(d);
  })(configMethodOf(d));
