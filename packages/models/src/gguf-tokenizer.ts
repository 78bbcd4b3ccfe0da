// tokenizer.json from a GGUF file's `tokenizer.ggml.*` metadata, as transformers builds it
// (integrations/gguf/gguf_tokenizer_mapping.py in transformers 5.24: byte_level_tokenizer / sentencepiece_tokenizer
// (LlamaTokenizer) + add_gguf_special_tokens), so that @huggingface/tokenizers gives transformers' ids.
import type { GgufValue } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ModelError, tokenizerError } from "./errors.js";

export const GGUF_SUPPORTED_TOKENIZERS: ReadonlyArray<string> = ["gpt2", "llama"];
/** Architectures whose sentencepiece vocabularies transformers rebuilds differently (gemma*, phi3): not guessed. */
const SENTENCEPIECE_SPECIAL_ARCHS: ReadonlyArray<string> = ["gemma", "gemma2", "gemma3", "phi3"];

/** llama.cpp token types (llama_token_type / gguf-py TokenType). */
const CONTROL = 3;
const USER_DEFINED = 4;

/** GPT-2's byte → printable character table (openai/gpt-2 encoder.py bytes_to_unicode). */
export const BYTES_TO_UNICODE: ReadonlyArray<string> = (() => {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  let extra = 0;
  return Array.from({ length: 256 }, (_, b) => String.fromCodePoint(printable(b) ? b : 256 + extra++));
})();

const ALPHABET: ReadonlySet<string> = new Set(BYTES_TO_UNICODE);
const enc = new TextEncoder();

const spelledInAlphabet = (token: string): boolean => [...token].every((c) => ALPHABET.has(c));

/** A token the file stores as raw text ("<think>" in a byte-level vocabulary is fine; " x" is not) respelled in bytes. */
const byteLevelSpelling = (token: string): string => (spelledInAlphabet(token) ? token : [...enc.encode(token)].map((b) => BYTES_TO_UNICODE[b]).join(""));

type Meta = ReadonlyMap<string, GgufValue>;

const array = (meta: Meta, key: string): ReadonlyArray<unknown> | undefined => {
  const v = meta.get(key);
  return v?.type === "ARRAY" ? v.value : undefined;
};
const scalar = (meta: Meta, key: string): unknown => {
  const v = meta.get(key);
  return v === undefined || v.type === "ARRAY" ? undefined : typeof v.value === "bigint" ? Number(v.value) : v.value;
};

const added = (id: number, content: string, special: boolean): Record<string, unknown> => ({
  id,
  content,
  single_word: false,
  lstrip: false,
  rstrip: false,
  normalized: false,
  special,
});

const BYTE_LEVEL = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };

/** tokenizer.json for a byte-level BPE ("gpt2") vocabulary. */
const byteLevelTokenizerJson = (tokens: ReadonlyArray<string>, types: ReadonlyArray<unknown>, merges: ReadonlyArray<string>): Record<string, unknown> => {
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[byteLevelSpelling(t)] = i;
  });
  const addedTokens = tokens.flatMap((t, i) =>
    types[i] === CONTROL && spelledInAlphabet(t) ? [added(i, t, true)] : types[i] === USER_DEFINED && Object.hasOwn(vocab, t) ? [added(i, t, false)] : [],
  );
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: BYTE_LEVEL,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ Sequence: { id: "A", type_id: 0 } }],
      pair: [{ Sequence: { id: "A", type_id: 0 } }, { Sequence: { id: "B", type_id: 1 } }],
      special_tokens: {},
    },
    decoder: { ...BYTE_LEVEL, add_prefix_space: true },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: "",
      end_of_word_suffix: "",
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: false,
      vocab,
      merges: merges.map((m) => m.split(" ")),
    },
  };
};

const cps = (s: string): string[] => [...s];

/**
 * transformers' generate_merges(vocab, scores): every split of every piece into two vocabulary pieces, ordered by
 * the piece's score (high first), then the longer left and right parts, ties in vocabulary order (Python's stable sort).
 */
