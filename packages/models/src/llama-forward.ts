import { Tensor, embedding, formatTensorError, kernels, ropeCosSin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { LLAMA_ARCHITECTURE, type LayerLinear } from "./architecture.js";
import { type ModelError, forwardFailed } from "./errors.js";
import type { LlamaConfig } from "./llama-config.js";
import { ropeInvFreq } from "./rope.js";

// ----- model -----

/** One decoder layer's weights in f32, keyed by the local HF name ("self_attn.q_proj.weight", "input_layernorm.weight"…). */
export type LayerWeights = ReadonlyMap<string, Tensor<"f32">>;

/** Final norm and output projection; `lmHead` is the embedding matrix when the model ties them. */
export interface HeadWeights {
  readonly norm: Tensor<"f32">;
  readonly lmHead: Tensor<"f32">;
}

/**
 * Observation points inside a decoder layer (calibration taps). Tensors passed in must not be mutated. A hook that
 * refuses its input returns a Left; the forward stops there and reports it (no exception crosses the forward).
 */
export interface LayerHooks {
  /**
   * The input of a group of linears, [T, in], once per distinct input tensor: `modules` are the local names of every
   * linear fed that same tensor (q/k/v share the attention norm's output, gate/up the MLP norm's), in execution order.
   */
  readonly onLinearInput?: (modules: ReadonlyArray<string>, x: Tensor<"f32">) => void;
  /** Keys after RoPE and values, each [T, num_key_value_heads × head_dim], as a KV cache would store them. */
  readonly onAttentionKV?: (k: Tensor<"f32">, v: Tensor<"f32">) => void;
  /**
   * Replaces the input of a linear after it was observed (quantized activations: a runtime like vLLM quantizes the
   * input of a W8A8/FP8 linear before the matmul). Returns the tensor to multiply, e.g. a fake-quantized copy.
   */
  readonly transformLinearInput?: (localModule: string, x: Tensor<"f32">) => E.Either<string, Tensor<"f32">>;
  /**
   * Online rotations (compressed-tensors transforms at `input`): replaces the input of a group of linears fed the same
   * tensor before it is observed, as CT's prepended forward pre-hook does.
   */
  readonly transformGroupInput?: (modules: ReadonlyArray<string>, x: Tensor<"f32">) => E.Either<string, Tensor<"f32">>;
  /** Online rotations at `output`: replaces a linear's output (CT's forward hook). */
  readonly transformLinearOutput?: (localModule: string, y: Tensor<"f32">) => E.Either<string, Tensor<"f32">>;
  /**
   * Online rotations of the queries and keys after RoPE (CT's `q_attn` / `k_cache` hooks, SpinQuant R3), before the keys
   * are observed or cached. Returns the tensors attention uses.
   */
  readonly transformQueryKey?: (q: Tensor<"f32">, k: Tensor<"f32">) => E.Either<string, { readonly q: Tensor<"f32">; readonly k: Tensor<"f32"> }>;
  /**
   * The layer's KV cache: takes the new tokens' keys (after RoPE) and values [T, KV·D] and returns every cached
   * position's keys and values [past + T, KV·D] as attention reads them (a quantized cache returns them dequantized).
   * Without it the window attends to its own keys and values only. Structural, so @llmq/kv-cache's store fits.
   */
  readonly kvCache?: AttentionCache;
}

/** What the forward needs of a KV cache (one decoder layer's). */
export interface AttentionCache {
  /** Positions already cached (the first new token's position). */
  readonly length: () => number;
  readonly append: (
    k: Float32Array,
    v: Float32Array,
    tokens: number,
  ) => E.Either<string, { readonly k: Float32Array; readonly v: Float32Array; readonly tokens: number }>;
}

/** The linear modules of a decoder layer in execution order, with their (out, in) feature counts. */
export const layerLinears = (cfg: LlamaConfig): ReadonlyArray<LayerLinear> => LLAMA_ARCHITECTURE.layerLinears(cfg);

// ----- ops on raw row-major arrays -----


const weight = (w: LayerWeights, name: string): Tensor<"f32"> => {
  const t = w.get(name);
  if (t === undefined) throw new Error(`llmq internal: layer weights lack ${name} (load them with loadLayer)`);
  return t;
};

/** y[T, out] = x[T, in] · Wᵀ (+ b), through the active backend's sgemm. */
export const linear = (x: Tensor<"f32">, w: Tensor<"f32">, bias?: Tensor<"f32">): Tensor<"f32"> => {
  const [t, n] = [x.shape[0]!, w.shape[0]!];
  const y = linearInto(x, w, new Float32Array(t * n));
  if (bias !== undefined) {
    const b = bias.data;
    for (let r = 0; r < t; r++) for (let j = 0; j < n; j++) y[r * n + j] = y[r * n + j]! + b[j]!;
  }
  return new Tensor("f32", [t, n], y);
};

/** x · wᵀ into `out` (T·out_features floats, overwritten): `linear` without a bias, into a buffer the caller reuses. */
export const linearInto = (x: Tensor<"f32">, w: Tensor<"f32">, out: Float32Array): Float32Array => {
  const [t, k] = x.shape as [number, number];
  const [n, kw] = w.shape as [number, number];
  if (kw !== k || out.length < t * n) throw new Error(`llmq internal: linear input [${t}, ${k}] and weight [${n}, ${kw}] do not fit an output of ${out.length}`);
  kernels().sgemm(t, n, k, x.data, false, w.data, true, out, 1, 0);
  return out;
};

/** HF LlamaRMSNorm of each row of x [T, hidden] (@llmq/tensor's `rmsNorm` kernel). */
export const rmsNorm = (x: Tensor<"f32">, w: Tensor<"f32">, eps: number): Tensor<"f32"> => {
  const [t, h] = x.shape as [number, number];
  const out = new Float32Array(t * h);
  kernels().rmsNorm(x.data, t, h, w.data, eps, out);
  return new Tensor("f32", [t, h], out);
};

const add = (a: Tensor<"f32">, b: Tensor<"f32">): Tensor<"f32"> => {
  const out = new Float32Array(a.size);
  kernels().add(a.data, b.data, out.length, out);
  return new Tensor("f32", a.shape, out);
};

/**
 * Causal (optionally sliding-window) grouped-query attention of T new tokens; q [T, H·D], k/v [past + T, KV·D] (the
 * cached positions then the new ones) → [T, H·D]. With `sequences` > 1 (no cache), the T rows are that many
 * equal-length sequences stacked, each attending to its own keys only.
 */
const attention = (cfg: LlamaConfig, q: Float32Array, k: Float32Array, v: Float32Array, tokens: number, past: number, sequences: number): Float32Array => {
  const [h, kvh, d] = [cfg.num_attention_heads, cfg.num_key_value_heads, cfg.head_dim];
  const out = new Float32Array(tokens * h * d);
  const t = tokens / sequences;
  for (let s = 0; s < sequences; s++) {
    const rows = (a: Float32Array, width: number): Float32Array => (sequences === 1 ? a : a.subarray(s * t * width, (s + 1) * t * width));
    kernels().causalAttention(rows(q, h * d), rows(k, kvh * d), rows(v, kvh * d), t, past, h, kvh, d, cfg.sliding_window ?? 0, 1 / Math.sqrt(d), rows(out, h * d));
  }
  return out;
};

/** The keys and values attention reads: the cache's (past and new) when there is one, else the window's own. */
const attendedKV = (hooks: LayerHooks | undefined, k: Tensor<"f32">, v: Tensor<"f32">, tokens: number): E.Either<ModelError, { k: Float32Array; v: Float32Array; past: number }> => {
  const cache = hooks?.kvCache;
  if (cache === undefined) return E.right({ k: k.data, v: v.data, past: 0 });
  return pipe(
    cache.append(k.data, v.data, tokens),
    E.bimap(
      (e) => forwardFailed("self_attn.kv_cache", e),
      (r) => ({ k: r.k, v: r.v, past: r.tokens - tokens }),
    ),
  );
};

// ----- forward -----

/** past..past+T−1, or 0..T/s−1 repeated for s stacked sequences. */
const defaultPositions = (tokens: number, past = 0, sequences = 1): Int32Array => Int32Array.from({ length: tokens }, (_, i) => past + (i % (tokens / sequences)));

/** Stacked sequences: whole, of equal length, and never with a KV cache (it holds one sequence). */
const checkSequences = (tokens: number, sequences: number, hooks: LayerHooks | undefined): void => {
  if (!(Number.isInteger(sequences) && sequences >= 1 && tokens % sequences === 0) || (sequences > 1 && hooks?.kvCache !== undefined))
    throw new Error(`llmq internal: ${sequences} stacked sequences of ${tokens} tokens${hooks?.kvCache !== undefined ? " with a KV cache" : ""}`);
};

const checkHidden = (cfg: LlamaConfig, hidden: Tensor<"f32">): void => {
  if (hidden.rank !== 2 || hidden.shape[1] !== cfg.hidden_size)
    throw new Error(`llmq internal: a decoder block expects [T, ${cfg.hidden_size}], got ${hidden.toString()}`);
};

/** The input of a group of linears as they read it: transformed (online rotations), then tapped once for the group. */
const groupInput = (hooks: LayerHooks | undefined, locals: ReadonlyArray<string>, x: Tensor<"f32">): E.Either<ModelError, Tensor<"f32">> => {
  const xg = hooks?.transformGroupInput === undefined ? E.right(x) : hooks.transformGroupInput(locals, x);
  if (E.isLeft(xg)) return E.left(forwardFailed(locals[0]!, xg.left));
  hooks?.onLinearInput?.(locals, xg.right);
  return xg;
};

/** Linears fed by `x`: the input tapped once for the whole group, then (optionally transformed) multiplied per module. */
const linears = (
  weights: LayerWeights,
  hooks: LayerHooks | undefined,
  locals: ReadonlyArray<string>,
  x: Tensor<"f32">,
): E.Either<ModelError, ReadonlyArray<Tensor<"f32">>> => {
  const xg = groupInput(hooks, locals, x);
  if (E.isLeft(xg)) return xg;
  const out: Tensor<"f32">[] = [];
  for (const local of locals) {
    const xin = hooks?.transformLinearInput === undefined ? xg : hooks.transformLinearInput(local, xg.right);
    if (E.isLeft(xin)) return E.left(forwardFailed(local, xin.left));
    const y = linear(xin.right, weight(weights, `${local}.weight`), weights.get(`${local}.bias`));
    const yo = hooks?.transformLinearOutput === undefined ? E.right(y) : hooks.transformLinearOutput(local, y);
    if (E.isLeft(yo)) return E.left(forwardFailed(local, yo.left));
    out.push(yo.right);
  }
  return E.right(out);
};

/**
 * HF LlamaAttention alone: the normed input xa [T, hidden] → o_proj(attention(q, k, v)) [T, hidden], without the
 * residual. `positions` default to 0..T−1, or past..past+T−1 after the `past` positions of `hooks.kvCache`.
 * `sequences` > 1: xa stacks that many equal-length sequences (one GEMM for all of them; attention per sequence;
 * every row computes exactly what it would alone); positions then default to 0..T/s−1 for each.
 */
export const selfAttentionForward = (
  cfg: LlamaConfig,
  weights: LayerWeights,
  xa: Tensor<"f32">,
  positions?: Int32Array,
  hooks?: LayerHooks,
  sequences = 1,
): E.Either<ModelError, Tensor<"f32">> => {
  checkHidden(cfg, xa);
  const tokens = xa.shape[0]!;
  checkSequences(tokens, sequences, hooks);
  const pos = positions ?? defaultPositions(tokens, hooks?.kvCache?.length() ?? 0, sequences);
  if (pos.length !== tokens) throw new Error(`llmq internal: ${pos.length} positions for ${tokens} tokens`);
  return pipe(
    linears(weights, hooks, ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], xa),
    E.chain(([q, k, v]) => {
      const { cos, sin } = ropeCosSin(ropeInvFreq(cfg), pos);
      kernels().rope(q!.data, tokens, cfg.num_attention_heads, cfg.head_dim, cos, sin);
      kernels().rope(k!.data, tokens, cfg.num_key_value_heads, cfg.head_dim, cos, sin);
      const qk = hooks?.transformQueryKey === undefined ? E.right({ q: q!, k: k! }) : hooks.transformQueryKey(q!, k!);
      if (E.isLeft(qk)) return E.left(forwardFailed("self_attn", qk.left));
      hooks?.onAttentionKV?.(qk.right.k, v!);
      return E.chain((kv: { k: Float32Array; v: Float32Array; past: number }) => {
        const ctx = new Tensor("f32", [tokens, cfg.num_attention_heads * cfg.head_dim], attention(cfg, qk.right.q.data, kv.k, kv.v, tokens, kv.past, sequences));
        return linears(weights, hooks, ["self_attn.o_proj"], ctx);
      })(attendedKV(hooks, qk.right.k, v!, tokens));
    }),
    E.map(([o]) => o!),
  );
};

