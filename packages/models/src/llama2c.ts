import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { Tensor, nodeBuiltin } from "@llmq/tensor";
import { type ModelError, fileNotFound, invalidCheckpoint, ioError } from "./errors.js";
import { type LlamaConfig, decodeLlamaConfig } from "./llama-config.js";
import { type Llama2cVocab, llama2cTokenizerFiles, parseLlama2cTokenizer } from "./llama2c-tokenizer.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");

// ----- model -----

/** The 7 integers of a llama2.c header (vocab_size made positive; `sharedClassifier` says whether wcls = embedding). */
export interface Llama2cHeader {
  readonly version: 0 | 1;
  readonly dim: number;
  readonly hiddenDim: number;
  readonly nLayers: number;
  readonly nHeads: number;
  readonly nKvHeads: number;
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly sharedClassifier: boolean;
}

/** A llama2.c checkpoint converted to HF Llama names, layout and config (f32, lossless). */
export interface ConvertedModel {
  readonly config: LlamaConfig;
  /** config.json content (LlamaForCausalLM). */
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson: Record<string, unknown>;
  /** HF names ("model.layers.0.self_attn.q_proj.weight") → f32 tensors, in checkpoint order. */
  readonly tensors: ReadonlyMap<string, Tensor<"f32">>;
  /** tokenizer.json content, when a tokenizer.bin was given. */
  readonly tokenizerJson?: Record<string, unknown>;
  /** Every tokenizer file to write (tokenizer.json, tokenizer_config.json, special_tokens_map.json). */
  readonly tokenizerFiles?: Readonly<Record<string, Record<string, unknown>>>;
  readonly vocab?: Llama2cVocab;
}

const MAGIC_V1 = 0x616b3432; // "ak42"

// ----- parsing -----

/** Reads the header of a llama2.c checkpoint (legacy v0: 7 int32; v1: "ak42" magic, 256-byte header). */
export const parseLlama2cHeader = (path: string, buf: Uint8Array): E.Either<ModelError, Llama2cHeader & { readonly dataOffset: number }> => {
  if (buf.byteLength < 28) return E.left(invalidCheckpoint(path, `file of ${buf.byteLength} bytes is too short for a llama2.c header (28 bytes)`));
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const isV1 = dv.getUint32(0, true) === MAGIC_V1;
  if (isV1) {
    if (buf.byteLength < 256) return E.left(invalidCheckpoint(path, "v1 header must be 256 bytes"));
    const version = dv.getInt32(4, true);
    if (version !== 1) return E.left(invalidCheckpoint(path, `llama2.c version ${version} is not supported (supported: 0 (legacy), 1 (float32))`));
  }
  const base = isV1 ? 8 : 0;
  const ints = Array.from({ length: 7 }, (_, i) => dv.getInt32(base + 4 * i, true));
  const [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabRaw, seqLen] = ints as [number, number, number, number, number, number, number];
  const names = ["dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"];
  const bad = ints.findIndex((v, i) => (i === 5 ? v === 0 : v <= 0) || Math.abs(v) > 1 << 24);
  if (bad >= 0) return E.left(invalidCheckpoint(path, `header field ${names[bad]} = ${ints[bad]} is not a plausible positive size`));
  if (dim % nHeads !== 0 || nHeads % nKvHeads !== 0 || (dim / nHeads) % 2 !== 0)
    return E.left(invalidCheckpoint(path, `n_heads ${nHeads} / n_kv_heads ${nKvHeads} do not divide dim ${dim} into even head sizes`));
  const sharedClassifier = isV1 ? dv.getUint8(36) !== 0 : vocabRaw > 0;
  return E.right({
    version: isV1 ? 1 : 0,
    dim,
    hiddenDim,
    nLayers,
    nHeads,
    nKvHeads,
    vocabSize: Math.abs(vocabRaw),
    seqLen,
    sharedClassifier,
    dataOffset: isV1 ? 256 : 28,
  });
};

