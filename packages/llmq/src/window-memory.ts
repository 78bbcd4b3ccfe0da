import { nodeBuiltin } from "@llmq/tensor";
import type { LlamaConfig } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, usageError } from "./errors.js";
const { totalmem } = nodeBuiltin<typeof import("node:os")>("node:os");

// A window of T tokens makes the forward pass allocate T×T attention scores, T×intermediate MLP activations and (for
// evaluation) T×vocab logits, each as one Float32Array. Past 2³² elements V8 throws "RangeError: Invalid typed array
// length" deep inside a layer; past the machine's memory the process dies. Both are computed here from the config,
// before any work, and refused with the flag to change.

/** More samples than this is a typo, not a plan (llm-compressor's examples calibrate on 256–512). */
export const MAX_NUM_SAMPLES = 1_000_000;

/** The most elements V8 puts in one typed array (Node 20, 64-bit). */
export const MAX_TYPED_ARRAY_ELEMENTS = 2 ** 32;

const gib = (bytes: number): string => `${(bytes / 2 ** 30).toFixed(bytes < 2 ** 30 ? 3 : 1)} GiB`;

/** The largest single array one window of `seqLen` tokens needs in the forward pass. */
export const largestWindowArray = (cfg: LlamaConfig, seqLen: number, logits: boolean): { readonly what: string; readonly elements: number } => {
  const arrays = [
    { what: "attention-score", elements: seqLen * seqLen },
    { what: "MLP activation", elements: seqLen * cfg.intermediate_size },
    { what: "hidden-state", elements: seqLen * Math.max(cfg.hidden_size, cfg.num_attention_heads * cfg.head_dim) },
    ...(logits ? [{ what: "logits", elements: seqLen * cfg.vocab_size }] : []),
  ];
  return arrays.reduce((a, b) => (b.elements > a.elements ? b : a));
};

/** Refuses a --seq-len whose forward pass cannot be allocated at all. */
export const checkSeqLen = (cfg: LlamaConfig, seqLen: number, logits: boolean): E.Either<LlmqError, void> => {
  const big = largestWindowArray(cfg, seqLen, logits);
  if (big.elements <= MAX_TYPED_ARRAY_ELEMENTS) return E.right(undefined);
  return E.left(
    usageError(
      "--seq-len",
      `${seqLen} tokens per window need one ${big.what} array of ${big.elements.toExponential(2)} floats (${gib(big.elements * 4)}), more than the ${MAX_TYPED_ARRAY_ELEMENTS} a JavaScript typed array can hold`,
      `lower --seq-len to at most ${Math.floor(Math.sqrt(MAX_TYPED_ARRAY_ELEMENTS))} or so`,
    ),
  );
};

/** A warning when windows are longer than the positions the model was trained for. */
export const seqLenWarning = (cfg: LlamaConfig, seqLen: number): ReadonlyArray<string> =>
  seqLen > cfg.max_position_embeddings
    ? [`--seq-len ${seqLen} exceeds the model's max_position_embeddings (${cfg.max_position_embeddings}): positions beyond it are extrapolated and the results may not be meaningful`]
    : [];

/**
 * Refuses windows whose hidden states (held for every window at once, `copies` times: the float and the quantized
 * stream, or the model and its reference) plus one window's largest array exceed the machine's memory.
 */
export const checkWindowMemory = (
  cfg: LlamaConfig,
  windows: ReadonlyArray<{ readonly length: number }>,
  opts: { readonly copies: number; readonly logits: boolean; readonly memoryBytes?: number; readonly maxMemory?: number | undefined },
): E.Either<LlmqError, void> => {
  const tokens = windows.reduce((a, w) => a + w.length, 0);
  const longest = windows.reduce((a, w) => Math.max(a, w.length), 0);
  // With --max-memory the windows beyond the budget live in a spill file, not in memory.
  const held = Math.min(tokens * cfg.hidden_size * 4, opts.maxMemory ?? Number.POSITIVE_INFINITY);
  const need = held * opts.copies + largestWindowArray(cfg, longest, opts.logits).elements * 4;
  const have = opts.memoryBytes ?? totalmem();
  if (need <= have) return E.right(undefined);
  return E.left(
    usageError(
      "--seq-len / --num-samples",
      `${windows.length} windows of up to ${longest} tokens need about ${gib(need)} of memory for their activations, this machine has ${gib(have)}`,
      opts.maxMemory === undefined ? "lower --seq-len or --num-samples, or spill activations to disk with --max-memory" : "lower --max-memory, --seq-len or --num-samples",
    ),
  );
};
