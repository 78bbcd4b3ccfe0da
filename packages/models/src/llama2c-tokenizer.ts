import * as E from "fp-ts/lib/Either.js";
import { type ModelError, tokenizerError } from "./errors.js";

// ----- model -----

/** A llama2.c tokenizer.bin: pieces (real spaces, "<0xNN>" byte tokens) and their merge scores. */
export interface Llama2cVocab {
  readonly maxTokenLength: number;
  readonly pieces: ReadonlyArray<string>;
  readonly scores: Float32Array;
}

const SPACE_MARK = "\u2581"; // sentencepiece's "▁"
const BYTE_PIECE = /^<0x[0-9A-F]{2}>$/;
const SPECIALS: Readonly<Record<number, string>> = { 0: "<unk>", 1: "<s>", 2: "</s>" };

// ----- parsing -----

/** Parses tokenizer.bin: int32 max_token_length, then per token float32 score, int32 length, UTF-8 bytes. */
export const parseLlama2cTokenizer = (path: string, buf: Uint8Array, vocabSize: number): E.Either<ModelError, Llama2cVocab> => {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const dec = new TextDecoder("utf-8", { fatal: true });
  if (buf.byteLength < 4) return E.left(tokenizerError(path, "file is too short for the max_token_length header"));
  const maxTokenLength = dv.getInt32(0, true);
  const pieces: string[] = [];
  const scores = new Float32Array(vocabSize);
  let off = 4;
  for (let i = 0; i < vocabSize; i++) {
    if (off + 8 > buf.byteLength) return E.left(tokenizerError(path, `truncated at token ${i} of ${vocabSize}`));
    scores[i] = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    off += 8;
    if (len < 0 || off + len > buf.byteLength) return E.left(tokenizerError(path, `token ${i} has length ${len} beyond the end of the file`));
    try {
      pieces.push(dec.decode(buf.subarray(off, off + len)));
    } catch {
      return E.left(tokenizerError(path, `token ${i} is not valid UTF-8`));
    }
    off += len;
  }
  return E.right({ maxTokenLength, pieces, scores });
};

// ----- llama2.c encode (reference) -----

/**
 * A direct port of llama2.c's `encode`: optional BOS, a " " dummy prefix for non-empty text, one token per UTF-8
 * character (byte-fallback ids byte + 3 for characters not in the vocabulary), then repeatedly merge the leftmost
 * adjacent pair whose concatenation has the highest score. Quadratic, as the original; it is the reference the HF
 * tokenizer.json is checked against.
 */
export const llama2cEncode = (vocab: Llama2cVocab, text: string, bos: boolean, eos = false): number[] => {
  const lookup = new Map<string, number>();
  vocab.pieces.forEach((p, i) => {
    if (!lookup.has(p)) lookup.set(p, i);
  });
  const tokens: number[] = [];
  if (bos) tokens.push(1);
  if (text.length > 0) tokens.push(lookup.get(" ")!);
  const enc = new TextEncoder();
  for (const ch of text) {
    const id = lookup.get(ch);
    if (id !== undefined) tokens.push(id);
    else for (const b of enc.encode(ch)) tokens.push(b + 3);
  }
  for (;;) {
    let best = Number.NEGATIVE_INFINITY;
    let bestId = -1;
    let bestIdx = -1;
    for (let i = 0; i < tokens.length - 1; i++) {
      const id = lookup.get(vocab.pieces[tokens[i]!]! + vocab.pieces[tokens[i + 1]!]!);
      if (id !== undefined && vocab.scores[id]! > best) {
        best = vocab.scores[id]!;
        bestId = id;
        bestIdx = i;
      }
    }
    if (bestIdx === -1) break;
    tokens.splice(bestIdx, 2, bestId);
  }
  if (eos) tokens.push(2);
  return tokens;
};

// ----- HF tokenizer files -----

const hfPiece = (piece: string, id: number): string => SPECIALS[id] ?? piece.replaceAll(" ", SPACE_MARK);

/**
 * BPE merges equivalent to llama2.c's score-greedy merging: every split (a, b) of a vocabulary piece p into two
 * ordinary pieces, ranked by p's score (best first; ties by id of p, then of a). BPE's lowest-rank-first with
 * leftmost tie-break then picks the same pair as llama2.c whenever distinct pieces have distinct scores, which
 * holds for sentencepiece BPE vocabularies (scores are −rank).
 */
