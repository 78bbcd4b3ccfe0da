import type { LlamaConfig } from "./llama-config.js";

// What the generic pipeline and the modifiers need to know about a model family, so that neither holds module names:
// where the decoder layers are, which linears read the same input (one Hessian / one observation serves them all),
// which linears a runtime fuses (vLLM's qkv_proj / gate_up_proj share one NVFP4 global scale), which norm feeds which
// linears (SmoothQuant / AWQ mappings), and the tensors outside the layers (embedding, final norm, head).

// ----- model -----

/** A linear of a decoder layer, by its local HF name ("self_attn.q_proj"), with its (out, in) feature counts. */
export interface LayerLinear {
  readonly local: string;
  readonly out: number;
  readonly in: number;
}

/** A norm and the linears that read its output (LC's smooth layer → balance layers). */
export interface NormMapping {
  readonly norm: string;
  readonly linears: ReadonlyArray<string>;
}

export interface Architecture {
  /** HF model_type values this table describes. */
  readonly modelTypes: ReadonlyArray<string>;
  /** The sequential target (one subgraph of LC's sequential pipeline). */
  readonly layerClass: string;
  /** "model.layers.3." for layer 3. */
  readonly layerPrefix: (layer: number) => string;
  /** The decoder layer a tensor belongs to, or null for the embedding, final norm and head. */
  readonly layerOf: (tensor: string) => number | null;
  /** The linears of one decoder layer in execution order. */
  readonly layerLinears: (cfg: LlamaConfig) => ReadonlyArray<LayerLinear>;
  /** Linears fed the very same tensor, by local name, in execution order (the first one is where it is tapped). */
  readonly sharedInputs: ReadonlyArray<ReadonlyArray<string>>;
  /** Linears a runtime fuses into one matmul (LC FUSED_LAYER_NAMES): they share an NVFP4 global scale. */
  readonly fusedGroups: ReadonlyArray<ReadonlyArray<string>>;
  /** The norms of a decoder layer (1-D weights), by local name. */
  readonly layerNorms: ReadonlyArray<string>;
  /** Norm → linears it feeds (LC's default SmoothQuant / AWQ mappings for this family). */
  readonly normMappings: ReadonlyArray<NormMapping>;
  /** Linear → linear mappings AWQ may balance when shapes allow (v_proj → o_proj, up_proj → down_proj). */
  readonly linearMappings: ReadonlyArray<{ readonly from: string; readonly to: ReadonlyArray<string> }>;
  readonly embedding: string;
  readonly finalNorm: string;
  /** The output projection module ("lm_head"); its weight may be tied to the embedding. */
  readonly head: string;
}

// ----- the Llama family -----

const LAYER = /^model\.layers\.(\d+)\./;

const llamaLinears = (cfg: LlamaConfig): ReadonlyArray<LayerLinear> => {
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

/** Llama, Mistral and Qwen2 (HF `LlamaDecoderLayer` layout; Qwen2 adds q/k/v biases, Mistral a sliding window). */
export const LLAMA_ARCHITECTURE: Architecture = {
  modelTypes: ["llama", "mistral", "qwen2"],
  layerClass: "LlamaDecoderLayer",
  layerPrefix: (i) => `model.layers.${i}.`,
  layerOf: (n) => {
    const m = LAYER.exec(n);
    return m ? Number(m[1]) : null;
  },
  layerLinears: llamaLinears,
  sharedInputs: [
    ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
    ["mlp.gate_proj", "mlp.up_proj"],
  ],
  fusedGroups: [
    ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
    ["mlp.gate_proj", "mlp.up_proj"],
  ],
  layerNorms: ["input_layernorm", "post_attention_layernorm"],
  normMappings: [
    { norm: "input_layernorm", linears: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"] },
    { norm: "post_attention_layernorm", linears: ["mlp.gate_proj", "mlp.up_proj"] },
  ],
  linearMappings: [
    { from: "self_attn.v_proj", to: ["self_attn.o_proj"] },
    { from: "mlp.up_proj", to: ["mlp.down_proj"] },
  ],
  embedding: "model.embed_tokens.weight",
  finalNorm: "model.norm.weight",
  head: "lm_head",
};

const ARCHITECTURES: ReadonlyArray<Architecture> = [LLAMA_ARCHITECTURE];

/** The table of a decoded config's model_type (the config decoder only admits types some table describes). */
export const architectureOf = (cfg: Pick<LlamaConfig, "model_type">): Architecture =>
  ARCHITECTURES.find((a) => a.modelTypes.includes(cfg.model_type)) ?? LLAMA_ARCHITECTURE;
