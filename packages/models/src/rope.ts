import type { LlamaConfig } from "./llama-config.js";

const f = Math.fround;

/**
 * Rotary inverse frequencies, as transformers computes them in f32: `1 / base ** (arange(0, dim, 2) / dim)`, then
 * for rope_type "llama3" the wavelength-banded rescaling of `_compute_llama3_parameters`, "linear" divides by factor.
 */
export const ropeInvFreq = (cfg: Pick<LlamaConfig, "head_dim" | "rope_theta" | "rope_scaling">): Float32Array => {
  const dim = cfg.head_dim;
  const half = dim / 2;
  const inv = new Float32Array(half);
  const base = f(cfg.rope_theta);
  for (let i = 0; i < half; i++) inv[i] = f(1 / f(base ** f((2 * i) / dim)));
  const s = cfg.rope_scaling;
  if (s === null) return inv;
  if (s.rope_type === "linear") {
    for (let i = 0; i < half; i++) inv[i] = f(inv[i]! / s.factor);
    return inv;
  }
  const oldCtx = s.original_max_position_embeddings;
  const lowWavelen = oldCtx / s.low_freq_factor;
  const highWavelen = oldCtx / s.high_freq_factor;
  for (let i = 0; i < half; i++) {
    const freq = inv[i]!;
    const wavelen = f((2 * Math.PI) / freq);
    const scaled = wavelen > lowWavelen ? f(freq / s.factor) : freq;
    if (wavelen < highWavelen || wavelen > lowWavelen) {
      inv[i] = scaled;
    } else {
      const smooth = f(f(f(oldCtx / wavelen) - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor));
      inv[i] = f(f(f(f(1 - smooth) * scaled) / s.factor) + f(smooth * scaled));
    }
  }
  return inv;
};

/** cos and sin of position × inv_freq for each position, [T, head_dim / 2] each (both halves of HF's emb repeat). */
export const ropeCosSin = (invFreq: Float32Array, positions: Int32Array): { cos: Float32Array; sin: Float32Array } => {
  const half = invFreq.length;
  const cos = new Float32Array(positions.length * half);
  const sin = new Float32Array(positions.length * half);
  for (let t = 0; t < positions.length; t++) {
    const p = positions[t]!;
    for (let i = 0; i < half; i++) {
      const a = f(p * invFreq[i]!);
      cos[t * half + i] = Math.cos(a);
      sin[t * half + i] = Math.sin(a);
    }
  }
  return { cos, sin };
};

/**
 * Applies rotate-half RoPE in place to x [T, heads × dim]: for each head, x1 = first half, x2 = second half,
 * (x1, x2) ← (x1·cos − x2·sin, x2·cos + x1·sin).
 */
export const applyRopeInPlace = (x: Float32Array, tokens: number, heads: number, dim: number, cos: Float32Array, sin: Float32Array): void => {
  const half = dim / 2;
  for (let t = 0; t < tokens; t++) {
    const cs = t * half;
    for (let h = 0; h < heads; h++) {
      const o = (t * heads + h) * dim;
      for (let i = 0; i < half; i++) {
        const x1 = x[o + i]!;
        const x2 = x[o + half + i]!;
        const c = cos[cs + i]!;
        const s = sin[cs + i]!;
        x[o + i] = f(x1 * c) - f(x2 * s);
        x[o + half + i] = f(x2 * c) + f(x1 * s);
      }
    }
  }
};
