// transformers' CompressedTensorsConfig, the part that does not go through compressed-tensors' pydantic model:
// without config_groups / kv_cache_scheme to_dict is {"quant_method": "compressed-tensors"} and the loading flags
// (dequantize, run_compressed, use_optimized_inference) are not saved. With them, transformers saves
// QuantizationConfig.model_dump(); llmq keeps the dict as given (its own compressed-tensors writer makes that
// dict), which differs from model_dump by the defaults pydantic fills in.
import type { PyJson, PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, lazyDefaults } from "../quantization-config.js";
import { isPyDict, pyTruthy } from "../py-values.js";

const CLS = "CompressedTensorsConfig";

const create = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  for (const k of ["run_compressed", "dequantize", "use_optimized_inference"]) kw.take(k, null);
  const groups = kw.take("config_groups", null);
  const kv = kw.take("kv_cache_scheme", null);
  if (!pyTruthy(groups) && !pyTruthy(kv)) {
    // Without a scheme transformers builds no QuantizationConfig: every other key is dropped.
    for (const k of ["format", "quantization_status", "global_compression_ratio", "ignore"]) kw.take(k, null);
    return E.right(configOf(CLS, "compressed-tensors", { quant_method: "compressed-tensors" }, kw.ignored(), defaults));
  }
  const dict: Record<string, PyJson> = { ...kwargs };
  for (const k of ["run_compressed", "dequantize", "use_optimized_inference"]) delete dict[k];
  return E.right(configOf(CLS, "compressed-tensors", { ...dict, quant_method: "compressed-tensors" }, [], defaults));
};

/** from_dict unwraps a nested "quantization_config". */
const fromDict = (d: PyJsonObject): ConfigResult => {
  const inner = d.quantization_config;
  return create(isPyDict(inner) ? inner : d);
};

const defaults = lazyDefaults(() => create({}));

export const CompressedTensorsConfig: QuantizationConfigClass = { name: CLS, quantMethod: "compressed-tensors", create, fromDict };