/**
 * The attention sub-block (input_layernorm, HF LlamaAttention, the residual): hidden [T, hidden] →
 * hidden + o_proj(attention(norm(hidden))). `positions` default to 0..T−1; `sequences` as in selfAttentionForward.
 */
export const attentionBlockForward = (
  cfg: LlamaConfig,
  weights: LayerWeights,
  hidden: Tensor<"f32">,
  positions?: Int32Array,
  hooks?: LayerHooks,
  sequences = 1,
): E.Either<ModelError, Tensor<"f32">> => {
  checkHidden(cfg, hidden);
  const xa = rmsNorm(hidden, weight(weights, "input_layernorm.weight"), cfg.rms_norm_eps);
  return E.map((o: Tensor<"f32">) => add(hidden, o))(selfAttentionForward(cfg, weights, xa, positions, hooks, sequences));
};

/** silu(gate(xm)) · up(xm): the input of down_proj. */
const mlpHidden = (weights: LayerWeights, xm: Tensor<"f32">, hooks?: LayerHooks): E.Either<ModelError, Tensor<"f32">> =>
  E.map(([gate, up]: ReadonlyArray<Tensor<"f32">>) => {
    const act = new Float32Array(gate!.size);
    kernels().siluMul(gate!.data, up!.data, act.length, act);
    return new Tensor("f32", gate!.shape, act);
  })(linears(weights, hooks, ["mlp.gate_proj", "mlp.up_proj"], xm));