export const mergesFromScores = (tokens: ReadonlyArray<string>, scores: ReadonlyArray<number>): Array<[string, string]> => {
  const vocab = new Map<string, number>(tokens.map((t, i) => [t, i]));
  const scoreOf = new Map<string, number>(tokens.map((t, i) => [t, scores[i]!]));
  const merges: Array<{ l: string; r: string; score: number; ll: number; lr: number }> = [];
  for (const [piece, score] of scoreOf) {
    const chars = cps(piece);
    const local: typeof merges = [];
    for (let i = 1; i < chars.length; i++) {
      const l = chars.slice(0, i).join("");
      const r = chars.slice(i).join("");
      if (vocab.has(l) && vocab.has(r)) local.push({ l, r, score, ll: i, lr: chars.length - i });
    }
    local.sort((a, b) => vocab.get(a.l)! - vocab.get(b.l)! || vocab.get(a.r)! - vocab.get(b.r)!);
    merges.push(...local);
  }
  merges.sort((a, b) => b.score - a.score || b.ll - a.ll || b.lr - a.lr);
  return merges.map((m) => [m.l, m.r]);
};

/** tokenizer.json for a sentencepiece ("llama") vocabulary, as transformers' LlamaTokenizer lays it out. */
const sentencepieceTokenizerJson = (
  tokens: ReadonlyArray<string>,
  added: ReadonlyArray<Record<string, unknown>>,
  merges: ReadonlyArray<readonly [string, string]>,
  bos: string | null,
  eos: string | null,
  addBos: boolean,
  addEos: boolean,
): Record<string, unknown> => {
  const vocab: Record<string, number> = {};
  tokens.forEach((t, i) => {
    vocab[t] = i;
  });
  const ends = (type: number) => [
    ...(addBos && bos !== null ? [{ SpecialToken: { id: bos, type_id: type } }] : []),
    ...[{ Sequence: { id: type === 0 ? "A" : "B", type_id: type } }],
    ...(addEos && eos !== null ? [{ SpecialToken: { id: eos, type_id: type } }] : []),
  ];
  const special: Record<string, unknown> = {};
  for (const t of [addBos ? bos : null, addEos ? eos : null]) if (t !== null) special[t] = { id: t, ids: [vocab[t]], tokens: [t] };
  return {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: { type: "Metaspace", replacement: "\u2581", prepend_scheme: "first", split: false },
    post_processor: { type: "TemplateProcessing", single: ends(0), pair: [...ends(0), ...ends(1)], special_tokens: special },
    decoder: {
      type: "Sequence",
      decoders: [{ type: "Replace", pattern: { String: "\u2581" }, content: " " }, { type: "ByteFallback" }, { type: "Fuse" }, { type: "Strip", content: " ", start: 1, stop: 0 }],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges,
    },
  };
};

/**
 * tokenizer.json, tokenizer_config.json and special_tokens_map.json from GGUF metadata. A tokenizer type other than
 * gpt2 (byte-level BPE) is a TokenizerError naming the supported ones.
 */
