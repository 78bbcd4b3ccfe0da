import { sampleToken } from "@llmq/models";
import { Rng, ropeCosSin } from "@llmq/tensor";
import { Observable } from "rxjs";
import { type GpuContext, readBuffer, storageBuffer } from "./gpu-context.js";
import { encodeAdd, encodeArgmax, encodeLinear, encodeRmsNorm, encodeRope, encodeSiluMul } from "./gpu-kernels.js";
import { type GpuKvCache, type GpuKvOverride, createGpuKvCache, destroyGpuKvCache, encodeCachedAttention, encodeKvAppend } from "./gpu-kv-cache.js";
import type { GpuModel } from "./load-quantized.js";

// Decoding on the GPU: the prompt runs through every layer at once, each layer's keys and values go to the KV cache on
// the GPU (f32, or the checkpoint's quantized kv_cache_scheme: gpu-kv-cache.ts), then each new token is one position
// through the layers. Only the chosen token (4 bytes) comes back per step; logits are read back only when asked for
// (tests, the KLD view).

interface Scratch {
  readonly h: GPUBuffer;
  readonly a: GPUBuffer;
  readonly q: GPUBuffer;
  readonly k: GPUBuffer;
  readonly v: GPUBuffer;
  readonly o: GPUBuffer;
  readonly gate: GPUBuffer;
  readonly up: GPUBuffer;
  readonly act: GPUBuffer;
  /** The int8-quantized input of a W8A8 linear. */
  readonly xq: GPUBuffer;
  readonly logits: GPUBuffer;
  readonly token: GPUBuffer;
}

const scratch = (m: GpuModel, t: number, h: GPUBuffer): Scratch => {
  const c = m.config;
  const f = (n: number) => storageBuffer(m.ctx, t * n * 4);
  return {
    h,
    a: f(c.hidden_size),
    q: f(c.num_attention_heads * c.head_dim),
    k: f(c.num_key_value_heads * c.head_dim),
    v: f(c.num_key_value_heads * c.head_dim),
    o: f(c.num_attention_heads * c.head_dim),
    gate: f(c.intermediate_size),
    up: f(c.intermediate_size),
    act: f(c.intermediate_size),
    xq: f(Math.max(c.hidden_size, c.intermediate_size, c.num_attention_heads * c.head_dim)),
    logits: f(c.vocab_size),
    token: storageBuffer(m.ctx, 4),
  };
};

const release = (s: Scratch): void => {
  for (const b of Object.values(s)) (b as GPUBuffer).destroy();
};

const encodeLayer = (m: GpuModel, enc: GPUCommandEncoder, i: number, s: Scratch, t: number, cache: GpuKvCache, rope: { cos: GPUBuffer; sin: GPUBuffer }): void => {
  const c = m.config;
  const ctx = m.ctx;
  const L = m.layers[i]!;
  const lin = (name: string) => L.linears.get(name)!;
  encodeRmsNorm(ctx, enc, s.h, L.inputNorm, s.a, t, c.hidden_size, c.rms_norm_eps);
  encodeLinear(ctx, enc, lin("self_attn.q_proj"), s.a, s.q, t, s.xq);
  encodeLinear(ctx, enc, lin("self_attn.k_proj"), s.a, s.k, t, s.xq);
  encodeLinear(ctx, enc, lin("self_attn.v_proj"), s.a, s.v, t, s.xq);
  encodeRope(ctx, enc, s.q, rope.cos, rope.sin, t, c.num_attention_heads, c.head_dim);
  encodeRope(ctx, enc, s.k, rope.cos, rope.sin, t, c.num_key_value_heads, c.head_dim);
  encodeKvAppend(ctx, enc, cache, i, s.k, s.v, t, c.num_key_value_heads, c.head_dim);
  const shape = { tokens: t, past: cache.length, heads: c.num_attention_heads, kvHeads: c.num_key_value_heads, headDim: c.head_dim, window: c.sliding_window ?? 0, scale: 1 / Math.sqrt(c.head_dim) };
  encodeCachedAttention(ctx, enc, cache, i, s.q, s.o, shape);
  encodeLinear(ctx, enc, lin("self_attn.o_proj"), s.o, s.a, t, s.xq);
  encodeAdd(ctx, enc, s.h, s.a, t * c.hidden_size);
  encodeRmsNorm(ctx, enc, s.h, L.postNorm, s.a, t, c.hidden_size, c.rms_norm_eps);
  encodeLinear(ctx, enc, lin("mlp.gate_proj"), s.a, s.gate, t, s.xq);
  encodeLinear(ctx, enc, lin("mlp.up_proj"), s.a, s.up, t, s.xq);
  encodeSiluMul(ctx, enc, s.gate, s.up, s.act, t * c.intermediate_size);
  encodeLinear(ctx, enc, lin("mlp.down_proj"), s.act, s.a, t, s.xq);
  encodeAdd(ctx, enc, s.h, s.a, t * c.hidden_size);
};

