import { type LlamaConfig, ropeInvFreq } from "@llmq/models";
import { ropeCosSin } from "@llmq/tensor";
import type { QuantizationArgs, SchemeError } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type RopeTables, causalAttention, rope } from "./attention.js";
import { type FakeQuantParams, fakeQuantInputSTE, fakeQuantSTE } from "./fake-quant-ste.js";
import { add, embedding, linear, rmsNorm, siluMul } from "./ops.js";
import type { Tape, Var } from "./tape.js";

// The Llama-family decoder (HF LlamaForCausalLM, as @llmq/models runs it) on the tape: embedding, per layer
// RMSNorm → q/k/v → RoPE → causal GQA → o_proj → residual, RMSNorm → SiLU(gate)·up → down_proj → residual, final
// norm and the head. Every linear whose module has fake-quant params runs on its fake-quantized weight (STE).

// ----- model -----

/** The model's tensors on the tape, by HF name ("model.layers.0.self_attn.q_proj.weight"); a tied head reuses the embedding. */
export type TrainWeights = ReadonlyMap<string, Var>;

/** Fake quantization of the linears (full module name → frozen qparams), applied while `active`. */
export interface FakeQuantPlan {
  readonly modules: ReadonlyMap<string, FakeQuantParams>;
  readonly active: boolean;
  /** Dynamic input-activation args of the modules whose inputs are fake-quantized too (W8A8-style), by module name. */
  readonly inputs?: ReadonlyMap<string, QuantizationArgs>;
  /** The fake-quantized weights by module, already on a tape (shared by the windows of a batch); computed when absent. */
  readonly fakeQuantized?: ReadonlyMap<string, Var>;
}

export const LAYER_LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"] as const;
export const LAYER_NORMS = ["input_layernorm", "post_attention_layernorm"] as const;

/** The HF tensor names a Llama training forward reads (the head only when untied). */
export const trainTensorNames = (cfg: LlamaConfig): ReadonlyArray<string> => [
  "model.embed_tokens.weight",
  ...Array.from({ length: cfg.num_hidden_layers }, (_, i) => [...LAYER_NORMS, ...LAYER_LINEARS].map((m) => `model.layers.${i}.${m}.weight`)).flat(),
  "model.norm.weight",
  ...(cfg.tie_word_embeddings ? [] : ["lm_head.weight"]),
];

/** What the training forward cannot run: biases and sliding windows (stories260K, Llama, TinyLlama have neither). */
export const trainForwardSupport = (cfg: LlamaConfig): E.Either<string, LlamaConfig> =>
  cfg.attention_bias || cfg.mlp_bias
    ? E.left("training does not support attention_bias / mlp_bias models yet")
    : cfg.sliding_window !== null
      ? E.left("training does not support sliding-window attention yet")
      : E.right(cfg);

// ----- forward -----

/**
 * The fake-quantized weight of every planned module, recorded on `tape`: a batch computes them once, its windows'
 * forwards read them (`FakeQuantPlan.fakeQuantized`), and `runBackward(tape)` then passes the summed gradients through
 * the STE into the weights.
 */
export const fakeQuantizeWeights = (tape: Tape, w: TrainWeights, plan: FakeQuantPlan): E.Either<SchemeError, ReadonlyMap<string, Var>> => {
  const out = new Map<string, Var>();
  if (!plan.active) return E.right(out);
  for (const [module, p] of plan.modules) {
    const weight = w.get(`${module}.weight`) ?? (module === "lm_head" ? w.get("model.embed_tokens.weight") : undefined);
    if (weight === undefined) continue;
    const r = fakeQuantSTE(tape, weight, p);
    if (E.isLeft(r)) return r;
    out.set(module, r.right);
  }
  return E.right(out);
};

const get = (w: TrainWeights, name: string): Var => {
  const v = w.get(name);
  if (v === undefined) throw new Error(`llmq internal: training weights lack ${name}`);
  return v;
};

