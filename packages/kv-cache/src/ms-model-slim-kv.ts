import { roundHalfEven } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type KvCacheError, unsupportedKvScheme } from "./errors.js";

// msModelSlim's KV-cache int8 ("C8", `QuantConfig.kv_quant(kv_sym)`): forward hooks on the k/v projection linears
// record per-output-channel running min / max over every calibration token (keys before RoPE, as the projection
// emits them); one scale and offset per KV channel from its integer qparam formula (MSL ir/api/impl/
// int_quantization.py): range widened to include 0, symmetric s = max(−min, max)/(2^(b−1)−1), asymmetric
// s = max/(2^b−1) − min/(2^b−1) with offset round(−min/s) − 2^(b−1) (signed storage), s floored at f32 eps; the
// tensors are saved as `<k_proj|v_proj>.kv_cache_scale` / `.kv_cache_offset`. The QuantConfig issue wires these.

// ----- model -----

/** Running per-channel range of a projection's outputs ([tokens, channels] batches). */
export interface ChannelRange {
  readonly min: Float64Array;
  readonly max: Float64Array;
  readonly tokens: number;
}

/** One (scale, offset) per channel; offset all 0 for symmetric. */
export interface MsKvQParams {
  readonly scale: Float32Array;
  readonly offset: Float32Array;
}

const EPS = 1.1920928955078125e-7; // torch.finfo(torch.float32).eps

// ----- functions -----

export const emptyChannelRange = (channels: number): ChannelRange => ({
  min: new Float64Array(channels).fill(Number.POSITIVE_INFINITY),
  max: new Float64Array(channels).fill(Number.NEGATIVE_INFINITY),
  tokens: 0,
});

/** Folds one batch [tokens, channels] into the running range (a pure reducer: returns a new range). */
export const foldChannelRange = (r: ChannelRange, x: Float32Array, tokens: number): E.Either<KvCacheError, ChannelRange> => {
  const c = r.min.length;
  if (x.length !== tokens * c) return E.left(unsupportedKvScheme("kv_quant", `a batch of ${x.length} values is not ${tokens} tokens × ${c} channels`));
  const min = Float64Array.from(r.min);
  const max = Float64Array.from(r.max);
  for (let t = 0; t < tokens; t++)
    for (let j = 0; j < c; j++) {
      const v = x[t * c + j]!;
      if (!Number.isFinite(v)) return E.left(unsupportedKvScheme("kv_quant", `channel ${j} of token ${t} is ${v}; the calibration activations must be finite`));
      if (v < min[j]!) min[j] = v;
      if (v > max[j]!) max[j] = v;
    }
  return E.right({ min, max, tokens: r.tokens + tokens });
};

/** msModelSlim's integer qparams per channel (bits 8 for C8; `sym` = kv_sym). */
export const msModelSlimKvQParams = (r: ChannelRange, sym: boolean, bits = 8): E.Either<KvCacheError, MsKvQParams> => {
  if (r.tokens === 0) return E.left(unsupportedKvScheme("kv_quant", "no calibration tokens were observed"));
  const c = r.min.length;
  const scale = new Float32Array(c);
  const offset = new Float32Array(c);
  const qmax = 2 ** (bits - 1) - 1;
  const levels = 2 ** bits - 1;
  for (let j = 0; j < c; j++) {
    const lo = Math.fround(Math.min(r.min[j]!, 0));
    const hi = Math.fround(Math.max(r.max[j]!, 0));
    if (sym) scale[j] = Math.max(Math.fround(Math.max(-lo, hi) / qmax), EPS);
    else {
      const s = Math.max(Math.fround(Math.fround(hi / levels) - Math.fround(lo / levels)), EPS);
      scale[j] = s;
      offset[j] = roundHalfEven(Math.fround(-lo / s)) - 2 ** (bits - 1);
    }
  }
  return E.right({ scale, offset });
};

/** q = clamp(round(x/s + o), −2^(b−1), 2^(b−1)−1) per channel of [tokens, channels] rows, written to `out` (b ≤ 8). */
export const msModelSlimKvQuantize = (x: Float32Array, q: MsKvQParams, out: Int8Array, bits = 8): Int8Array => {
  const c = q.scale.length;
  const lo = -(2 ** (bits - 1));
  const hi = 2 ** (bits - 1) - 1;
  for (let i = 0; i < x.length; i++) {
    const j = i % c;
    out[i] = Math.min(hi, Math.max(lo, roundHalfEven(Math.fround(Math.fround(x[i]! / q.scale[j]!) + q.offset[j]!))));
  }
  return out;
};

/** x̂ = (q − o)·s per channel, written to `out`. */
export const msModelSlimKvDequantize = (codes: Int8Array, q: MsKvQParams, out: Float32Array): Float32Array => {
  const c = q.scale.length;
  for (let i = 0; i < codes.length; i++) out[i] = Math.fround(Math.fround(codes[i]! - q.offset[i % c]!) * q.scale[i % c]!);
  return out;
};

/** q = clamp(round(x/s + o), −2^(b−1), 2^(b−1)−1); x̂ = (q − o)·s, per channel of [tokens, channels]. */
export const msModelSlimKvFakeQuantize = (x: Float32Array, q: MsKvQParams, bits = 8): Float32Array =>
  msModelSlimKvDequantize(msModelSlimKvQuantize(x, q, new Int8Array(x.length), bits), q, new Float32Array(x.length));