/** HF LlamaMLP alone: the normed input xm [T, hidden] → down(silu(gate(xm)) · up(xm)), without the residual. */
export const mlpForward = (weights: LayerWeights, xm: Tensor<"f32">, hooks?: LayerHooks): E.Either<ModelError, Tensor<"f32">> =>
  pipe(
    mlpHidden(weights, xm, hooks),
    E.chain((act) => linears(weights, hooks, ["mlp.down_proj"], act)),
    E.map(([down]) => down!),
  );

/** post_attention_layernorm of the attention block's output: the MLP's input. */
const mlpNorm = (cfg: LlamaConfig, weights: LayerWeights, h: Tensor<"f32">): Tensor<"f32"> => {
  checkHidden(cfg, h);
  return rmsNorm(h, weight(weights, "post_attention_layernorm.weight"), cfg.rms_norm_eps);
};

/** The MLP sub-block behind post_attention_layernorm, plus the residual: h → h + down(silu(gate(norm h)) · up(norm h)). */
export const mlpBlockForward = (cfg: LlamaConfig, weights: LayerWeights, h: Tensor<"f32">, hooks?: LayerHooks): E.Either<ModelError, Tensor<"f32">> =>
  E.map((down: Tensor<"f32">) => add(h, down))(mlpForward(weights, mlpNorm(cfg, weights, h), hooks));

