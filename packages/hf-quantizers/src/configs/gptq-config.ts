// transformers' GPTQConfig and AwqConfig (AwqConfig extends GPTQConfig: its own defaults, format/version handling and
// a post_init that replaces GPTQ's checks). to_diff_dict is the mixin's: it diffs nothing.
import { PyFloat, type PyJson, type PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, fail } from "../quantization-config.js";
import { isPyList, isPyNumber, pyIn, pyNumber, pyRepr, pyStr, pyTruthy } from "../py-values.js";

const GPTQ = "GPTQConfig";
const AWQ = "AwqConfig";
export const GPTQ_DATASETS = ["wikitext2", "c4", "c4-new"];
export const AWQ_FORMATS = ["gemm", "gemv", "gemv_fast", "llm-awq"];
export const AWQ_BACKENDS = ["autoawq", "auto", "auto_trainable", "machete", "marlin", "exllama_v2", "exllama_v1", "gemm", "gemm_triton", "gemv", "gemv_fast", "torch_awq", "torch_fused_awq"];

const lower = (cls: string, field: string, v: PyJson): E.Either<ConfigResult, PyJson> =>
  typeof v === "string" ? E.right(v.toLowerCase()) : E.left(fail(cls, field, "AttributeError", `'${typeof v}' object has no attribute 'lower'`));

/** GPTQConfig.__init__'s attributes in order (before post_init). */
const gptqFields = (cls: string, kw: Kwargs, bits: PyJson, group: PyJson, backendIn: PyJson, formatIn: PyJson): E.Either<ConfigResult, Record<string, PyJson>> => {
  const fmt0 = lower(cls, "format", formatIn);
  if (E.isLeft(fmt0)) return fmt0;
  const legacy = kw.take("checkpoint_format", null);
  const fmt = legacy === null ? fmt0 : lower(cls, "checkpoint_format", legacy);
  if (E.isLeft(fmt)) return fmt;
  return E.right({
    quant_method: "gptq",
    bits,
    tokenizer: kw.take("tokenizer", null),
    dataset: kw.take("dataset", null),
    group_size: group,
    damp_percent: kw.take("damp_percent", new PyFloat(0.1)),
    desc_act: kw.take("desc_act", false),
    act_group_aware: kw.take("act_group_aware", true),
    sym: kw.take("sym", true),
    true_sequential: kw.take("true_sequential", true),
    format: fmt.right,
    meta: kw.take("meta", null),
    backend: typeof backendIn === "string" ? backendIn.toLowerCase() : backendIn,
    model_seqlen: kw.take("model_seqlen", null),
    block_name_to_quantize: kw.take("block_name_to_quantize", null),
    module_name_preceding_first_block: kw.take("module_name_preceding_first_block", null),
    batch_size: kw.take("batch_size", 1),
    pad_token_id: kw.take("pad_token_id", null),
    max_input_length: kw.take("max_input_length", null),
    cache_block_outputs: kw.take("cache_block_outputs", true),
    modules_in_block_to_quantize: kw.take("modules_in_block_to_quantize", null),
  });
};

const datasetError = (d: PyJson): ConfigResult | null => {
  if (d === null) return null;
  if (typeof d === "string")
    return GPTQ_DATASETS.includes(d)
      ? null
      : fail(GPTQ, "dataset", "ValueError", `You have entered a string value for dataset. You can only choose between\n                        ['wikitext2','c4','c4-new'], but we found ${d}`);
  if (!isPyList(d))
    return fail(GPTQ, "dataset", "ValueError", `dataset needs to be either a list of string or a value in\n                    ['wikitext2','c4','c4-new'], but we found ${pyStr(d)}`);
  return null;
};

