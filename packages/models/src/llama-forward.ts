import { Tensor, kernels } from "@llmq/tensor";
import type { LlamaConfig } from "./llama-config.js";
import { applyRopeInPlace, ropeCosSin, ropeInvFreq } from "./rope.js";

// ----- model -----

/** One decoder layer's weights in f32, keyed by the local HF name ("self_attn.q_proj.weight", "input_layernorm.weight"…). */
export type LayerWeights = ReadonlyMap<string, Tensor<"f32">>;

/** Final norm and output projection; `lmHead` is the embedding matrix when the model ties them. */
export interface HeadWeights {
  readonly norm: Tensor<"f32">;
  readonly lmHead: Tensor<"f32">;
}

/** Observation points inside a decoder layer (calibration hooks). Tensors passed in must not be mutated. */
export interface LayerHooks {
  /** The input of each linear, [T, in], keyed by local module name ("self_attn.q_proj", "mlp.down_proj"…). */
  readonly onLinearInput?: (localModule: string, x: Tensor<"f32">) => void;
  /** Keys after RoPE and values, each [T, num_key_value_heads × head_dim], as a KV cache would store them. */
  readonly onAttentionKV?: (k: Tensor<"f32">, v: Tensor<"f32">) => void;
  /**
   * Replaces the input of a linear after it was observed (quantized activations: a runtime like vLLM quantizes the
   * input of a W8A8/FP8 linear before the matmul). Returns the tensor to multiply, e.g. a fake-quantized copy.
   */
  readonly transformLinearInput?: (localModule: string, x: Tensor<"f32">) => Tensor<"f32">;
}

/** The linear modules of a decoder layer in execution order, with their (out, in) feature counts. */
export const layerLinears = (cfg: LlamaConfig): ReadonlyArray<{ readonly local: string; readonly out: number; readonly in: number }> => {
  const q = cfg.num_attention_heads * cfg.head_dim;
  const kv = cfg.num_key_value_heads * cfg.head_dim;
  return [
    { local: "self_attn.q_proj", out: q, in: cfg.hidden_size },
    { local: "self_attn.k_proj", out: kv, in: cfg.hidden_size },
    { local: "self_attn.v_proj", out: kv, in: cfg.hidden_size },
    { local: "self_attn.o_proj", out: cfg.hidden_size, in: q },
    { local: "mlp.gate_proj", out: cfg.intermediate_size, in: cfg.hidden_size },
    { local: "mlp.up_proj", out: cfg.intermediate_size, in: cfg.hidden_size },
    { local: "mlp.down_proj", out: cfg.hidden_size, in: cfg.intermediate_size },
  ];
};

// ----- ops on raw row-major arrays -----

const f = Math.fround;

const weight = (w: LayerWeights, name: string): Tensor<"f32"> => {
  const t = w.get(name);
  if (t === undefined) throw new Error(`llmq internal: layer weights lack ${name} (load them with loadLayer)`);
  return t;
};

/** y[T, out] = x[T, in] · Wᵀ (+ b), through the active backend's sgemm. */
export const linear = (x: Tensor<"f32">, w: Tensor<"f32">, bias?: Tensor<"f32">): Tensor<"f32"> => {
  const [t, k] = x.shape as [number, number];
  const [n, kw] = w.shape as [number, number];
  if (kw !== k) throw new Error(`llmq internal: linear input width ${k} does not match weight [${n}, ${kw}]`);
  const y = new Float32Array(t * n);
  kernels().sgemm(t, n, k, x.data, false, w.data, true, y, 1, 0);
  if (bias !== undefined) {
    const b = bias.data;
    for (let r = 0; r < t; r++) for (let j = 0; j < n; j++) y[r * n + j] = y[r * n + j]! + b[j]!;
  }
  return new Tensor("f32", [t, n], y);
};

/** LlamaRMSNorm: x · rsqrt(mean(x²) + eps) in f32, times the weight. */
export const rmsNorm = (x: Tensor<"f32">, w: Tensor<"f32">, eps: number): Tensor<"f32"> => {
  const [t, h] = x.shape as [number, number];
  const out = new Float32Array(t * h);
  const xd = x.data;
  const wd = w.data;
  for (let r = 0; r < t; r++) {
    let ss = 0;
    for (let j = 0; j < h; j++) ss += xd[r * h + j]! * xd[r * h + j]!;
    const inv = f(1 / Math.sqrt(f(f(ss / h) + eps)));
    for (let j = 0; j < h; j++) out[r * h + j] = f(wd[j]! * f(xd[r * h + j]! * inv));
  }
  return new Tensor("f32", [t, h], out);
};

const add = (a: Tensor<"f32">, b: Tensor<"f32">): Tensor<"f32"> => {
  const out = new Float32Array(a.size);
  for (let i = 0; i < out.length; i++) out[i] = a.data[i]! + b.data[i]!;
  return new Tensor("f32", a.shape, out);
};

