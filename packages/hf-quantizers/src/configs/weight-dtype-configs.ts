// transformers' QuantoConfig, EetqConfig, FbgemmFp8Config and AqlmConfig: plain attributes, their post_init checks,
// and the mixin's to_diff_dict (which diffs nothing).
import { PyFloat, type PyJson, type PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, fail } from "../quantization-config.js";
import { isPyInt, isPyList, pyIn, pyRepr, pyStr } from "../py-values.js";

export const QUANTO_WEIGHTS: ReadonlyArray<PyJson> = ["float8", "int8", "int4", "int2"];
export const QUANTO_ACTIVATIONS: ReadonlyArray<PyJson> = [null, "int8", "float8"];

const quanto = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const dict = { quant_method: "quanto", weights: kw.take("weights", "int8"), activations: kw.take("activations", null), modules_to_not_convert: kw.take("modules_to_not_convert", null) };
  if (!pyIn(dict.weights, QUANTO_WEIGHTS)) return fail("QuantoConfig", "weights", "ValueError", `Only support weights in ${pyRepr(QUANTO_WEIGHTS)} but found ${pyStr(dict.weights)}`);
  // transformers' message says "weights" for the activations check too; the field is named here.
  if (!pyIn(dict.activations, QUANTO_ACTIVATIONS))
    return fail("QuantoConfig", "activations", "ValueError", `Only support weights in ${pyRepr(QUANTO_ACTIVATIONS)} but found ${pyStr(dict.activations)}`);
  return E.right(configOf("QuantoConfig", "quanto", dict, kw.ignored(), null));
};

export const QuantoConfig: QuantizationConfigClass = { name: "QuantoConfig", quantMethod: "quanto", create: quanto, fromDict: quanto };

const eetq = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const dict = { quant_method: "eetq", weights: kw.take("weights", "int8"), modules_to_not_convert: kw.take("modules_to_not_convert", null) };
  if (!pyIn(dict.weights, ["int8"])) return fail("EetqConfig", "weights", "ValueError", `Only support weights in ['int8'] but found ${pyStr(dict.weights)}`);
  return E.right(configOf("EetqConfig", "eetq", dict, kw.ignored(), null));
};

export const EetqConfig: QuantizationConfigClass = { name: "EetqConfig", quantMethod: "eetq", create: eetq, fromDict: eetq };

/** FbgemmFp8Config has no post_init: activation_scale_ub is checked by its quantizer. */
const fbgemm = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const dict = {
    quant_method: "fbgemm_fp8",
    activation_scale_ub: kw.take("activation_scale_ub", new PyFloat(1200.0)),
    modules_to_not_convert: kw.take("modules_to_not_convert", null),
  };
  return E.right(configOf("FbgemmFp8Config", "fbgemm_fp8", dict, kw.ignored(), null));
};

export const FbgemmFp8Config: QuantizationConfigClass = { name: "FbgemmFp8Config", quantMethod: "fbgemm_fp8", create: fbgemm, fromDict: fbgemm };

const AQLM_INTS = ["in_group_size", "out_group_size", "num_codebooks", "nbits_per_codebook"] as const;

const aqlm = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const dict: Record<string, PyJson> = {
    quant_method: "aqlm",
    in_group_size: kw.take("in_group_size", 8),
    out_group_size: kw.take("out_group_size", 1),
    num_codebooks: kw.take("num_codebooks", 1),
    nbits_per_codebook: kw.take("nbits_per_codebook", 16),
    linear_weights_not_to_quantize: kw.take("linear_weights_not_to_quantize", null),
  };
  for (const k of AQLM_INTS) if (!isPyInt(dict[k])) return fail("AqlmConfig", k, "TypeError", `${k} must be an int`);
  const skip = dict.linear_weights_not_to_quantize;
  if (skip !== null && !isPyList(skip)) return fail("AqlmConfig", "linear_weights_not_to_quantize", "ValueError", "linear_weights_not_to_quantize must be a list of strings");
  dict.linear_weights_not_to_quantize = skip ?? [];
  return E.right(configOf("AqlmConfig", "aqlm", dict, kw.ignored(), null));
};

export const AqlmConfig: QuantizationConfigClass = { name: "AqlmConfig", quantMethod: "aqlm", create: aqlm, fromDict: aqlm };