/** llama2.c applies RoPE to interleaved pairs (2i, 2i+1); HF rotates halves (i, i + d/2). Same map as HF's `permute`. */
export const interleavedToRotateHalf = (w: Float32Array, heads: number, headDim: number, cols: number): Float32Array<ArrayBuffer> => {
  const out = new Float32Array(w.length);
  const half = headDim / 2;
  for (let h = 0; h < heads; h++)
    for (let i = 0; i < half; i++)
      for (let c = 0; c < 2; c++) {
        const src = (h * headDim + 2 * i + c) * cols;
        const dst = (h * headDim + c * half + i) * cols;
        out.set(w.subarray(src, src + cols), dst);
      }
  return out;
};

/** HF config.json for a converted llama2.c model (values fixed by llama2.c's training code). */
export const llama2cConfigJson = (h: Llama2cHeader): Record<string, unknown> => ({
  architectures: ["LlamaForCausalLM"],
  attention_bias: false,
  attention_dropout: 0,
  bos_token_id: 1,
  eos_token_id: 2,
  head_dim: h.dim / h.nHeads,
  hidden_act: "silu",
  hidden_size: h.dim,
  initializer_range: 0.02,
  intermediate_size: h.hiddenDim,
  max_position_embeddings: h.seqLen,
  mlp_bias: false,
  model_type: "llama",
  num_attention_heads: h.nHeads,
  num_hidden_layers: h.nLayers,
  num_key_value_heads: h.nKvHeads,
  pretraining_tp: 1,
  rms_norm_eps: 1e-5,
  rope_scaling: null,
  rope_theta: 10000,
  tie_word_embeddings: h.sharedClassifier,
  torch_dtype: "float32",
  use_cache: true,
  vocab_size: h.vocabSize,
});

/** Splits the float32 payload of a llama2.c checkpoint into HF-named tensors. */
export const llama2cTensors = (path: string, buf: Uint8Array, h: Llama2cHeader & { readonly dataOffset: number }): E.Either<ModelError, Map<string, Tensor<"f32">>> => {
  const headDim = h.dim / h.nHeads;
  const kvDim = h.nKvHeads * headDim;
  const L = h.nLayers;
  // Entries: [name or null (skipped), shape] in file order.
  const perLayer = (local: string, shape: ReadonlyArray<number>): Array<[string, ReadonlyArray<number>]> =>
    Array.from({ length: L }, (_, i) => [`model.layers.${i}.${local}`, shape] as [string, ReadonlyArray<number>]);
  const emb: [string, ReadonlyArray<number>] = ["model.embed_tokens.weight", [h.vocabSize, h.dim]];
  const attnNorm = perLayer("input_layernorm.weight", [h.dim]);
  const ffnNorm = perLayer("post_attention_layernorm.weight", [h.dim]);
  const finalNorm: [string, ReadonlyArray<number>] = ["model.norm.weight", [h.dim]];
  const mats = [
    ...perLayer("self_attn.q_proj.weight", [h.dim, h.dim]),
    ...perLayer("self_attn.k_proj.weight", [kvDim, h.dim]),
    ...perLayer("self_attn.v_proj.weight", [kvDim, h.dim]),
    ...perLayer("self_attn.o_proj.weight", [h.dim, h.dim]),
  ];
  const ffn = [
    ...perLayer("mlp.gate_proj.weight", [h.hiddenDim, h.dim]),
    ...perLayer("mlp.down_proj.weight", [h.dim, h.hiddenDim]),
    ...perLayer("mlp.up_proj.weight", [h.hiddenDim, h.dim]),
  ];
  const cls: Array<[string, ReadonlyArray<number>]> = h.sharedClassifier ? [] : [["lm_head.weight", [h.vocabSize, h.dim]]];
  const freqs: Array<[string | null, ReadonlyArray<number>]> = [
    [null, [h.seqLen, headDim / 2]],
    [null, [h.seqLen, headDim / 2]],
  ];
  const order: Array<[string | null, ReadonlyArray<number>]> =
    h.version === 0
      ? [emb, ...attnNorm, ...mats, ...ffnNorm, ...ffn, finalNorm, ...freqs, ...cls]
      : [...attnNorm, ...ffnNorm, finalNorm, emb, ...mats, ...ffn, ...cls];
  const total = order.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
  const available = (buf.byteLength - h.dataOffset) / 4;
  // v0 files written before the freq_cis tables existed, or unshared-classifier files, must still have every weight.
  if (available < total)
    return E.left(invalidCheckpoint(path, `needs ${total} float32 values after the header for the shapes it declares, the file has ${Math.floor(available)}`));
  // Copy into a fresh, aligned buffer (a Node Buffer's slice is a view into a shared pool).
  const floats = new Float32Array(Uint8Array.prototype.slice.call(buf, h.dataOffset, h.dataOffset + total * 4).buffer);
  const out = new Map<string, Tensor<"f32">>();
  let off = 0;
  for (const [name, shape] of order) {
    const n = shape.reduce((x, y) => x * y, 1);
    if (name !== null) {
      let data: Float32Array<ArrayBuffer> = floats.slice(off, off + n);
      if (name.endsWith("q_proj.weight")) data = interleavedToRotateHalf(data, h.nHeads, headDim, h.dim);
      if (name.endsWith("k_proj.weight")) data = interleavedToRotateHalf(data, h.nKvHeads, headDim, h.dim);
      out.set(name, new Tensor("f32", shape, data));
    }
    off += n;
  }
  // HF order (embedding, layers in module order, norm, head) makes written files easy to read.
  const names = [
    "model.embed_tokens.weight",
    ...Array.from({ length: L }, (_, i) =>
      [
        "input_layernorm.weight",
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.o_proj.weight",
        "post_attention_layernorm.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
      ].map((l) => `model.layers.${i}.${l}`),
    ).flat(),
    "model.norm.weight",
    ...(h.sharedClassifier ? [] : ["lm_head.weight"]),
  ];
  return E.right(new Map(names.map((n) => [n, out.get(n)!] as const)));
};