/**
 * One Llama decoder layer on one sequence: hidden [T, hidden_size] → [T, hidden_size]. `positions` default to
 * 0..T−1. Biases are applied where `weights` hold them (Qwen2 q/k/v, attention_bias, mlp_bias). `sequences` > 1:
 * that many equal-length sequences stacked in `hidden`, each row computed exactly as alone (see selfAttentionForward).
 */
export const decoderLayerForward = (
  cfg: LlamaConfig,
  weights: LayerWeights,
  hidden: Tensor<"f32">,
  positions?: Int32Array,
  hooks?: LayerHooks,
  sequences = 1,
): E.Either<ModelError, Tensor<"f32">> =>
  pipe(
    attentionBlockForward(cfg, weights, hidden, positions, hooks, sequences),
    E.chain((h) => mlpBlockForward(cfg, weights, h, hooks)),
  );

/**
 * The decoder layer's observation points alone: every hook of `decoderLayerForward` sees what it would, but the layer
 * stops once down_proj's input is observed (its product and the residual are not computed). For calibration windows
 * whose outputs nobody reads: the next layer's inputs come from the propagation pass.
 */
export const decoderLayerTaps = (
  cfg: LlamaConfig,
  weights: LayerWeights,
  hidden: Tensor<"f32">,
  positions?: Int32Array,
  hooks?: LayerHooks,
  sequences = 1,
): E.Either<ModelError, void> =>
  pipe(
    attentionBlockForward(cfg, weights, hidden, positions, hooks, sequences),
    E.chain((h) => mlpHidden(weights, mlpNorm(cfg, weights, h), hooks)),
    E.chain((act) => groupInput(hooks, ["mlp.down_proj"], act)),
    E.map(() => undefined),
  );

