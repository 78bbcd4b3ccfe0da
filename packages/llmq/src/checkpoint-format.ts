import { type QuantizationConfig, type QuantizationScheme, encodeQuantizationConfig } from "@llmq/schemes";
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
import type { PlannedModule, QuantizationPlan } from "./plan.js";
import type { QuantizedWeight } from "./quantize-module.js";

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
export const compressModule = (
  p: PlannedModule,
  q: QuantizedWeight,
  activationQParams: ReadonlyArray<readonly [string, Tensor]> = [],
): E.Either<LlmqError, CompressedModule> => {
  const format = groupFormat(p.scheme);
  const state = new Map<string, Tensor>([
    ["weight", q.quantized],
    ["weight_scale", q.scale],
  ]);
  if (q.zeroPoint !== null) state.set("weight_zero_point", q.zeroPoint);
  if (q.globalScale !== null) state.set("weight_global_scale", q.globalScale);
  if (q.gIdx !== null) state.set("weight_g_idx", q.gIdx);
  for (const [k, t] of activationQParams) state.set(k, t);
  const r = compressState(format, p.scheme, state, { module: p.module.name });
  if (E.isLeft(r)) return E.left(quantizationError(p.module.name, formatSerializationError(r.left)));
  return E.right({ format, tensors: [...r.right].map(([k, t]) => [`${p.module.name}.${k}`, t] as const) });
};

/**
 * config.json with `quantization_config` as compressed-tensors writes it: config groups get their format, the
 * top-level format is the single format or "mixed-precision", `ignore` lists every Linear left unquantized, and the
 * file is `json.dump(indent=2, sort_keys=True)`.
 */
export const quantizationConfigJson = (
  rawConfig: Readonly<Record<string, unknown>>,
  plan: QuantizationPlan,
): E.Either<LlmqError, { readonly text: string; readonly format: string; readonly config: QuantizationConfig }> => {
  const used = new Set([...plan.modules.values()].map((m) => m.group));
  const groups = Object.fromEntries(
    Object.entries(plan.config.config_groups)
      .filter(([g]) => used.has(g))
      .map(([g, s]) => [g, { ...s, format: groupFormat(s) }]),
  );
  const formats = Object.values(groups).map((s) => s.format as CompressionFormat);
  const format = inferModelFormat(formats);
  const config: QuantizationConfig = {
    ...plan.config,
    config_groups: groups,
    format,
    quantization_status: "compressed",
    ignore: plan.unquantized,
  };
  const { quant_method, ...dump } = encodeQuantizationConfig(config);
  const qc = {
    ...dump,
    quant_method,
    version: COMPRESSED_TENSORS_VERSION,
    sparsity_config: {},
    transform_config: {},
  };
  try {
    const text = dumpPythonJson({ ...rawConfig, quantization_config: qc } as unknown as PyJson, { indent: 2, sortKeys: true });
    return E.right({ text, format, config });
  } catch (e) {
    return E.left(ioError("config.json", `cannot encode: ${(e as Error).message}`));
  }
};
