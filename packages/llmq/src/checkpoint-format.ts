import type { QuantizedModule } from "@llmq/observers";
import {
  type QuantizationArgs,
  type QuantizationConfig,
  type QuantizationScheme,
  type TransformConfig,
  encodeQuantizationConfig,
  encodeQuantizationScheme,
  encodeTransformConfig,
} from "@llmq/schemes";
import {
  type CompressionFormat,
  type PyJson,
  compressModule as compressState,
  dumpPythonJson,
  formatSerializationError,
  inferFormat,
  inferModelFormat,
} from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, ioError, quantizationError } from "./errors.js";

// The on-disk side of a quantized module and of the model config, exactly as llm-compressor saves them through
// compressed-tensors (ModelCompressor.compress_model + update_config).

/** The compressed-tensors release whose format llmq writes (config.json `quantization_config.version`). */
export const COMPRESSED_TENSORS_VERSION = "0.20.0";

export interface CompressedModule {
  readonly format: CompressionFormat;
  /** Full tensor names ("model.layers.0.self_attn.q_proj.weight_packed") in the order compressed-tensors emits them. */
  readonly tensors: ReadonlyArray<readonly [string, Tensor]>;
}

/** The compression format of a config group: its explicit `format`, else compressed-tensors' inference. */
export const groupFormat = (s: QuantizationScheme): CompressionFormat => (s.format as CompressionFormat | null) ?? inferFormat(s);

/** One quantized module → its compressed tensors (weight_packed / weight / weight_scale / weight_zero_point / …). */
export const compressModule = (m: QuantizedModule): E.Either<LlmqError, CompressedModule> => {
  const format = groupFormat(m.scheme);
  const q = m.weight;
  if (q === null) return E.left(quantizationError(m.module.name, "a module without quantized weights cannot be compressed"));
  const state = new Map<string, Tensor>([
    ["weight", q.quantized],
    ["weight_scale", q.scale],
  ]);
  if (q.zeroPoint !== null) state.set("weight_zero_point", q.zeroPoint);
  if (q.globalScale !== null) state.set("weight_global_scale", q.globalScale);
  if (q.gIdx !== null) state.set("weight_g_idx", q.gIdx);
  for (const [k, t] of m.activationParams) state.set(k, t);
  const r = compressState(format, m.scheme, state, { module: m.module.name });
  if (E.isLeft(r)) return E.left(quantizationError(m.module.name, formatSerializationError(r.left)));
  return E.right({ format, tensors: [...r.right].map(([k, t]) => [`${m.module.name}.${k}`, t] as const) });
};

/**
 * The config groups compressed-tensors' `QuantizationConfig.from_pretrained(model)` finds on a quantized model: every
 * distinct scheme in module order, named group_0, group_1… (so two modifiers' "group_0" become two groups).
 */
export const configGroups = (modules: ReadonlyArray<Pick<QuantizedModule, "scheme">>): Readonly<Record<string, QuantizationScheme>> => {
  const seen: Array<{ readonly key: string; readonly scheme: QuantizationScheme }> = [];
  for (const m of modules) {
    const key = JSON.stringify(encodeQuantizationScheme(m.scheme));
    if (!seen.some((s) => s.key === key)) seen.push({ key, scheme: m.scheme });
  }
  return Object.fromEntries(seen.map((s, i) => [`group_${i}`, { ...s.scheme, format: groupFormat(s.scheme) }]));
};

/**
 * config.json with `quantization_config` as compressed-tensors writes it: config groups from the quantized modules
 * with their format, the top-level format is the single format or "mixed-precision", `ignore` lists every Linear left
 * unquantized, and the file is `json.dump(indent=2, sort_keys=True)` keeping Python's floats.
 */
export const quantizationConfigJson = (
  rawConfig: Readonly<Record<string, unknown>>,
  modules: ReadonlyArray<Pick<QuantizedModule, "scheme">>,
  unquantized: ReadonlyArray<string>,
  kvCacheScheme: QuantizationArgs | null = null,
  transformConfig: TransformConfig | null = null,
): E.Either<LlmqError, { readonly text: string; readonly format: string; readonly config: QuantizationConfig }> => {
  const groups = configGroups(modules);
  const formats = Object.values(groups).map((s) => s.format as CompressionFormat);
  const format = inferModelFormat(formats);
  const config: QuantizationConfig = {
    config_groups: groups,
    quant_method: "compressed-tensors",
    kv_cache_scheme: kvCacheScheme,
    format,
    quantization_status: "compressed",
    global_compression_ratio: null,
    ignore: unquantized,
    moe_sparsity_config: null,
  };
  const { quant_method, ...dump } = encodeQuantizationConfig(config);
  const qc = {
    ...dump,
    quant_method,
    version: COMPRESSED_TENSORS_VERSION,
    sparsity_config: {},
    transform_config: transformConfig === null ? {} : encodeTransformConfig(transformConfig),
  };
  try {
    const text = dumpPythonJson({ ...rawConfig, quantization_config: qc } as unknown as PyJson, { indent: 2, sortKeys: true });
    return E.right({ text, format, config });
  } catch (e) {
    return E.left(ioError("config.json", `cannot encode: ${(e as Error).message}`));
  }
};

/**
 * config.json of a model with transforms but no quantized module: compressed-tensors still writes a
 * quantization_config, holding only version, quant_method, sparsity_config and transform_config.
 */
export const transformOnlyConfigJson = (rawConfig: Readonly<Record<string, unknown>>, transformConfig: TransformConfig): E.Either<LlmqError, string> => {
  const qc = { version: COMPRESSED_TENSORS_VERSION, quant_method: "compressed-tensors", sparsity_config: {}, transform_config: encodeTransformConfig(transformConfig) };
  try {
    return E.right(dumpPythonJson({ ...rawConfig, quantization_config: qc } as unknown as PyJson, { indent: 2, sortKeys: true }));
  } catch (e) {
    return E.left(ioError("config.json", `cannot encode: ${(e as Error).message}`));
  }
};
