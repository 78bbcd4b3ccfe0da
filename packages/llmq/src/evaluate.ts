import { type KvCacheFormat, createKvCache } from "@llmq/kv-cache";
import { type LayerHooks, type ModelHandle, decoderLayerForward, embed, formatModelError, headForward, headLogitRows } from "@llmq/models";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { inputQuantHooks } from "./activation-quant.js";
import { BATCH_ROWS, batchRanges, batchable, splitRows, stackRows } from "./window-batches.js";
import type { Dataset } from "./dataset.js";
import { mergeHooks, onlineHooks } from "./online-transforms.js";
import { inputQuantSpecs, kvCacheFormats, modelOnlineTransforms } from "./open-model.js";
import { type LlmqError, aborted, datasetError, modelError } from "./errors.js";
import { type EvalSummary, type PositionStats, scoreWindow, summarize } from "./metrics.js";
import { type ProgressSink, noProgress } from "./progress.js";
import type { ReferenceStore } from "./reference-cache.js";

// Perplexity, and against a reference model KL(reference ‖ model) and top-1 agreement, with llama.cpp's protocol.
// Both models are run layer by layer over all windows (one layer's weights in memory at a time), then scored window by
// window in blocks of rows, so that only one block of logits of each model exists at any time.

export interface EvaluateOptions {
  readonly scoreSecondHalf?: boolean;
  /**
   * The model's KV cache during evaluation: by default the checkpoint's calibrated one (kv_cache_scheme k/v scales) or
   * none; an override runs every window through a cache of this format instead (dynamic fp8 / int8: a scale per token
   * and KV head), to measure what a quantized cache costs on any model. The reference keeps its own default.
   */
  readonly kvCache?: KvCacheOverride;
  /** Where the reference's final hidden states are looked up first and stored after (see reference-cache.ts). */
  readonly referenceStore?: ReferenceStore;
  /** Logit rows per scoring block (default HEAD_ROWS): memory [rows, vocab] per model against GEMM efficiency. */
  readonly headRows?: number;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

export interface EvaluateResult extends EvalSummary {
  readonly model: string;
  readonly reference: string | null;
  /** Per-position KL values (for the report's histogram); empty without a reference. */
  readonly kldValues: ReadonlyArray<number>;
  /** Perplexity per window (for the report). */
  readonly windowPerplexity: ReadonlyArray<number>;
}

const lift = <A>(te: TE.TaskEither<import("@llmq/models").ModelError, A>): TE.TaskEither<LlmqError, A> =>
  pipe(te, TE.mapLeft((e) => modelError(formatModelError(e))));

/** The formats `--kv-cache` names. */
export const KV_CACHE_OVERRIDES = ["f32", "f16", "fp8", "int8"] as const;
export type KvCacheOverride = (typeof KV_CACHE_OVERRIDES)[number];

const overrideFormat = (o: KvCacheOverride): KvCacheFormat =>
  o === "f32" || o === "f16" ? { kind: o } : { kind: "dynamic", type: o };

/** The KV-cache format of decoder layer i: the override, else the checkpoint's calibrated one, else none. */
export const layerKvFormat = (h: ModelHandle, i: number, override?: KvCacheOverride): KvCacheFormat | null => {
  if (override !== undefined) return overrideFormat(override);
  const prefix = h.architecture.layerPrefix(i);
  return [...kvCacheFormats(h)].find(([attn]) => attn.startsWith(prefix))?.[1] ?? null;
};

/** A KV-cache format in words (reports, --json). */
export const kvCacheLabel = (f: KvCacheFormat | null): string =>
  f === null
    ? "none"
    : f.kind === "static"
      ? `static ${f.args.type === "float" ? "fp8" : `int${f.args.num_bits}`} (${f.args.strategy}${f.args.symmetric ? "" : ", asymmetric"}) from the checkpoint's k/v scales`
      : f.kind === "dynamic"
        ? `dynamic ${f.type} (a scale per token and KV head)`
        : f.kind === "ms-c8"
          ? `msModelSlim C8 (int8, a scale${f.k.offset.some((o) => o !== 0) ? " and offset" : ""} per KV channel) from the checkpoint's kv_cache_scale / kv_cache_offset`
          : f.kind;

/** The entries of a by-full-name map that belong to the module prefix, keyed by local name. */
const localEntries = <V>(m: ReadonlyMap<string, V>, prefix: string): ReadonlyMap<string, V> =>
  new Map([...m].filter(([n]) => n.startsWith(prefix)).map(([n, v]) => [n.slice(prefix.length), v] as const));

/**
 * Decoder layer i as a runtime runs the opened checkpoint: its online transforms (SpinQuant R3/R4, QuIP) and its
 * linears' input quantization. Every forward over a saved model (eval, generate) takes these.
 */
export const runtimeLayerHooks = (h: ModelHandle, i: number): LayerHooks | undefined => {
  const prefix = h.architecture.layerPrefix(i);
  return mergeHooks(onlineHooks(localEntries(modelOnlineTransforms(h), prefix)), inputQuantHooks(prefix, localEntries(inputQuantSpecs(h), prefix)));
};

/** A window's hooks: quantized linear inputs, and a fresh KV cache holding the window when the layer has a format. */
const windowHooks = (h: ModelHandle, inputHooks: LayerHooks | undefined, format: KvCacheFormat | null, tokens: number): LayerHooks | undefined => {
  if (format === null) return inputHooks;
  const [kvCache] = createKvCache([format], { layers: 1, kvHeads: h.config.num_key_value_heads, headDim: h.config.head_dim, capacity: tokens });
  return { ...inputHooks, kvCache: kvCache! };
};

/**
 * One decoder layer over every window: stacked several at a time (window-batches.ts: the same bits per row) unless a
 * KV cache or quantized linear inputs make each window its own forward.
 */
const layerOverWindows = (
  h: ModelHandle,
  weights: Parameters<typeof decoderLayerForward>[1],
  hidden: ReadonlyArray<Tensor<"f32">>,
  hooks: LayerHooks | undefined,
  kv: KvCacheFormat | null,
): E.Either<import("@llmq/models").ModelError, Tensor<"f32">[]> => {
  const rows = kv === null && batchable(hooks) ? BATCH_ROWS : 0;
  const out: Tensor<"f32">[] = [];
  for (const [start, count] of batchRanges(hidden.map((x) => x.shape[0]!), rows, 0)) {
    const x = stackRows(hidden.slice(start, start + count));
    const y = decoderLayerForward(h.config, weights, x, undefined, windowHooks(h, hooks, kv, x.shape[0]!), count);
    if (E.isLeft(y)) return y;
    out.push(...splitRows(y.right, count));
  }
  return E.right(out);
};

/** Final hidden states [T, hidden] of every window, computed layer by layer. */
export const finalHiddenStates = (
  h: ModelHandle,
  windows: ReadonlyArray<Int32Array>,
  label: string,
  progress: ProgressSink,
  signal?: AbortSignal,
  kvCache?: KvCacheOverride,
): TE.TaskEither<LlmqError, Tensor<"f32">[]> => async () => {
  const emb = await lift(h.loadEmbedding())();
  if (E.isLeft(emb)) return emb;
  const vocab = h.config.vocab_size;
  for (const w of windows) {
    const bad = w.findIndex((t) => t >= vocab);
    if (bad >= 0) return E.left(datasetError("", `token id ${w[bad]} is outside the vocabulary of ${vocab} of ${h.dir}`));
  }
  let hidden = windows.map((w) => embed(emb.right, w));
  progress({ kind: "stage", stage: label, total: h.numLayers });
  for (let i = 0; i < h.numLayers; i++) {
    if (signal?.aborted) return E.left(aborted("interrupted"));
    const lw = await lift(h.loadLayer(i))();
    if (E.isLeft(lw)) return lw;
    const hooks = runtimeLayerHooks(h, i);
    const kv = layerKvFormat(h, i, kvCache);
    const next = layerOverWindows(h, lw.right, hidden, hooks, kv);
    if (E.isLeft(next)) return E.left(modelError(formatModelError(next.left)));
    hidden = next.right;
    progress({ kind: "tick", stage: label, done: i + 1, total: h.numLayers, label: `layer ${i}` });
  }
  return E.right(hidden);
};

/** NaN or ±Inf logits make every metric NaN: the first one, by window and position, as an error. */
const nonFiniteLogits = (dir: string, logits: Float32Array, vocab: number, window: number, firstRow: number): LlmqError | null => {
  const k = logits.findIndex((x) => !Number.isFinite(x));
  if (k < 0) return null;
  return modelError(
    `${dir} produces ${logits[k]} logits (window ${window}, position ${firstRow + Math.floor(k / vocab)}, token id ${k % vocab}): its weights hold NaN/Inf or overflow; inspect the checkpoint (llmq inspect) or re-quantize it`,
  );
};

/** Logit rows per block when scoring: few enough that a block's logits stay small, enough for GEMM speed. */
export const HEAD_ROWS = 256;

/**
 * The row blocks [r0, r1) whose logits score positions [from, T − 1) of a window of T tokens: HEAD_ROWS rows each, the
 * rows before `from` skipped, and never a block of ≤ 4 rows when the window has more (a GEMM of ≤ 4 rows runs another
 * kernel, whose logits would differ in the last bits from those of the whole window): such a tail joins the block before,
 * and a short scored range reaches back (or on to the last, unscored row) to 5 rows.
 */
export const headBlocks = (t: number, from: number, size = HEAD_ROWS): ReadonlyArray<readonly [number, number]> => {
  if (t - 1 <= from) return [];
  const start = Math.max(0, Math.min(from, t - 5));
  const end = t - start >= 5 && t - 1 - start < 5 ? t : t - 1;
  const out: [number, number][] = [];
  for (let r = start; r < end; r += size) out.push([r, Math.min(end, r + size)]);
  const last = out.at(-1)!;
  if (out.length > 1 && last[1] - last[0] <= 4) {
    out.pop();
    out.at(-1)![1] = last[1];
  }
  return out;
};

/** The reference's final hidden states: from the store when it has them, else computed (and stored). */
const referenceHidden =
  (h: ModelHandle, windows: ReadonlyArray<Int32Array>, progress: ProgressSink, opts: EvaluateOptions): TE.TaskEither<LlmqError, Tensor<"f32">[]> =>
  async () => {
    const entry = opts.referenceStore === undefined ? E.right(null) : await opts.referenceStore.open(h, windows);
    if (E.isLeft(entry)) return entry;
    if (entry.right?.hidden) return E.right(entry.right.hidden);
    const r = await finalHiddenStates(h, windows, "reference", progress, opts.signal)();
    if (E.isLeft(r) || entry.right === null) return r;
    const saved = await entry.right.save(r.right);
    return E.isLeft(saved) ? saved : r;
  };

export const evaluate = (model: ModelHandle, reference: ModelHandle | null, dataset: Dataset, opts: EvaluateOptions = {}): TE.TaskEither<LlmqError, EvaluateResult> => async () => {
  const progress = opts.progress ?? noProgress;
  if (reference !== null && reference.config.vocab_size !== model.config.vocab_size)
    return E.left(modelError(`the reference has a vocabulary of ${reference.config.vocab_size}, the model ${model.config.vocab_size}: they cannot be compared`));
  const hm = await finalHiddenStates(model, dataset.windows, "model", progress, opts.signal, opts.kvCache)();
  if (E.isLeft(hm)) return hm;
  let hr: Tensor<"f32">[] | null = null;
  if (reference !== null) {
    const r = await referenceHidden(reference, dataset.windows, progress, opts)();
    if (E.isLeft(r)) return r;
    hr = r.right;
  }
  const headM = await lift(model.loadHead())();
  if (E.isLeft(headM)) return headM;
  const headR = reference !== null ? await lift(reference.loadHead())() : null;
  if (headR !== null && E.isLeft(headR)) return headR;
  const vocab = model.config.vocab_size;
  const all: PositionStats[] = [];
  const windowPerplexity: number[] = [];
  // One logits buffer per model, reused block after block: [T, vocab] per window is never materialised.
  const size = Math.max(5, opts.headRows ?? HEAD_ROWS);
  const bufM = new Float32Array((size + 4) * vocab);
  const bufR = hr !== null ? new Float32Array((size + 4) * vocab) : null;
  progress({ kind: "stage", stage: "scoring", total: dataset.windows.length });
  for (const [i, tokens] of dataset.windows.entries()) {
    const from = opts.scoreSecondHalf === true ? Math.floor(tokens.length / 2) : 0;
    const s: PositionStats[] = [];
    for (const [r0, r1] of headBlocks(tokens.length, from, size)) {
      const lm = headLogitRows(model.config, headM.right, hm.right[i]!, r0, r1, bufM);
      const lr = bufR !== null && headR !== null && E.isRight(headR) ? headLogitRows(reference!.config, headR.right, hr![i]!, r0, r1, bufR) : null;
      const a = Math.max(r0, from);
      const b = Math.min(r1, tokens.length - 1);
      if (b <= a) continue;
      const block = scoreWindow(tokens.subarray(r0, b + 1), lm, vocab, lr, a - r0);
      // NaN / ±Inf logits show in the statistics; only then are the logits scanned for the first one.
      if (block.some((p) => !Number.isFinite(p.nll) || (p.kld !== undefined && !(Number.isFinite(p.kld) && Number.isFinite(p.refNll!))))) {
        const rows = (r1 - r0) * vocab;
        const bad = nonFiniteLogits(model.dir, lm.subarray(0, rows), vocab, i, r0) ?? (lr !== null ? nonFiniteLogits(reference!.dir, lr.subarray(0, rows), vocab, i, r0) : null);
        return E.left(bad ?? modelError(`window ${i}: the log-probabilities are not finite (logits of very different magnitude); inspect the checkpoint`));
      }
      s.push(...block);
    }
    all.push(...s);
    windowPerplexity.push(Math.exp(s.reduce((a, p) => a + p.nll, 0) / Math.max(1, s.length)));
    progress({ kind: "tick", stage: "scoring", done: i + 1, total: dataset.windows.length });
  }
  if (all.length === 0) return E.left(datasetError(dataset.path, "no position to score (windows need at least 2 tokens)"));
  return E.right({
    ...summarize(all),
    model: model.dir,
    reference: reference?.dir ?? null,
    kldValues: all.flatMap((p) => (p.kld !== undefined ? [p.kld] : [])),
    windowPerplexity,
  });
};

/** The logits [T, vocab] of one token window as `eval` computes them (online transforms and input quantization applied). */
export const modelLogits = (h: ModelHandle, tokens: Int32Array): TE.TaskEither<LlmqError, Tensor<"f32">> => async () => {
  const hs = await finalHiddenStates(h, [tokens], "logits", noProgress)();
  if (E.isLeft(hs)) return hs;
  const head = await lift(h.loadHead())();
  return E.map((hw: Parameters<typeof headForward>[1]) => headForward(h.config, hw, hs.right[0]!))(head);
};
