// A llama.cpp GGUF file as an HF Llama model: config from the `llama.*` metadata, llama.cpp tensor names mapped back
// to HF names, and the q/k rows that llama.cpp's convert_hf_to_gguf.py permuted for its interleaved RoPE permuted
// back to HF's rotate-half (transformers' modeling_gguf_pytorch_utils `_reverse_permute_weights`).
import { type GgufFile, type GgufValue, type SerializationError, formatSerializationError, openGguf } from "@llmq/serialization";
import { Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type ModelError, checkpointError, formatModelError, invalidCheckpoint, invalidConfig, missingTensor, unsupportedArchitecture } from "./errors.js";
import { ggufTokenizerFiles } from "./gguf-tokenizer.js";
import { interleavedToRotateHalf } from "./llama2c.js";
import type { WeightSource } from "./weight-source.js";

export const GGUF_SUPPORTED_ARCHITECTURES: ReadonlyArray<string> = ["llama"];

const fromSerialization = (e: SerializationError): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));

// ----- names -----

const GLOBAL_NAMES: Readonly<Record<string, string>> = {
  "token_embd.weight": "model.embed_tokens.weight",
  "output_norm.weight": "model.norm.weight",
  "output.weight": "lm_head.weight",
};

const LAYER_NAMES: Readonly<Record<string, string>> = {
  attn_norm: "input_layernorm",
  attn_q: "self_attn.q_proj",
  attn_k: "self_attn.k_proj",
  attn_v: "self_attn.v_proj",
  attn_output: "self_attn.o_proj",
  ffn_norm: "post_attention_layernorm",
  ffn_gate: "mlp.gate_proj",
  ffn_up: "mlp.up_proj",
  ffn_down: "mlp.down_proj",
};

/** The HF name of a llama.cpp Llama tensor ("blk.3.attn_q.weight" → "model.layers.3.self_attn.q_proj.weight"). */
export const ggufToHfName = (name: string): string | undefined => {
  const g = GLOBAL_NAMES[name];
  if (g !== undefined) return g;
  const m = /^blk\.(\d+)\.([a-z_]+)\.(weight|bias)$/.exec(name);
  const local = m === null ? undefined : LAYER_NAMES[m[2]!];
  return local === undefined ? undefined : `model.layers.${m![1]}.${local}.${m![3]}`;
};

// ----- config -----

type Meta = ReadonlyMap<string, GgufValue>;

const scalar = (meta: Meta, key: string): GgufValue["value"] | undefined => {
  const v = meta.get(key);
  return v === undefined || v.type === "ARRAY" ? undefined : typeof v.value === "bigint" ? Number(v.value) : v.value;
};

const num =
  (file: string, meta: Meta) =>
  (key: string, dflt?: number): E.Either<ModelError, number> => {
    const v = scalar(meta, key) ?? dflt;
    return typeof v === "number" && Number.isFinite(v) ? E.right(v) : E.left(invalidConfig(file, key, v === undefined ? "is missing from the GGUF metadata" : `must be a number, got ${String(v)}`));
  };

/** What must be absent for the plain Llama forward to be exact: RoPE scaling variants llmq does not read from GGUF. */
const checkUnsupported = (file: string, meta: Meta, names: ReadonlyArray<string>): E.Either<ModelError, void> => {
  const scaling = scalar(meta, "llama.rope.scaling.type");
  if (scaling !== undefined && scaling !== "none") return E.left(invalidConfig(file, "llama.rope.scaling.type", `${String(scaling)} RoPE scaling is not read from GGUF yet`));
  const unknown = names.find((n) => ggufToHfName(n) === undefined);
  return unknown === undefined ? E.right(undefined) : E.left(invalidCheckpoint(file, `tensor ${unknown} has no HF Llama counterpart`));
};

