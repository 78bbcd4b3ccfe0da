import type { QuantizationArgs } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type KvCacheError, unsupportedKvScheme } from "./errors.js";

// What llmq accepts as a `kv_cache_scheme` (QuantizationModifier / GPTQModifier field, config.json key): the
// compressed-tensors QuantizationArgs of the cached keys and values, calibrated statically (k_scale / v_scale saved
// beside each attention module). compressed-tensors accepts more than can be calibrated or loaded; what llmq cannot
// honour is refused here, before any weight is read, and what vLLM will not load is a warning.

// ----- model -----

/** A checked kv_cache_scheme: the args, the observer that calibrates them, and the warnings to show. */
export interface KvCacheScheme {
  readonly args: QuantizationArgs;
  /** LC `initialize_observer`: args.observer, else "minmax" (the moving average, c = 0.01) for k and v. */
  readonly observer: string;
  readonly warnings: ReadonlyArray<string>;
}

/** compressed-tensors' own warning (`_apply_kv_cache_scheme`), word for word. */
export const ASYMMETRIC_KV_WARNING = "vLLM does not support asymmetric kv cache quantization";

// ----- functions -----

const refuse = (field: string, detail: string): E.Either<KvCacheError, never> => E.left(unsupportedKvScheme(field, detail));

/**
 * Checks kv_cache_scheme args: static (dynamic kv scales would be computed by nobody: vLLM reads calibrated ones),
 * strategy `tensor` (one scale per layer, shape [1]) or `attn_head` (one per KV head, [num_kv_heads, 1, 1]), 8-bit
 * float (fp8 e4m3) or 2–8-bit int, no groups, blocks or act-order.
 */
export const checkKvCacheScheme = (args: QuantizationArgs): E.Either<KvCacheError, KvCacheScheme> => {
  if (args.dynamic !== false)
    return refuse("dynamic", `${JSON.stringify(args.dynamic)} is not supported: k_scale / v_scale are calibrated (set dynamic: false; llmq eval --kv-cache measures a dynamic cache)`);
  if (args.strategy !== "tensor" && args.strategy !== "attn_head")
    return refuse("strategy", `"${args.strategy}" cannot be applied to the kv cache; use "tensor" (one scale per layer) or "attn_head" (one per KV head)`);
  if (args.type === "float" && args.num_bits !== 8) return refuse("num_bits", `float kv caches are fp8 (num_bits 8, e4m3); got ${args.num_bits}`);
  if (args.type === "int" && (args.num_bits < 2 || args.num_bits > 8)) return refuse("num_bits", `int kv caches take 2 to 8 bits; got ${args.num_bits}`);
  if (args.group_size !== null) return refuse("group_size", "groups cannot be applied to the kv cache; remove group_size");
  if (args.block_structure !== null) return refuse("block_structure", "blocks cannot be applied to the kv cache; remove block_structure");
  if (args.actorder !== null) return refuse("actorder", "act-order applies to weights only; remove it from kv_cache_scheme");
  // k_scale / v_scale are saved in the model's dtype and zero points as int8, compressed-tensors' defaults; other
  // dtypes would be written differently from what was asked, so they are refused rather than ignored.
  if (args.scale_dtype !== null) return refuse("scale_dtype", `${args.scale_dtype} is not supported for kv caches by llmq yet (k/v scales take the model's dtype); remove it`);
  if (args.fields_set?.includes("zp_dtype") === true) return refuse("zp_dtype", `${args.zp_dtype} is not supported for kv caches by llmq yet (zero points are int8); remove it`);
  const warnings = [
    ...(args.symmetric ? [] : [ASYMMETRIC_KV_WARNING]),
    ...(args.type === "float"
      ? []
      : [`vLLM loads only fp8 kv caches (num_bits 8, type float); these ${args.num_bits}-bit int k/v scales serve llmq eval / generate and msModelSlim-style runtimes`]),
  ];
  return E.right({ args, observer: args.observer ?? "minmax", warnings });
};
