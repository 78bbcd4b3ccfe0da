// The quantize-on-load path of from_pretrained(quantization_config=…) followed by save_pretrained, on a dense
// checkpoint's tensors: validate_environment, update_dtype, preprocess (which linears convert), each weight cast to
// the load dtype and quantized, every other tensor cast to the load dtype, config.json's quantization_config.
import { type PyJsonObject, type TorchFloat, roundTo } from "@llmq/serialization";
import { Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, hfQuantizeFailed, unsupportedHfQuantization } from "./errors.js";
import { type HfQuantizationConfig, toDict } from "./quantization-config.js";
import { type ModelFacts, type Quantizer, parameterOnlySkipWarnings, preprocessModel } from "./quantizer.js";

export interface QuantizeOnLoadResult {
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** config.json's quantization_config. */
  readonly quantizationConfig: PyJsonObject;
  readonly dtype: TorchFloat;
  readonly converted: ReadonlyArray<string>;
  readonly kept: ReadonlyArray<string>;
  readonly warnings: ReadonlyArray<string>;
  /** model.safetensors' __metadata__ (the method's, then "format": "pt"). */
  readonly metadata: Readonly<Record<string, string>>;
}

export const LLMQ_DTYPE: Readonly<Record<TorchFloat, "f32" | "f16" | "bf16">> = { float32: "f32", float16: "f16", bfloat16: "bf16" };

/** A tensor's values as f32, rounded to the load dtype (what the module holds before it quantizes). */
const loadValues = (t: Tensor, dtype: TorchFloat): Tensor => new Tensor("f32", t.shape, (cast(t, "f32").data as Float32Array).map(roundTo(dtype)));

const isFloat = (t: Tensor): boolean => t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16" || t.dtype === "f64";

/** Checks run before any tensor is touched: flags, serializability, the config's own environment rules. */
export const checkQuantizeOnLoad = (q: Quantizer, c: HfQuantizationConfig): E.Either<HfQuantizerError, ReadonlyArray<string>> => {
  if (!q.isSerializable) return E.left(unsupportedHfQuantization(q.name, q.notSerializable ?? `transformers cannot save ${q.name} checkpoints`));
  const env = q.validateEnvironment(c);
  if (E.isLeft(env)) return env;
  if (q.requiresCalibration) return E.left(unsupportedHfQuantization(q.name, `${q.name} requires calibration: it cannot quantize a model while loading it`));
  if (q.quantizeLinear === undefined) return E.left(unsupportedHfQuantization(q.name, `${q.name} has no quantize-on-load step`));
  const ignored = c.ignored.map((k) => `${c.className} ignores ${JSON.stringify(k)} (transformers drops it too)`);
  return E.right([...ignored, ...env.right]);
};

const metadataOf = (q: Quantizer, c: HfQuantizationConfig, facts: ModelFacts, shapes: ReadonlyMap<string, ReadonlyArray<number>>, dtype: TorchFloat) => {
  if (q.safetensorsMetadata === undefined) return E.right({ format: "pt" });
  if (facts.stateDict === undefined) return E.left(hfQuantizeFailed(q.name, "its safetensors metadata lists the model's state dict, which the model facts do not give"));
  return q.safetensorsMetadata(c, facts.stateDict, shapes, dtype);
};

/** One warning per reason: "<first module> (+n more) stay dense: <reason>". */
const denseWarnings = (dense: ReadonlyMap<string, string | null>): ReadonlyArray<string> => {
  const byReason = new Map<string, string[]>();
  for (const [m, why] of dense) byReason.set(why!, [...(byReason.get(why!) ?? []), m]);
  return [...byReason].map(([why, ms]) => `${ms[0]}${ms.length > 1 ? ` (+${ms.length - 1} more)` : ""} ${ms.length > 1 ? "stay" : "stays"} dense: ${why}`);
};

export const quantizeOnLoad = (
  q: Quantizer,
  c: HfQuantizationConfig,
  tensors: ReadonlyMap<string, Tensor>,
  facts: ModelFacts,
  requestedDtype: TorchFloat | null,
): E.Either<HfQuantizerError, QuantizeOnLoadResult> => {
  const checked = checkQuantizeOnLoad(q, c);
  if (E.isLeft(checked)) return checked;
  const dtype = q.updateDtype(c, requestedDtype);
  const split = preprocessModel(q, c, facts);
  // weights the quantize step leaves as they are (torchao's int4 on in_features % group_size != 0) stay dense
  const dense = new Map(split.convert.map((m) => [m, q.keepsDense?.(c, tensors.get(`${m}.weight`)?.shape ?? []) ?? null] as const).filter(([, why]) => why !== null));
  const [convert, keep] = [split.convert.filter((m) => !dense.has(m)), [...split.keep, ...dense.keys()]];
  const converting = new Set(convert.map((m) => `${m}.weight`));
  const shapes = new Map<string, ReadonlyArray<number>>();
  const out = new Map<string, Tensor>();
  for (const [name, t] of tensors) {
    if (converting.has(name)) {
      shapes.set(name, t.shape);
      if (t.rank !== 2) return E.left(hfQuantizeFailed(q.name, `${name} has shape [${t.shape.join(", ")}], not a 2-D linear weight`));
      const module = name.slice(0, -".weight".length);
      const parts = q.quantizeLinear!(c, loadValues(t, dtype), dtype);
      // a quantizer judges one weight; the message names the module it belongs to
      if (E.isLeft(parts)) return E.left(parts.left._tag === "HfQuantizeFailed" ? hfQuantizeFailed(q.name, `${module}: ${parts.left.message}`) : parts.left);
      for (const [rel, p] of parts.right) out.set(`${module}.${rel}`, p);
    } else out.set(name, isFloat(t) && t.dtype !== LLMQ_DTYPE[dtype] ? cast(t, LLMQ_DTYPE[dtype]) : t);
  }
  const metadata = metadataOf(q, c, facts, shapes, dtype);
  if (E.isLeft(metadata)) return metadata;
  const savedConfig = q.savedConfig?.(c) ?? toDict(c);
  // update_dtype overriding the user's dtype (FbgemmFp8 forces bfloat16): transformers warns, so does llmq.
  const overridden = requestedDtype !== null && requestedDtype !== dtype ? [`${q.name} loads and saves the model in ${dtype}: the requested ${requestedDtype} is overridden (update_dtype)`] : [];
  const warnings = [...checked.right, ...parameterOnlySkipWarnings(q, c, facts), ...denseWarnings(dense), ...overridden];
  return E.right({ tensors: out, quantizationConfig: savedConfig, dtype, converted: convert, kept: keep, warnings, metadata: metadata.right });
};