export interface StepResult {
  /** The argmax of the last position's logits (greedy's next token). */
  readonly token: number;
  /** The last position's logits, when asked for. */
  readonly logits: Float32Array | null;
}

/** Runs `tokens` (positions cache.length…) through the model, appending to the cache; the last position's argmax. */
export const gpuStep = async (m: GpuModel, tokens: Int32Array, cache: GpuKvCache, wantLogits = false): Promise<StepResult> => {
  const c = m.config;
  const t = tokens.length;
  if (cache.length + t > cache.capacity) throw new Error(`llmq internal: KV cache of ${cache.capacity} positions is full`);
  const x = new Float32Array(t * c.hidden_size);
  for (let i = 0; i < t; i++) x.set(m.embedding.subarray(tokens[i]! * c.hidden_size, (tokens[i]! + 1) * c.hidden_size), i * c.hidden_size);
  const ctx: GpuContext = m.ctx;
  const s = scratch(m, t, storageBuffer(ctx, x));
  const { cos, sin } = ropeCosSin(m.invFreq, Int32Array.from({ length: t }, (_, i) => cache.length + i));
  const rope = { cos: storageBuffer(ctx, cos), sin: storageBuffer(ctx, sin) };
  const enc = ctx.device.createCommandEncoder();
  for (let i = 0; i < m.layers.length; i++) encodeLayer(m, enc, i, s, t, cache, rope);
  encodeRmsNorm(ctx, enc, s.h, m.norm, s.a, t, c.hidden_size, c.rms_norm_eps);
  encodeLinear(ctx, enc, m.lmHead, s.a, s.logits, t);
  encodeArgmax(ctx, enc, s.logits, s.token, c.vocab_size, t - 1);
  ctx.device.queue.submit([enc.finish()]);
  cache.length += t;
  const token = new Uint32Array(await readBuffer(ctx, s.token, 4))[0]!;
  const logits = wantLogits ? new Float32Array(await readBuffer(ctx, s.logits, c.vocab_size * 4, (t - 1) * c.vocab_size * 4)) : null;
  release(s);
  rope.cos.destroy();
  rope.sin.destroy();
  return { token, logits };
};

export interface GpuGenerateOptions {
  readonly maxTokens: number;
  /** Stop after this token (the tokenizer's EOS); null = never. */
  readonly eosId?: number | null;
  /** Also emit each step's logits (the distribution the token was picked from). */
  readonly logits?: boolean;
  /** 0 (default) = greedy, on the GPU; above 0 the logits are read back and sampled as llmq's CPU generate samples. */
  readonly temperature?: number;
  /** Nucleus sampling mass (default 1 = the whole distribution). */
  readonly topP?: number;
  /** The sampler's seed (llmq's Rng): the same seed and logits give the same tokens as `llmq generate`. */
  readonly seed?: number;
  /**
   * The KV cache's format instead of the checkpoint's (its kv_cache_scheme, else f32), as `llmq generate --kv-cache`:
   * "f32", "f16" (values rounded to f16 as @llmq/kv-cache's f16 cache rounds them), or "fp8" / "int8" (its dynamic
   * formats: codes with a scale per token and KV head).
   */
  readonly kvCache?: GpuKvOverride;
}

export interface GpuToken {
  readonly id: number;
  /** 0 for the first generated token. */
  readonly index: number;
  readonly logits: Float32Array | null;
}

/**
 * Decoding on the GPU as a stream of tokens (the subscriber's unsubscribe stops it after the current step): greedy by
 * the GPU's argmax, or with a temperature sampled by @llmq/models' sampleToken from one seeded uniform draw per step.
 */
export const generate = (m: GpuModel, prompt: Int32Array, o: GpuGenerateOptions): Observable<GpuToken> =>
  new Observable<GpuToken>((sub) => {
    let stopped = false;
    const cache = createGpuKvCache(m, prompt.length + o.maxTokens, o.kvCache);
    const run = async (): Promise<void> => {
      const sampled = (o.temperature ?? 0) > 0;
      const rng = new Rng(o.seed ?? 0);
      let input = prompt;
      for (let index = 0; index < o.maxTokens && !stopped; index++) {
        const r = await gpuStep(m, input, cache, (o.logits ?? false) || sampled);
        const id = sampled ? sampleToken(r.logits!, o.temperature!, o.topP ?? 1, rng.uniform()) : r.token;
        sub.next({ id, index, logits: o.logits ? r.logits : null });
        if (id === o.eosId) break;
        input = Int32Array.of(id);
      }
    };
    run().then(
      () => {
        destroyGpuKvCache(cache);
        sub.complete();
      },
      (e) => sub.error(e),
    );
    return () => {
      stopped = true;
    };
  });
