import { defaultZpDType } from "./decode-quantization-args.js";
import type { QuantizationArgs, QuantizationConfig, QuantizationScheme } from "./quantization-args.js";

// ----- encoding -----
// The JSON compressed-tensors 0.20.0 writes with `model_dump()` (key order = field declaration order; the
// QuantizationArgs `_serialize` wrap drops null actorder/block_structure/scale_dtype, empty observer_kwargs, and
// observer/zp_dtype unless set explicitly; zp_dtype is null whenever symmetric).

// CT 0.20 never fills `observer` itself, so a non-null observer was always set explicitly (constructor or attribute
// assignment, which pydantic adds to fields_set): it is written whenever non-null, even on args copied with a spread.
// `zp_dtype` IS filled in by the validator, so only an explicit one is written.
const zpExplicit = (a: QuantizationArgs): boolean =>
  a.fields_set !== undefined ? a.fields_set.includes("zp_dtype") : a.zp_dtype !== defaultZpDType(a.type, a.num_bits);

export const encodeQuantizationArgs = (a: QuantizationArgs): Record<string, unknown> => {
  const o: Record<string, unknown> = {
    num_bits: a.num_bits,
    type: a.type,
    symmetric: a.symmetric,
    group_size: a.group_size,
    strategy: a.strategy,
  };
  if (a.block_structure !== null) o.block_structure = [a.block_structure[0], a.block_structure[1]];
  o.dynamic = a.dynamic;
  if (a.actorder !== null) o.actorder = a.actorder;
  if (a.scale_dtype !== null) o.scale_dtype = a.scale_dtype;
  const zp = a.symmetric ? null : a.zp_dtype;
  if (zp !== null && zpExplicit(a)) o.zp_dtype = zp;
  if (a.observer !== null) o.observer = a.observer;
  if (Object.keys(a.observer_kwargs).length > 0) o.observer_kwargs = { ...a.observer_kwargs };
  return o;
};

const argsOrNull = (a: QuantizationArgs | null): Record<string, unknown> | null => (a === null ? null : encodeQuantizationArgs(a));

export const encodeQuantizationScheme = (s: QuantizationScheme): Record<string, unknown> => ({
  targets: [...s.targets],
  weights: argsOrNull(s.weights),
  input_activations: argsOrNull(s.input_activations),
  output_activations: argsOrNull(s.output_activations),
  format: s.format,
});

/** `QuantizationConfig.model_dump()` (quant_method included; the config.json writer adds version etc. itself). */
export const encodeQuantizationConfig = (c: QuantizationConfig): Record<string, unknown> => ({
  config_groups: Object.fromEntries(Object.entries(c.config_groups).map(([k, s]) => [k, encodeQuantizationScheme(s)])),
  quant_method: c.quant_method,
  kv_cache_scheme: argsOrNull(c.kv_cache_scheme),
  format: c.format,
  quantization_status: c.quantization_status,
  global_compression_ratio: c.global_compression_ratio,
  ignore: [...c.ignore],
  moe_sparsity_config: c.moe_sparsity_config ?? null,
});