type Linear = (x: Var, module: string) => E.Either<SchemeError, Var>;

const linearOf =
  (tape: Tape, w: TrainWeights, plan: FakeQuantPlan): Linear =>
  (x0, module) => {
    const ia = plan.active ? plan.inputs?.get(module) : undefined;
    const xq = ia === undefined ? E.right(x0) : fakeQuantInputSTE(tape, x0, ia);
    if (E.isLeft(xq)) return xq;
    const x = xq.right;
    const weight = get(w, `${module}.weight`);
    const p = plan.active ? plan.modules.get(module) : undefined;
    if (p === undefined) return E.right(linear(tape, x, weight));
    const shared = plan.fakeQuantized?.get(module);
    if (shared !== undefined) return E.right(linear(tape, x, shared));
    return E.map((wq: Var) => linear(tape, x, wq))(fakeQuantSTE(tape, weight, p));
  };

const decoderLayer = (tape: Tape, cfg: LlamaConfig, w: TrainWeights, lin: Linear, i: number, h: Var, tables: RopeTables): E.Either<SchemeError, Var> => {
  const p = `model.layers.${i}.`;
  const xa = rmsNorm(tape, h, get(w, `${p}input_layernorm.weight`), cfg.rms_norm_eps);
  const qkv = [lin(xa, `${p}self_attn.q_proj`), lin(xa, `${p}self_attn.k_proj`), lin(xa, `${p}self_attn.v_proj`)];
  for (const r of qkv) if (E.isLeft(r)) return r;
  const [q, k, v] = qkv.map((r) => (r as E.Right<Var>).right) as [Var, Var, Var];
  const shape = { heads: cfg.num_attention_heads, kvHeads: cfg.num_key_value_heads, headDim: cfg.head_dim };
  const ctx = causalAttention(tape, rope(tape, q, shape.heads, shape.headDim, tables), rope(tape, k, shape.kvHeads, shape.headDim, tables), v, shape);
  const o = lin(ctx, `${p}self_attn.o_proj`);
  if (E.isLeft(o)) return o;
  const h1 = add(tape, h, o.right);
  const xm = rmsNorm(tape, h1, get(w, `${p}post_attention_layernorm.weight`), cfg.rms_norm_eps);
  const [g, u] = [lin(xm, `${p}mlp.gate_proj`), lin(xm, `${p}mlp.up_proj`)];
  if (E.isLeft(g)) return g;
  if (E.isLeft(u)) return u;
  const d = lin(siluMul(tape, g.right, u.right), `${p}mlp.down_proj`);
  return E.map((dr: Var) => add(tape, h1, dr))(d);
};

/** Logits [T, vocab] of one window of token ids (positions 0..T−1), every op recorded on the tape. */
export const llamaTrainLogits = (tape: Tape, cfg: LlamaConfig, w: TrainWeights, ids: Int32Array, plan: FakeQuantPlan): E.Either<SchemeError, Var> => {
  const tables = ropeCosSin(ropeInvFreq(cfg), Int32Array.from({ length: ids.length }, (_, i) => i));
  const lin = linearOf(tape, w, plan);
  let h = embedding(tape, get(w, "model.embed_tokens.weight"), ids);
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const r = decoderLayer(tape, cfg, w, lin, i, h, tables);
    if (E.isLeft(r)) return r;
    h = r.right;
  }
  const hn = rmsNorm(tape, h, get(w, "model.norm.weight"), cfg.rms_norm_eps);
  const head = w.get("lm_head.weight") ?? get(w, "model.embed_tokens.weight");
  const p = plan.active ? plan.modules.get("lm_head") : undefined;
  if (p === undefined) return E.right(linear(tape, hn, head));
  const shared = plan.fakeQuantized?.get("lm_head");
  if (shared !== undefined) return E.right(linear(tape, hn, shared));
  return E.map((wq: Var) => linear(tape, hn, wq))(fakeQuantSTE(tape, head, p));
};