/** Rows of the embedding matrix [vocab, hidden] for each token → [T, hidden] (@llmq/tensor's `embedding`). */
export const embed = (table: Tensor<"f32">, tokens: Int32Array): Tensor<"f32"> => {
  const e = embedding(table, Array.from(tokens));
  if (E.isLeft(e)) throw new Error(`llmq internal: ${formatTensorError(e.left)}`);
  return e.right;
};

/** Final RMSNorm and lm_head: hidden [T, hidden] → logits [T, vocab]. */
export const headForward = (cfg: LlamaConfig, head: HeadWeights, hidden: Tensor<"f32">): Tensor<"f32"> => {
  const [t, vocab] = [hidden.shape[0]!, head.lmHead.shape[0]!];
  return new Tensor("f32", [t, vocab], headLogitRows(cfg, head, hidden, 0, t, new Float32Array(t * vocab)));
};

/**
 * The logits of rows [r0, r1) of hidden, into `out` ([r1 − r0, vocab] floats): headForward's values for those rows
 * (both steps are row-wise; a GEMM of more than 4 rows gives every row the same bits whatever the row count), so a
 * scorer can go through a window in blocks with one reused buffer instead of materialising [T, vocab].
 */
export const headLogitRows = (cfg: LlamaConfig, head: HeadWeights, hidden: Tensor<"f32">, r0: number, r1: number, out: Float32Array): Float32Array => {
  const h = hidden.shape[1]!;
  const rows = new Tensor("f32", [r1 - r0, h], hidden.data.subarray(r0 * h, r1 * h));
  return linearInto(rmsNorm(rows, head.norm, cfg.rms_norm_eps), head.lmHead, out);
};
