// transformers' TorchAoConfig with torchao 0.18's config_to_dict / config_from_dict for the three AOBaseConfig
// types llmq quantizes: Int4WeightOnlyConfig, Int8WeightOnlyConfig, Int8DynamicActivationInt8WeightConfig. The
// saved form is quant_type = {"default": {"_type", "_version", "_data"}} with every dataclass field in _data.
import type { PyJson, PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, fail } from "../quantization-config.js";
import { isPyDict, pyRepr } from "../py-values.js";

const CLS = "TorchAoConfig";
const PER_ROW: PyJsonObject = { _type: "PerRow", _version: 1, _data: { dim: -1 } };

/** torchao 0.18 defaults (config_to_dict of the default instance), fields in dataclass order. */
export const TORCHAO_CONFIG_DEFAULTS: Readonly<Record<string, PyJsonObject>> = {
  Int4WeightOnlyConfig: {
    group_size: 128,
    set_inductor_config: true,
    int4_packing_format: { _type: "Int4PackingFormat", _data: "PLAIN" },
    int4_choose_qparams_algorithm: { _type: "Int4ChooseQParamsAlgorithm", _data: "TINYGEMM" },
    int4_tile_packed_ntile: 8,
  },
  Int8WeightOnlyConfig: { group_size: null, granularity: PER_ROW, set_inductor_config: true },
  Int8DynamicActivationInt8WeightConfig: {
    act_mapping_type: { _type: "MappingType", _data: "SYMMETRIC" },
    weight_only_decode: false,
    granularity: PER_ROW,
    set_inductor_config: true,
    reduce_range: false,
  },
};

/** config_from_dict → config_to_dict: the stored _data completed with the defaults. */
const aoConfig = (v: PyJson): E.Either<ConfigResult, PyJsonObject> => {
  const bad = (msg: string, type = "ValueError") => E.left(fail(CLS, "quant_type", type, msg));
  if (!isPyDict(v) || typeof v._type !== "string") return bad(`quant_type.default must be a torchao config dict with _type, got ${pyRepr(v)}`);
  const t = v._type;
  const defaults = TORCHAO_CONFIG_DEFAULTS[t];
  if (defaults === undefined) return bad(`${t} is not a torchao config llmq quantizes (llmq: ${Object.keys(TORCHAO_CONFIG_DEFAULTS).join(", ")})`);
  if (v._version !== 2) return bad(`Failed to create instance of ${t}: version ${pyRepr(v._version)} of ${t} is not version 2 (torchao 0.18 removed version 1)`);
  const data = v._data ?? {};
  if (!isPyDict(data)) return bad(`quant_type.default._data must be a dict, got ${pyRepr(data)}`);
  const unknown = Object.keys(data).find((k) => !Object.hasOwn(defaults, k));
  if (unknown !== undefined) return bad(`Failed to create instance of ${t}: ${t}.__init__() got an unexpected keyword argument '${unknown}'`);
  return E.right({ _type: t, _version: 2, _data: { ...defaults, ...data } });
};

const build = (kw: Kwargs, aoDict: PyJsonObject): ConfigResult => {
  const dict: PyJsonObject = {
    quant_method: "torchao",
    quant_type: { default: aoDict },
    modules_to_not_convert: kw.take("modules_to_not_convert", null),
    include_input_output_embeddings: kw.take("include_input_output_embeddings", false),
    untie_embedding_weights: kw.take("untie_embedding_weights", false),
  };
  return E.right(configOf(CLS, "torchao", dict, kw.ignored(), null));
};

/** TorchAoConfig(quant_type=…): from JSON only a string can arrive, which transformers 5.24 refuses. */
const create = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  if (!kw.has("quant_type")) return fail(CLS, "quant_type", "TypeError", "TorchAoConfig.__init__() missing 1 required positional argument: 'quant_type'");
  const qt = kw.take("quant_type", null);
  if (typeof qt === "string")
    return fail(
      CLS,
      "quant_type",
      "ValueError",
      `String-based quantization type '${qt}' is no longer supported. Please use the corresponding Config object directly, e.g. TorchAoConfig(Int4WeightOnlyConfig(group_size=32)) instead of TorchAoConfig('int4_weight_only', group_size=32).`,
    );
  return fail(CLS, "quant_type", "TypeError", `quant_type must be an AOBaseConfig instance, got ${isPyDict(qt) ? "<class 'dict'>" : pyRepr(qt)}`);
};

const fromDict = (d: PyJsonObject): ConfigResult => {
  if (!Object.hasOwn(d, "quant_type")) return fail(CLS, "quant_type", "KeyError", "'quant_type'");
  const kw = new Kwargs(d);
  const qt = kw.take("quant_type", null);
  if (!isPyDict(qt) || Object.keys(qt).length !== 1 || !Object.hasOwn(qt, "default"))
    return fail(CLS, "quant_type", "AssertionError", "Expected only one key 'default' in quant_type dictionary");
  const ao = aoConfig(qt.default as PyJson);
  return E.isLeft(ao) ? ao.left : build(kw, ao.right);
};

export const TorchAoConfig: QuantizationConfigClass = { name: CLS, quantMethod: "torchao", create, fromDict };
