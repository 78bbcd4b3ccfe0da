// transformers' CompressedTensorsConfig: without config_groups / kv_cache_scheme to_dict is {"quant_method":
// "compressed-tensors"}; with them it is compressed-tensors' QuantizationConfig.model_validate(...).model_dump() —
// @llmq/schemes' decodeQuantizationConfig / encodeQuantizationConfig, the pair llmq's compressed-tensors writer uses
// (keys compressed-tensors does not know, like a saved config's version / sparsity_config, are dropped). The loading
// flags (dequantize, run_compressed, use_optimized_inference) are never saved.
import { decodeQuantizationConfig, encodeQuantizationConfig, formatSchemeError } from "@llmq/schemes";
import { PyFloat, type PyJson, type PyJsonObject, toPlainJson } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, fail, lazyDefaults } from "../quantization-config.js";
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
  // transformers 5.24 hands config_groups=None to the model (a kv-only config cannot be built)
  if (!pyTruthy(groups)) return fail(CLS, "config_groups", "ValidationError", PYDANTIC_NONE_GROUPS);
  const input: Record<string, PyJson> = {
    config_groups: groups,
    quant_method: kw.take("quant_method", "compressed-tensors"),
    format: kw.take("format", "dense"),
    quantization_status: kw.take("quantization_status", "initialized"),
    kv_cache_scheme: kv,
    global_compression_ratio: kw.take("global_compression_ratio", null),
    ignore: kw.take("ignore", null),
    ...Object.fromEntries(kw.ignored().map((k) => [k, kwargs[k] as PyJson])),
  };
  const c = decodeQuantizationConfig(toPlainJson(input));
  if (E.isLeft(c)) return fail(CLS, "config_groups", "ValidationError", formatSchemeError(c.left));
  const dump = encodeQuantizationConfig(c.right) as Record<string, PyJson>;
  const ratio = dump.global_compression_ratio;
  // pydantic keeps an explicit ignore=None (transformers passes None when the dict has no ignore); llmq's decoder reads it as []
  const ignore = input.ignore === null ? null : dump.ignore!;
  return E.right(configOf(CLS, "compressed-tensors", { ...dump, global_compression_ratio: typeof ratio === "number" ? new PyFloat(ratio) : ratio ?? null, ignore }, [], defaults));
};

const PYDANTIC_NONE_GROUPS =
  "1 validation error for QuantizationConfig\nconfig_groups\n  Input should be a valid dictionary [type=dict_type, input_value=None, input_type=NoneType]\n    For further information visit https://errors.pydantic.dev/2.14/v/dict_type";

/** from_dict unwraps a nested "quantization_config". */
const fromDict = (d: PyJsonObject): ConfigResult => {
  const inner = d.quantization_config;
  return create(isPyDict(inner) ? inner : d);
};

const defaults = lazyDefaults(() => create({}));

export const CompressedTensorsConfig: QuantizationConfigClass = { name: CLS, quantMethod: "compressed-tensors", create, fromDict };