export const llama2cMerges = (vocab: Llama2cVocab): Array<[string, string]> => {
  const hf = vocab.pieces.map(hfPiece);
  const ordinary = new Map<string, number>();
  hf.forEach((p, i) => {
    if (i > 2 && !BYTE_PIECE.test(p) && !ordinary.has(p)) ordinary.set(p, i);
  });
  const merges: Array<{ a: string; b: string; score: number; id: number; aId: number }> = [];
  for (const [p, id] of ordinary) {
    const cps = Array.from(p);
    for (let k = 1; k < cps.length; k++) {
      const a = cps.slice(0, k).join("");
      const b = cps.slice(k).join("");
      const aId = ordinary.get(a);
      if (aId !== undefined && ordinary.has(b)) merges.push({ a, b, score: vocab.scores[id]!, id, aId });
    }
  }
  merges.sort((x, y) => y.score - x.score || x.id - y.id || x.aId - y.aId);
  return merges.map((m) => [m.a, m.b]);
};

/**
 * tokenizer.json, tokenizer_config.json and special_tokens_map.json for a llama2.c vocabulary: a sentencepiece-
 * style BPE ("▁" for spaces, a "▁" dummy prefix, byte fallback) in the layout of the Llama-2 HF tokenizer, with
 * "<unk>" = 0, "<s>" = 1 (added at the start), "</s>" = 2 as special tokens.
 */
export const llama2cTokenizerFiles = (vocab: Llama2cVocab, modelMaxLength: number): Record<string, Record<string, unknown>> => {
  const hfVocab: Record<string, number> = {};
  vocab.pieces.forEach((p, i) => {
    const k = hfPiece(p, i);
    if (!(k in hfVocab)) hfVocab[k] = i;
  });
  const special = (id: number) => ({
    id,
    content: SPECIALS[id]!,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  });
  const tokenizerJson = {
    version: "1.0",
    truncation: null,
    padding: null,
    added_tokens: [0, 1, 2].map(special),
    normalizer: {
      type: "Sequence",
      normalizers: [
        { type: "Prepend", prepend: SPACE_MARK },
        { type: "Replace", pattern: { String: " " }, content: SPACE_MARK },
      ],
    },
    pre_tokenizer: null,
    post_processor: {
      type: "TemplateProcessing",
      single: [{ SpecialToken: { id: "<s>", type_id: 0 } }, { Sequence: { id: "A", type_id: 0 } }],
      pair: [
        { SpecialToken: { id: "<s>", type_id: 0 } },
        { Sequence: { id: "A", type_id: 0 } },
        { SpecialToken: { id: "<s>", type_id: 1 } },
        { Sequence: { id: "B", type_id: 1 } },
      ],
      special_tokens: { "<s>": { id: "<s>", ids: [1], tokens: ["<s>"] } },
    },
    decoder: {
      type: "Sequence",
      decoders: [
        { type: "Replace", pattern: { String: SPACE_MARK }, content: " " },
        { type: "ByteFallback" },
        { type: "Fuse" },
        { type: "Strip", content: " ", start: 1, stop: 0 },
      ],
    },
    model: {
      type: "BPE",
      dropout: null,
      unk_token: "<unk>",
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab: hfVocab,
      merges: llama2cMerges(vocab),
    },
  };
  const addedDecoder = Object.fromEntries(
    [0, 1, 2].map((id) => {
      const { id: _, ...rest } = special(id);
      return [String(id), rest];
    }),
  );
  return {
    "tokenizer.json": tokenizerJson,
    "tokenizer_config.json": {
      add_bos_token: true,
      add_eos_token: false,
      added_tokens_decoder: addedDecoder,
      bos_token: "<s>",
      clean_up_tokenization_spaces: false,
      eos_token: "</s>",
      legacy: true,
      model_max_length: modelMaxLength,
      pad_token: null,
      sp_model_kwargs: {},
      tokenizer_class: "PreTrainedTokenizerFast",
      unk_token: "<unk>",
    },
    "special_tokens_map.json": { bos_token: "<s>", eos_token: "</s>", unk_token: "<unk>" },
  };
};
