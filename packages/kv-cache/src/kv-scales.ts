import type { QuantizationArgs } from "@llmq/schemes";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type KvCacheError, kvScaleMismatch } from "./errors.js";
import type { KvQParams } from "./kv-store.js";

// Where a checkpoint keeps its calibrated KV-cache qparams: compressed-tensors writes `<attn>.k_scale` / `v_scale`
// (and `*_zero_point` for asymmetric args) on the attention module; older llm-compressor releases wrote them as the
// output scales of the projections, `<attn>.k_proj.output_scale` / `v_proj.output_scale`, which vLLM still remaps.

// ----- model -----

export interface KvScaleNames {
  /** The attention module ("model.layers.0.self_attn"). */
  readonly attention: string;
  readonly k: string;
  readonly v: string;
  readonly kZeroPoint: string | null;
  readonly vZeroPoint: string | null;
  readonly legacy: boolean;
}

// ----- functions -----

/** The k/v scale tensors among a checkpoint's tensor names, by attention module, in name order. */
export const kvScaleNames = (names: ReadonlyArray<string>): ReadonlyMap<string, KvScaleNames> => {
  const present = new Set(names);
  const out = new Map<string, KvScaleNames>();
  const opt = (n: string): string | null => (present.has(n) ? n : null);
  for (const n of names) {
    if (n.endsWith(".k_scale") && present.has(n.replace(/k_scale$/, "v_scale"))) {
      const a = n.slice(0, -".k_scale".length);
      out.set(a, { attention: a, k: n, v: `${a}.v_scale`, kZeroPoint: opt(`${a}.k_zero_point`), vZeroPoint: opt(`${a}.v_zero_point`), legacy: false });
    } else if (n.endsWith(".k_proj.output_scale") && present.has(n.replace(/k_proj\.output_scale$/, "v_proj.output_scale"))) {
      const a = n.slice(0, -".k_proj.output_scale".length);
      if (out.has(a)) continue;
      out.set(a, {
        attention: a,
        k: n,
        v: `${a}.v_proj.output_scale`,
        kZeroPoint: opt(`${a}.k_proj.output_zero_point`),
        vZeroPoint: opt(`${a}.v_proj.output_zero_point`),
        legacy: true,
      });
    }
  }
  return new Map([...out].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true })));
};

/**
 * Checks a stored scale (and zero point) against the kv_cache_scheme: one value for `tensor`, one per KV head for
 * `attn_head` ([KV, 1, 1]; legacy per-tensor scales are [1] or scalars), positive and finite; a zero point exactly when
 * the args are asymmetric.
 */
export const kvQParamsOf = (args: QuantizationArgs, name: string, scale: Tensor, zeroPoint: Tensor | null, kvHeads: number): E.Either<KvCacheError, KvQParams> => {
  const want = args.strategy === "attn_head" ? kvHeads : 1;
  if (scale.size !== want)
    return E.left(kvScaleMismatch(name, `has ${scale.size} values [${scale.shape.join(", ")}]; kv_cache_scheme strategy "${args.strategy}" needs ${want}`));
  if (scale.dtype !== "f32" && scale.dtype !== "f64" && scale.dtype !== "bf16" && scale.dtype !== "f16")
    return E.left(kvScaleMismatch(name, `is ${scale.dtype}; a scale must be a float tensor`));
  const bad = toFloat32(scale).data.find((s) => !(s > 0 && Number.isFinite(s)));
  if (bad !== undefined) return E.left(kvScaleMismatch(name, `holds ${bad}; a scale must be positive and finite`));
  if (!args.symmetric && zeroPoint === null) return E.left(kvScaleMismatch(name, "asymmetric kv_cache_scheme but no zero point is stored beside the scale"));
  if (zeroPoint !== null && zeroPoint.size !== want) return E.left(kvScaleMismatch(name, `zero point has ${zeroPoint.size} values; ${want} expected`));
  return E.right({ scale, zeroPoint: args.symmetric ? null : zeroPoint });
};