/** config.json (LlamaForCausalLM) from a GGUF file's `llama.*` and `tokenizer.ggml.*` metadata. */
export const ggufLlamaConfigJson = (file: string, meta: Meta, tensorNames: ReadonlyArray<string>): E.Either<ModelError, Record<string, unknown>> => {
  const arch = scalar(meta, "general.architecture");
  if (typeof arch !== "string" || !GGUF_SUPPORTED_ARCHITECTURES.includes(arch)) return E.left(unsupportedArchitecture(file, String(arch), GGUF_SUPPORTED_ARCHITECTURES));
  const n = num(file, meta);
  const tokens = meta.get("tokenizer.ggml.tokens");
  const embd = tensorNames.includes("token_embd.weight");
  return pipe(
    checkUnsupported(file, meta, tensorNames),
    E.chain(() =>
      E.sequenceArray([
        n("llama.embedding_length"),
        n("llama.feed_forward_length"),
        n("llama.block_count"),
        n("llama.attention.head_count"),
        n("llama.context_length"),
        n("llama.attention.layer_norm_rms_epsilon"),
        n("llama.rope.freq_base", 10000),
        n("llama.vocab_size", tokens?.type === "ARRAY" ? tokens.value.length : Number.NaN),
      ]),
    ),
    E.chain(([hidden, ffn, layers, heads, ctx, eps, theta, vocab]) =>
      pipe(
        E.sequenceArray([n("llama.attention.head_count_kv", heads!), n("llama.attention.key_length", hidden! / heads!)]),
        E.map(([kvHeads, headDim]) => ({
          architectures: ["LlamaForCausalLM"],
          attention_bias: false,
          attention_dropout: 0,
          bos_token_id: scalar(meta, "tokenizer.ggml.bos_token_id") ?? null,
          eos_token_id: scalar(meta, "tokenizer.ggml.eos_token_id") ?? null,
          pad_token_id: scalar(meta, "tokenizer.ggml.padding_token_id") ?? null,
          head_dim: headDim,
          hidden_act: "silu",
          hidden_size: hidden,
          initializer_range: 0.02,
          intermediate_size: ffn,
          max_position_embeddings: ctx,
          mlp_bias: false,
          model_type: "llama",
          num_attention_heads: heads,
          num_hidden_layers: layers,
          num_key_value_heads: kvHeads,
          pretraining_tp: 1,
          rms_norm_eps: eps,
          rope_scaling: null,
          rope_theta: theta,
          // llama.cpp writes output.weight only when the head is not the embedding matrix.
          tie_word_embeddings: embd && !tensorNames.includes("output.weight"),
          torch_dtype: "float32",
          use_cache: true,
          vocab_size: vocab,
        })),
      ),
    ),
  );
};

// ----- weights -----

/**
 * The GGUF file's tensors under HF names, dequantized to f32 on read; q_proj / k_proj rows are permuted back to
 * rotate-half with the attention / KV head counts.
 */
export const ggufWeightSource = (g: GgufFile, heads: number, kvHeads: number): WeightSource => {
  const toGguf = new Map<string, string>();
  for (const n of g.names) toGguf.set(ggufToHfName(n)!, n);
  return {
    names: () => [...toGguf.keys()],
    shape: (name) => {
      const n = toGguf.get(name);
      return n === undefined ? undefined : g.info(n)?.shape;
    },
    // What `read` gives (the stored ggml type is in GgufFile.info).
    dtype: (name) => (toGguf.has(name) ? "f32" : undefined),
    read: (name) => {
      const n = toGguf.get(name);
      if (n === undefined) return TE.left(missingTensor(name, g.path));
      const h = /\.self_attn\.(q|k)_proj\.weight$/.exec(name)?.[1];
      return pipe(
        g.read(n),
        TE.mapLeft(fromSerialization),
        TE.map((t) => {
          if (h === undefined) return t;
          const nh = h === "q" ? heads : kvHeads;
          const [rows, cols] = t.shape as [number, number];
          return new Tensor("f32", t.shape, interleavedToRotateHalf(t.data as Float32Array, nh, rows / nh, cols));
        }),
      );
    },
  };
};