/** GPTQConfig.post_init (mutates act_group_aware and backend as transformers does). */
const gptqPostInit = (f: Record<string, PyJson>): ConfigResult | null => {
  if (!pyIn(f.bits, [2, 3, 4, 8])) return fail(GPTQ, "bits", "ValueError", `Only support quantization to [2,3,4,8] bits but found ${pyStr(f.bits)}`);
  if (!isPyNumber(f.group_size)) return fail(GPTQ, "group_size", "TypeError", `group_size must be an integer, got ${pyRepr(f.group_size)}`);
  if (pyNumber(f.group_size) !== -1 && pyNumber(f.group_size) <= 0) return fail(GPTQ, "group_size", "ValueError", "group_size must be greater than 0 or equal to -1");
  if (!isPyNumber(f.damp_percent)) return fail(GPTQ, "damp_percent", "TypeError", `damp_percent must be a number, got ${pyRepr(f.damp_percent)}`);
  if (!(pyNumber(f.damp_percent) > 0 && pyNumber(f.damp_percent) < 1)) return fail(GPTQ, "damp_percent", "ValueError", "damp_percent must between 0 and 1.");
  const ds = datasetError(f.dataset as PyJson);
  if (ds !== null) return ds;
  if (pyTruthy(f.desc_act) && pyTruthy(f.act_group_aware)) f.act_group_aware = false;
  if (f.backend === null) f.backend = "auto";
  return null;
};

const createGptq = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  if (!kw.has("bits")) return fail(GPTQ, "bits", "TypeError", "GPTQConfig.__init__() missing 1 required positional argument: 'bits'");
  const r = gptqFields(GPTQ, kw, kw.take("bits", null), kw.take("group_size", 128), kw.take("backend", null), kw.take("format", "gptq"));
  if (E.isLeft(r)) return r.left;
  const f = r.right;
  const broken = gptqPostInit(f);
  if (broken !== null) return broken;
  return E.right(configOf(GPTQ, "gptq", { ...f, checkpoint_format: f.format as PyJson }, kw.ignored(), null));
};

export const GPTQConfig: QuantizationConfigClass = { name: GPTQ, quantMethod: "gptq", create: createGptq, fromDict: createGptq };

/** AwqConfig.post_init: "llm-awq" as a backend means the llm-awq format; format and backend must be known. */
const awqPostInit = (f: Record<string, PyJson>): ConfigResult | null => {
  if (f.backend === "llm-awq") {
    f.format = "llm-awq";
    f.backend = "auto";
  }
  if (!pyIn(f.format, AWQ_FORMATS)) return fail(AWQ, "format", "ValueError", `Invalid format '${pyStr(f.format)}'. Must be one of: ${pyRepr(AWQ_FORMATS)}`);
  if (!pyIn(f.backend, AWQ_BACKENDS)) return fail(AWQ, "backend", "ValueError", `Invalid backend '${pyStr(f.backend)}'. Must be one of: ${pyRepr(AWQ_BACKENDS)}`);
  return null;
};

const createAwq = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const version = kw.take("version", null);
  const fmt = version !== null ? lower(AWQ, "version", version) : E.right(kw.take("format", "gemm"));
  if (E.isLeft(fmt)) return fmt.left;
  if (version !== null) kw.take("format", null);
  const backend0 = kw.take("backend", "auto");
  const head = { zero_point: kw.take("zero_point", true), modules_to_not_convert: kw.take("modules_to_not_convert", null) };
  const r = gptqFields(AWQ, kw, kw.take("bits", 4), kw.take("group_size", 128), backend0 === "autoawq" ? "auto" : backend0, fmt.right);
  if (E.isLeft(r)) return r.left;
  const f: Record<string, PyJson> = { ...head, ...r.right, quant_method: "awq" };
  const broken = awqPostInit(f);
  if (broken !== null) return broken;
  return E.right(configOf(AWQ, "awq", { ...f, version: f.format as PyJson }, kw.ignored(), null));
};

export const AwqConfig: QuantizationConfigClass = { name: AWQ, quantMethod: "awq", create: createAwq, fromDict: createAwq };
