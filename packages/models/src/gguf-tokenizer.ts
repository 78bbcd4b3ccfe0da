// tokenizer.json from a GGUF file's `tokenizer.ggml.*` metadata, as transformers builds it
// (integrations/gguf/gguf_tokenizer_mapping.py in transformers 5.24: byte_level_tokenizer + add_gguf_special_tokens
// + set_split_regex), so that @huggingface/tokenizers gives transformers' ids.
import type { GgufValue } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type ModelError, tokenizerError } from "./errors.js";

export const GGUF_SUPPORTED_TOKENIZERS: ReadonlyArray<string> = ["gpt2"];

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

/**
 * tokenizer.json, tokenizer_config.json and special_tokens_map.json from GGUF metadata. A tokenizer type other than
 * gpt2 (byte-level BPE) is a TokenizerError naming the supported ones.
 */
export const ggufTokenizerFiles = (file: string, meta: Meta): E.Either<ModelError, Record<string, Record<string, unknown>>> => {
  const model = scalar(meta, "tokenizer.ggml.model");
  if (typeof model !== "string" || !GGUF_SUPPORTED_TOKENIZERS.includes(model))
    return E.left(tokenizerError(file, `tokenizer.ggml.model ${JSON.stringify(model)} is not supported (supported: ${GGUF_SUPPORTED_TOKENIZERS.join(", ")})`));
  const tokens = array(meta, "tokenizer.ggml.tokens");
  const merges = array(meta, "tokenizer.ggml.merges");
  if (tokens === undefined || !tokens.every((t) => typeof t === "string")) return E.left(tokenizerError(file, "tokenizer.ggml.tokens is missing or not an array of strings"));
  if (merges === undefined || !merges.every((t) => typeof t === "string" && t.split(" ").length === 2))
    return E.left(tokenizerError(file, "tokenizer.ggml.merges is missing or not an array of \"a b\" pairs"));
  const toks = tokens as ReadonlyArray<string>;
  const token = (key: string): string | null => {
    const id = scalar(meta, `tokenizer.ggml.${key}`);
    return typeof id === "number" && id >= 0 && id < toks.length ? toks[id]! : null;
  };
  const specials = { bos_token: token("bos_token_id"), eos_token: token("eos_token_id"), unk_token: token("unknown_token_id"), pad_token: token("padding_token_id") };
  const addBos = scalar(meta, "tokenizer.ggml.add_bos_token");
  const template = scalar(meta, "tokenizer.chat_template");
  return E.right({
    "tokenizer.json": byteLevelTokenizerJson(toks, array(meta, "tokenizer.ggml.token_type") ?? [], merges as ReadonlyArray<string>),
    "tokenizer_config.json": {
      ...specials,
      ...(typeof addBos === "boolean" ? { add_bos_token: addBos } : {}),
      ...(typeof template === "string" ? { chat_template: template } : {}),
      clean_up_tokenization_spaces: false,
      tokenizer_class: "GPT2Tokenizer",
    },
    "special_tokens_map.json": Object.fromEntries(Object.entries(specials).filter(([, v]) => v !== null)),
  });
};