/** An opened GGUF Llama: the file, its HF config.json and a lazy weight source (close the file when done). */
export interface GgufModel {
  readonly file: GgufFile;
  readonly configJson: Record<string, unknown>;
  readonly source: WeightSource;
}

export const openGgufModel = (path: string): TE.TaskEither<ModelError, GgufModel> =>
  pipe(
    openGguf(path),
    TE.mapLeft(fromSerialization),
    TE.chain((file) =>
      pipe(
        ggufLlamaConfigJson(path, file.metadata, file.names),
        E.map((configJson) => ({
          file,
          configJson,
          source: ggufWeightSource(file, configJson.num_attention_heads as number, configJson.num_key_value_heads as number),
        })),
        TE.fromEither,
        TE.orElse((e) =>
          pipe(
            TE.fromTask(() => file.close()),
            TE.chain(() => TE.left(e)),
          ),
        ),
      ),
    ),
  );

// ----- conversion -----

/** A GGUF Llama converted to a dense HF model in memory. */
export interface ConvertedGguf {
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson: Record<string, unknown>;
  /** HF names → tensors of the asked dtype, in file order. */
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** The source ggml type of each tensor (for the report). */
  readonly sourceTypes: ReadonlyMap<string, string>;
  readonly tokenizerFiles?: Readonly<Record<string, Record<string, unknown>>>;
  /** Why no tokenizer files were made (e.g. a sentencepiece vocabulary), when so. */
  readonly tokenizerProblem?: string;
}

export const GGUF_OUTPUT_DTYPES = ["f32", "bf16", "f16"] as const;
export type GgufOutputDType = (typeof GGUF_OUTPUT_DTYPES)[number];

/** Reads every tensor of the source in order, dequantized (and cast to `dtype` unless f32). */
const readAll = (m: GgufModel, dtype: GgufOutputDType): TE.TaskEither<ModelError, Map<string, Tensor>> => async () => {
  const out = new Map<string, Tensor>();
  for (const name of m.source.names()) {
    const r = await m.source.read(name)();
    if (E.isLeft(r)) return r;
    out.set(name, dtype === "f32" ? r.right : cast(r.right, dtype));
  }
  return E.right(out);
};

/**
 * `llmq convert --from gguf`: a llama.cpp GGUF Llama → HF config, generation config, dense tensors and (for a gpt2
 * byte-level vocabulary) tokenizer files, all in memory.
 */
export const convertGguf = (path: string, opts: { readonly dtype?: GgufOutputDType } = {}): TE.TaskEither<ModelError, ConvertedGguf> =>
  pipe(
    openGgufModel(path),
    TE.chain((m) =>
      pipe(
        readAll(m, opts.dtype ?? "f32"),
        TE.map((tensors): ConvertedGguf => {
          const tok = ggufTokenizerFiles(path, m.file.metadata);
          const c = m.configJson;
          return {
            configJson: { ...c, torch_dtype: TORCH_NAMES[opts.dtype ?? "f32"] },
            generationConfigJson: { _from_model_config: true, bos_token_id: c.bos_token_id, eos_token_id: c.eos_token_id },
            tensors,
            sourceTypes: new Map(m.file.header.tensors.map((t) => [ggufToHfName(t.name)!, t.type.name])),
            ...(E.isRight(tok) ? { tokenizerFiles: tok.right } : { tokenizerProblem: formatModelError(tok.left) }),
          };
        }),
        TE.chainFirst(() => TE.fromTask(() => m.file.close())),
        TE.orElse((e) =>
          pipe(
            TE.fromTask(() => m.file.close()),
            TE.chain(() => TE.left(e)),
          ),
        ),
      ),
    ),
  );

const TORCH_NAMES: Readonly<Record<GgufOutputDType, string>> = { f32: "float32", bf16: "bfloat16", f16: "float16" };
