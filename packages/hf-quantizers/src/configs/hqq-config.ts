// transformers' HqqConfig (a wrapper of hqq 0.2.8's BaseQuantizeConfig). from_dict takes quant_config and
// skip_modules verbatim (KeyError when either is missing); the constructor builds weight_quant_params as hqq does.
import type { PyJson, PyJsonObject } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ConfigResult, Kwargs, type QuantizationConfigClass, configOf, fail, lazyDefaults } from "../quantization-config.js";
import { isPyNumber, pyIn, pyNumber } from "../py-values.js";

const CLS = "HqqConfig";
/** hqq Quantizer.SUPPORTED_BITS. */
export const HQQ_SUPPORTED_BITS = [8, 6, 5, 4, 3, 2, 1.58, 1];

/** hqq_base_quant_config(nbits, group_size, view_as_float=…, axis=…) without the deprecated meta quantization. */
const baseQuantizeConfig = (nbits: PyJson, groupSize: PyJson, viewAsFloat: PyJson, axis: PyJson): E.Either<ConfigResult, PyJsonObject> => {
  if (!pyIn(nbits, HQQ_SUPPORTED_BITS)) return E.left(fail(CLS, "nbits", "AssertionError", "nbits value not supported. Check Quantizer.SUPPORTED_BITS."));
  if (groupSize !== null) {
    const g = pyNumber(groupSize);
    if (!isPyNumber(groupSize) || Math.trunc(8 * Math.ceil(g / 8)) !== g)
      return E.left(fail(CLS, "group_size", "AssertionError", "Invalid group_size param: the value should be a multiple of 8."));
  }
  return E.right({
    weight_quant_params: { nbits, channel_wise: true, group_size: groupSize, optimize: true, round_zero: pyNumber(nbits) === 4, axis, view_as_float: viewAsFloat },
    scale_quant_params: null,
    zero_quant_params: null,
    offload_meta: false,
  });
};

const make = (quantConfig: PyJson, skip: PyJson, ignored: ReadonlyArray<string>): ConfigResult =>
  E.right(configOf(CLS, "hqq", { quant_config: quantConfig, quant_method: "hqq", skip_modules: skip }, ignored, defaults));

const create = (kwargs: PyJsonObject): ConfigResult => {
  const kw = new Kwargs(kwargs);
  const axis = kw.take("axis", null) ?? 1;
  if (!pyIn(axis, [0, 1])) return fail(CLS, "axis", "ValueError", "Invalid axis value. Only 0 and 1 are allowed.");
  if (kw.take("dynamic_config", null) !== null)
    return fail(CLS, "dynamic_config", "ValueError", "dynamic_config (a quant_config per layer tag) is not supported by llmq; quantize with one nbits/group_size");
  const qc = baseQuantizeConfig(kw.take("nbits", 4), kw.take("group_size", 64), kw.take("view_as_float", false), axis);
  if (E.isLeft(qc)) return qc.left;
  return make(qc.right, kw.take("skip_modules", ["lm_head"]), kw.ignored());
};

const fromDict = (d: PyJsonObject): ConfigResult => {
  for (const k of ["quant_config", "skip_modules"]) if (!Object.hasOwn(d, k)) return fail(CLS, k, "KeyError", `'${k}'`);
  const kw = new Kwargs(d);
  return make(kw.take("quant_config", null), kw.take("skip_modules", null), kw.ignored());
};

const defaults = lazyDefaults(() => create({}));

/** A user's dict with quant_config is a saved config (from_dict); without it, HqqConfig(**d). */
const fromUserDict = (d: PyJsonObject): ConfigResult => (Object.hasOwn(d, "quant_config") ? fromDict(d) : create(d));

export const HqqConfig: QuantizationConfigClass = { name: CLS, quantMethod: "hqq", create, fromDict, fromUserDict };