/** Causal (optionally sliding-window) grouped-query attention of one sequence; q [T, H·D], k/v [T, KV·D] → [T, H·D]. */
const attention = (cfg: LlamaConfig, q: Float32Array, k: Float32Array, v: Float32Array, tokens: number): Float32Array => {
  const nH = cfg.num_attention_heads;
  const nKV = cfg.num_key_value_heads;
  const d = cfg.head_dim;
  const group = nH / nKV;
  const scale = 1 / Math.sqrt(d);
  const window = cfg.sliding_window;
  const out = new Float32Array(tokens * nH * d);
  const qh = new Float32Array(tokens * d);
  const kh = new Float32Array(tokens * d);
  const vh = new Float32Array(tokens * d);
  const scores = new Float32Array(tokens * tokens);
  const oh = new Float32Array(tokens * d);
  const gemm = kernels().sgemm;
  for (let g = 0; g < nKV; g++) {
    for (let t = 0; t < tokens; t++) {
      kh.set(k.subarray((t * nKV + g) * d, (t * nKV + g + 1) * d), t * d);
      vh.set(v.subarray((t * nKV + g) * d, (t * nKV + g + 1) * d), t * d);
    }
    for (let h = g * group; h < (g + 1) * group; h++) {
      for (let t = 0; t < tokens; t++) qh.set(q.subarray((t * nH + h) * d, (t * nH + h + 1) * d), t * d);
      gemm(tokens, tokens, d, qh, false, kh, true, scores, scale, 0);
      for (let i = 0; i < tokens; i++) {
        const row = i * tokens;
        const lo = window === null ? 0 : Math.max(0, i - window + 1);
        let max = Number.NEGATIVE_INFINITY;
        for (let j = lo; j <= i; j++) if (scores[row + j]! > max) max = scores[row + j]!;
        let sum = 0;
        for (let j = 0; j < tokens; j++) {
          if (j < lo || j > i) {
            scores[row + j] = 0;
          } else {
            const e = f(Math.exp(scores[row + j]! - max));
            scores[row + j] = e;
            sum += e;
          }
        }
        const inv = 1 / f(sum);
        for (let j = lo; j <= i; j++) scores[row + j] = scores[row + j]! * inv;
      }
      gemm(tokens, d, tokens, scores, false, vh, false, oh, 1, 0);
      for (let t = 0; t < tokens; t++) out.set(oh.subarray(t * d, (t + 1) * d), (t * nH + h) * d);
    }
  }
  return out;
};

// ----- forward -----

const defaultPositions = (tokens: number): Int32Array => Int32Array.from({ length: tokens }, (_, i) => i);

/**
 * One Llama decoder layer on one sequence: hidden [T, hidden_size] → [T, hidden_size]. `positions` default to
 * 0..T−1. Biases are applied where `weights` hold them (Qwen2 q/k/v, attention_bias, mlp_bias).
 */
export const decoderLayerForward = (
  cfg: LlamaConfig,
  weights: LayerWeights,
  hidden: Tensor<"f32">,
  positions?: Int32Array,
  hooks?: LayerHooks,
): Tensor<"f32"> => {
  const tokens = hidden.shape[0]!;
  if (hidden.rank !== 2 || hidden.shape[1] !== cfg.hidden_size)
    throw new Error(`llmq internal: decoderLayerForward expects [T, ${cfg.hidden_size}], got ${hidden.toString()}`);
  const pos = positions ?? defaultPositions(tokens);
  if (pos.length !== tokens) throw new Error(`llmq internal: ${pos.length} positions for ${tokens} tokens`);
  const lin = (local: string, x: Tensor<"f32">): Tensor<"f32"> => {
    hooks?.onLinearInput?.(local, x);
    const xin = hooks?.transformLinearInput?.(local, x) ?? x;
    return linear(xin, weight(weights, `${local}.weight`), weights.get(`${local}.bias`));
  };

  const xa = rmsNorm(hidden, weight(weights, "input_layernorm.weight"), cfg.rms_norm_eps);
  const q = lin("self_attn.q_proj", xa);
  const k = lin("self_attn.k_proj", xa);
  const v = lin("self_attn.v_proj", xa);
  const { cos, sin } = ropeCosSin(ropeInvFreq(cfg), pos);
  applyRopeInPlace(q.data, tokens, cfg.num_attention_heads, cfg.head_dim, cos, sin);
  applyRopeInPlace(k.data, tokens, cfg.num_key_value_heads, cfg.head_dim, cos, sin);
  hooks?.onAttentionKV?.(k, v);
  const ctx = new Tensor("f32", [tokens, cfg.num_attention_heads * cfg.head_dim], attention(cfg, q.data, k.data, v.data, tokens));
  const h = add(hidden, lin("self_attn.o_proj", ctx));

  const xm = rmsNorm(h, weight(weights, "post_attention_layernorm.weight"), cfg.rms_norm_eps);
  const gate = lin("mlp.gate_proj", xm);
  const up = lin("mlp.up_proj", xm);
  const act = new Float32Array(gate.size);
  for (let i = 0; i < act.length; i++) {
    const g = gate.data[i]!;
    act[i] = f(f(g / f(1 + f(Math.exp(-g)))) * up.data[i]!);
  }
  const down = lin("mlp.down_proj", new Tensor("f32", gate.shape, act));
  return add(h, down);
};

/** Rows of the embedding matrix [vocab, hidden] for each token → [T, hidden]. */
export const embed = (embedding: Tensor<"f32">, tokens: Int32Array): Tensor<"f32"> => {
  const [vocab, h] = embedding.shape as [number, number];
  const out = new Float32Array(tokens.length * h);
  tokens.forEach((id, t) => {
    if (id < 0 || id >= vocab) throw new Error(`llmq internal: token id ${id} outside the vocabulary of ${vocab}`);
    out.set(embedding.data.subarray(id * h, (id + 1) * h), t * h);
  });
  return new Tensor("f32", [tokens.length, h], out);
};

/** Final RMSNorm and lm_head: hidden [T, hidden] → logits [T, vocab]. */
export const headForward = (cfg: LlamaConfig, head: HeadWeights, hidden: Tensor<"f32">): Tensor<"f32"> =>
  linear(rmsNorm(hidden, head.norm, cfg.rms_norm_eps), head.lmHead);