export const ggufTokenizerFiles = (file: string, meta: Meta): E.Either<ModelError, Record<string, Record<string, unknown>>> => {
  const model = scalar(meta, "tokenizer.ggml.model");
  const arch = scalar(meta, "general.architecture");
  if (typeof model !== "string" || !GGUF_SUPPORTED_TOKENIZERS.includes(model))
    return E.left(tokenizerError(file, `tokenizer.ggml.model ${JSON.stringify(model)} is not supported (supported: ${GGUF_SUPPORTED_TOKENIZERS.join(", ")})`));
  if (model === "llama" && SENTENCEPIECE_SPECIAL_ARCHS.includes(String(arch)))
    return E.left(tokenizerError(file, `the ${String(arch)} sentencepiece vocabulary is rebuilt differently by transformers; not supported yet`));
  const tokens = array(meta, "tokenizer.ggml.tokens");
  if (tokens === undefined || !tokens.every((t) => typeof t === "string")) return E.left(tokenizerError(file, "tokenizer.ggml.tokens is missing or not an array of strings"));
  const toks = tokens as ReadonlyArray<string>;
  const fileMerges = array(meta, "tokenizer.ggml.merges");
  if (fileMerges !== undefined && !fileMerges.every((t) => typeof t === "string" && t.split(" ").length === 2))
    return E.left(tokenizerError(file, 'tokenizer.ggml.merges is not an array of "a b" pairs'));
  const scores = array(meta, "tokenizer.ggml.scores");
  if (fileMerges === undefined && (model === "gpt2" || scores === undefined || scores.length !== toks.length || !scores.every((x) => typeof x === "number")))
    return E.left(tokenizerError(file, model === "gpt2" ? "tokenizer.ggml.merges is missing" : "a llama vocabulary without merges needs tokenizer.ggml.scores (one number per token)"));
  const token = (key: string): string | null => {
    const id = scalar(meta, `tokenizer.ggml.${key}`);
    return typeof id === "number" && id >= 0 && id < toks.length ? toks[id]! : null;
  };
  const specials = { bos_token: token("bos_token_id"), eos_token: token("eos_token_id"), unk_token: token("unknown_token_id"), pad_token: token("padding_token_id") };
  const addBos = scalar(meta, "tokenizer.ggml.add_bos_token");
  const addEos = scalar(meta, "tokenizer.ggml.add_eos_token");
  const template = scalar(meta, "tokenizer.chat_template");
  const types = array(meta, "tokenizer.ggml.token_type") ?? [];
  const pairs = fileMerges !== undefined ? (fileMerges as ReadonlyArray<string>).map((m) => m.split(" ") as [string, string]) : mergesFromScores(toks, scores as ReadonlyArray<number>);
  const tokenizerJson =
    model === "gpt2"
      ? byteLevelTokenizerJson(toks, types, fileMerges as ReadonlyArray<string>)
      : sentencepieceTokenizerJson(
          toks,
          sentencepieceAdded(toks, types, [specials.unk_token, specials.bos_token, specials.eos_token]),
          pairs,
          specials.bos_token,
          specials.eos_token,
          // LlamaTokenizer's defaults when the file does not say (get_gguf_tokenizer sets add_bos_token for llama)
          addBos !== false,
          addEos === true,
        );
  return E.right({
    "tokenizer.json": tokenizerJson,
    "tokenizer_config.json": {
      ...specials,
      ...(typeof addBos === "boolean" || model === "llama" ? { add_bos_token: addBos !== false } : {}),
      ...(typeof addEos === "boolean" ? { add_eos_token: addEos } : {}),
      ...(typeof template === "string" ? { chat_template: template } : {}),
      clean_up_tokenization_spaces: false,
      tokenizer_class: model === "gpt2" ? "GPT2Tokenizer" : "LlamaTokenizer",
    },
    "special_tokens_map.json": Object.fromEntries(Object.entries(specials).filter(([, v]) => v !== null)),
  });
};

/** The special tokens a LlamaTokenizer carries (unk/bos/eos) plus the file's CONTROL and USER_DEFINED tokens, by id. */
const sentencepieceAdded = (toks: ReadonlyArray<string>, types: ReadonlyArray<unknown>, specials: ReadonlyArray<string | null>): Array<Record<string, unknown>> => {
  const ids = new Map<number, boolean>();
  for (const s of specials) if (s !== null) ids.set(toks.indexOf(s), true);
  toks.forEach((_, i) => {
    if (types[i] === CONTROL) ids.set(i, true);
    else if (types[i] === USER_DEFINED && !ids.has(i)) ids.set(i, false);
  });
  return [...ids].sort(([a], [b]) => a - b).map(([i, special]) => added(i, toks[i]!, special));
};