const readBytes = (path: string, what: string): TE.TaskEither<ModelError, Uint8Array> =>
  TE.tryCatch(
    () => readFile(path),
    (e) => ((e as NodeJS.ErrnoException).code === "ENOENT" ? fileNotFound(path, what) : ioError(path, String((e as Error).message))),
  );

// ----- conversion -----

/**
 * Converts a llama2.c checkpoint (legacy v0 or v1 "ak42", float32) and optionally its tokenizer.bin into an HF
 * Llama model in memory: HF tensor names, q/k rows permuted to rotate-half RoPE, config and generation config.
 */
export const convertLlama2c = (
  modelBinPath: string,
  opts: { readonly tokenizerBinPath?: string } = {},
): TE.TaskEither<ModelError, ConvertedModel> =>
  pipe(
    readBytes(modelBinPath, "llama2.c checkpoint"),
    TE.chainEitherK((buf) =>
      pipe(
        parseLlama2cHeader(modelBinPath, buf),
        E.chain((h) =>
          pipe(
            llama2cTensors(modelBinPath, buf, h),
            E.chain((tensors) => {
              const configJson = llama2cConfigJson(h);
              return pipe(
                decodeLlamaConfig(`${modelBinPath} (converted config)`, configJson),
                E.map((config) => ({ h, tensors, configJson, config })),
              );
            }),
          ),
        ),
      ),
    ),
    TE.chain(({ h, tensors, configJson, config }) => {
      const base: ConvertedModel = {
        config,
        configJson,
        generationConfigJson: { _from_model_config: true, bos_token_id: 1, eos_token_id: 2 },
        tensors,
      };
      const tokPath = opts.tokenizerBinPath;
      if (tokPath === undefined) return TE.right(base);
      return pipe(
        readBytes(tokPath, "llama2.c tokenizer"),
        TE.chainEitherK((tb) => parseLlama2cTokenizer(tokPath, tb, h.vocabSize)),
        TE.map((vocab) => {
          const files = llama2cTokenizerFiles(vocab, h.seqLen);
          return { ...base, vocab, tokenizerFiles: files, tokenizerJson: files["tokenizer.json"]! };
        }),
      );
    }),
  );
