// transformers' BitsAndBytesConfig (utils/quantization_config.py, 5.24): __init__, the load_in_* setters and
// post_init, in their order, so the first broken rule is the one transformers reports.
import { PyFloat, type PyJson, type PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, fail, lazyDefaults } from "../quantization-config.js";
import { isPyFloat, isPyList, pyTruthy } from "../py-values.js";

const CLS = "BitsAndBytesConfig";
const DEFAULT_THRESHOLD = new PyFloat(6.0);

/** torch dtype attribute names (and their aliases) → str(dtype).split(".")[1]. */
const TORCH_DTYPES: Readonly<Record<string, string>> = {
  float32: "float32",
  float: "float32",
  float64: "float64",
  double: "float64",
  float16: "float16",
  half: "float16",
  bfloat16: "bfloat16",
  uint8: "uint8",
  int8: "int8",
  int16: "int16",
  short: "int16",
  int32: "int32",
  int: "int32",
  int64: "int64",
  long: "int64",
  bool: "bool",
  float8_e4m3fn: "float8_e4m3fn",
  float8_e5m2: "float8_e5m2",
};
const STORAGE_DTYPES = ["float16", "float32", "int8", "uint8", "float64", "bfloat16"];

/** getattr(torch, name) for a dtype field: the canonical name, or the error transformers' getattr would raise. */
const torchDtype = (field: string, v: PyJson, fallback: string, allowed: ReadonlyArray<string> | null): E.Either<ConfigResult, string> => {
  if (v === null) return E.right(fallback);
  if (typeof v !== "string") return E.left(fail(CLS, field, "ValueError", `${field} must be a string or a torch.dtype`));
  if (allowed !== null && !allowed.includes(v))
    return E.left(
      fail(CLS, field, "ValueError", `\`${field}\` must be a valid string (one of ${allowed.map((s) => `'${s}'`).join(", ")}) `),
    );
  const name = TORCH_DTYPES[v];
  return name === undefined ? E.left(fail(CLS, field, "AttributeError", `module 'torch' has no attribute '${v}'`)) : E.right(name);
};

const BOOLEAN_FIELDS = ["llm_int8_enable_fp32_cpu_offload", "llm_int8_has_fp16_weight"] as const;

/** post_init's type checks, first failure wins. */
const postInit = (f: Readonly<Record<string, PyJson>>): ConfigResult | null => {
  for (const k of ["load_in_4bit", "load_in_8bit"]) if (typeof f[k] !== "boolean") return fail(CLS, k, "TypeError", `${k} must be a boolean`);
  if (!isPyFloat(f.llm_int8_threshold)) return fail(CLS, "llm_int8_threshold", "TypeError", "llm_int8_threshold must be a float");
  if (f.llm_int8_skip_modules !== null && !isPyList(f.llm_int8_skip_modules))
    return fail(CLS, "llm_int8_skip_modules", "TypeError", "llm_int8_skip_modules must be a list of strings");
  for (const k of BOOLEAN_FIELDS) if (typeof f[k] !== "boolean") return fail(CLS, k, "TypeError", `${k} must be a boolean`);
  if (typeof f.bnb_4bit_quant_type !== "string") return fail(CLS, "bnb_4bit_quant_type", "TypeError", "bnb_4bit_quant_type must be a string");
  if (typeof f.bnb_4bit_use_double_quant !== "boolean") return fail(CLS, "bnb_4bit_use_double_quant", "TypeError", "bnb_4bit_use_double_quant must be a boolean");
  return null;
};

const create = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const load8 = kw.take("load_in_8bit", false);
  const load4 = kw.take("load_in_4bit", false);
  if (pyTruthy(load4) && pyTruthy(load8))
    return fail(CLS, "load_in_4bit", "ValueError", "load_in_4bit and load_in_8bit are both True, but only one can be used at the same time");
  const f: Record<string, PyJson> = {
    load_in_4bit: load4,
    load_in_8bit: load8,
    llm_int8_threshold: kw.take("llm_int8_threshold", DEFAULT_THRESHOLD),
    llm_int8_skip_modules: kw.take("llm_int8_skip_modules", null),
    llm_int8_enable_fp32_cpu_offload: kw.take("llm_int8_enable_fp32_cpu_offload", false),
    llm_int8_has_fp16_weight: kw.take("llm_int8_has_fp16_weight", false),
    bnb_4bit_quant_type: kw.take("bnb_4bit_quant_type", "fp4"),
    bnb_4bit_use_double_quant: kw.take("bnb_4bit_use_double_quant", false),
  };
  const compute = torchDtype("bnb_4bit_compute_dtype", kw.take("bnb_4bit_compute_dtype", null), "float32", null);
  if (E.isLeft(compute)) return compute.left;
  const storage = torchDtype("bnb_4bit_quant_storage", kw.take("bnb_4bit_quant_storage", null), "uint8", STORAGE_DTYPES);
  if (E.isLeft(storage)) return storage.left;
  const broken = postInit(f);
  if (broken !== null) return broken;
  const dict: PyJsonObject = {
    quant_method: "bitsandbytes",
    _load_in_8bit: f.load_in_8bit as PyJson,
    _load_in_4bit: f.load_in_4bit as PyJson,
    llm_int8_threshold: f.llm_int8_threshold as PyJson,
    llm_int8_skip_modules: f.llm_int8_skip_modules as PyJson,
    llm_int8_enable_fp32_cpu_offload: f.llm_int8_enable_fp32_cpu_offload as PyJson,
    llm_int8_has_fp16_weight: f.llm_int8_has_fp16_weight as PyJson,
    bnb_4bit_quant_type: f.bnb_4bit_quant_type as PyJson,
    bnb_4bit_use_double_quant: f.bnb_4bit_use_double_quant as PyJson,
    bnb_4bit_compute_dtype: compute.right,
    bnb_4bit_quant_storage: storage.right,
    load_in_4bit: f.load_in_4bit as PyJson,
    load_in_8bit: f.load_in_8bit as PyJson,
  };
  return E.right(configOf(CLS, "bitsandbytes", dict, kw.ignored(["_load_in_4bit", "_load_in_8bit"]), defaults));
};

const defaults = lazyDefaults(() => create({}));

export const BitsAndBytesConfig: QuantizationConfigClass = { name: CLS, quantMethod: "bitsandbytes", create, fromDict: create };
