import type { ModelHandle } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type Dataset, loadDataset } from "./dataset.js";
import { type LlmqError, usageError } from "./errors.js";
import { type EvaluateResult, type KvCacheOverride, evaluate, kvCacheLabel, layerKvFormat } from "./evaluate.js";
import { openModelDir, optionalTokenizer } from "./open-model.js";
import type { ProgressSink } from "./progress.js";
import { referenceCacheDir } from "./reference-cache.js";
import { checkReportPath, writeReportFile } from "./report-file.js";
import { histogramSvg, renderReport } from "./report.js";
import { MAX_NUM_SAMPLES, checkSeqLen, checkWindowMemory, seqLenWarning } from "./window-memory.js";

export interface EvalCommandOptions {
  readonly model: string;
  readonly reference?: string | undefined;
  readonly dataset: string;
  readonly seqLen: number;
  readonly numSamples?: number | undefined;
  readonly scoreSecondHalf: boolean;
  /** Override the model's KV cache (f32, f16, dynamic fp8 / int8); default: the checkpoint's calibrated one, if any. */
  readonly kvCache?: KvCacheOverride | undefined;
  /** Keep the reference's final hidden states here (keyed by its files and the windows) and reuse them next time. */
  readonly referenceCache?: string | undefined;
  readonly report?: string | undefined;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

/** The stable `--json` shape of `llmq eval` (DESIGN.md §5). */
export interface EvalCommandResult {
  readonly model: string;
  readonly reference: string | null;
  readonly tokens: number;
  readonly windows: number;
  readonly perplexity: number;
  readonly reference_perplexity: number | null;
  readonly kld: { readonly mean: number; readonly p99: number; readonly max: number } | null;
  readonly top1: number | null;
  /** The model's KV cache while evaluated: "none", "f32"…, "static fp8 (attn_head)" from the checkpoint, "dynamic int8". */
  readonly kv_cache: string;
  /** Things that did not stop the evaluation but may make it meaningless (e.g. --seq-len beyond the model's positions). */
  readonly warnings: ReadonlyArray<string>;
}

/** Report and number checks that need no model: done before anything is opened. */
const checkEvalArgs = async (o: EvalCommandOptions): Promise<E.Either<LlmqError, void>> => {
  if (o.referenceCache !== undefined && o.reference === undefined)
    return E.left(usageError("--reference-cache", "keeps the reference's hidden states, and no --reference was given", "add --reference <dir> or drop --reference-cache"));
  if (o.numSamples !== undefined && !(Number.isSafeInteger(o.numSamples) && o.numSamples >= 1 && o.numSamples <= MAX_NUM_SAMPLES))
    return E.left(usageError("--num-samples", `must be an integer in [1, ${MAX_NUM_SAMPLES}], got ${o.numSamples}`, "pass a smaller --num-samples"));
  if (o.report === undefined) return E.right(undefined);
  return checkReportPath(o.report, null, [o.model, o.dataset, ...(o.reference !== undefined ? [o.reference] : [])]);
};

/** The evaluation windows, checked against the model: --seq-len allocatable, activations within memory. */
const evalWindows = async (o: EvalCommandOptions, m: ModelHandle, hasRef: boolean): Promise<E.Either<LlmqError, Dataset>> => {
  const seq = checkSeqLen(m.config, o.seqLen, true);
  if (E.isLeft(seq)) return seq;
  const tok = await optionalTokenizer(o.model, o.reference)();
  if (E.isLeft(tok)) return tok;
  const ds = await loadDataset(o.dataset, tok.right, { seqLen: o.seqLen, numSamples: o.numSamples, sampling: "sequential", vocabSize: m.config.vocab_size })();
  if (E.isLeft(ds)) return ds;
  const mem = checkWindowMemory(m.config, ds.right.windows, { copies: hasRef ? 2 : 1, logits: true });
  return E.isLeft(mem) ? mem : ds;
};

export const evalCommand = (o: EvalCommandOptions): TE.TaskEither<LlmqError, EvalCommandResult> => async () => {
  const args = await checkEvalArgs(o);
  if (E.isLeft(args)) return args;
  const opened: ModelHandle[] = [];
  try {
    const m = await openModelDir(o.model)();
    if (E.isLeft(m)) return m;
    opened.push(m.right);
    let ref: ModelHandle | null = null;
    if (o.reference !== undefined) {
      const r = await openModelDir(o.reference)();
      if (E.isLeft(r)) return r;
      ref = r.right;
      opened.push(ref);
    }
    const ds = await evalWindows(o, m.right, ref !== null);
    if (E.isLeft(ds)) return ds;
    const r = await evaluate(m.right, ref, ds.right, {
      scoreSecondHalf: o.scoreSecondHalf,
      ...(o.kvCache !== undefined ? { kvCache: o.kvCache } : {}),
      ...(o.referenceCache !== undefined ? { referenceStore: referenceCacheDir(o.referenceCache) } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
    })();
    if (E.isLeft(r)) return r;
    const v = r.right;
    const result: EvalCommandResult = {
      model: o.model,
      reference: o.reference ?? null,
      tokens: v.tokens,
      windows: ds.right.windows.length,
      perplexity: v.perplexity,
      reference_perplexity: v.reference_perplexity,
      kld: v.kld,
      top1: v.top1,
      kv_cache: kvCacheLabel(layerKvFormat(m.right, 0, o.kvCache)),
      warnings: seqLenWarning(m.right.config, o.seqLen),
    };
    if (o.report === undefined) return E.right(result);
    const written = await writeReportFile(o.report, evalReport(o, m.right, v));
    return E.isLeft(written) ? written : E.right(result);
  } finally {
    await Promise.all(opened.map((h) => h.close()));
  }
};

const evalReport = (o: EvalCommandOptions, m: ModelHandle, v: EvaluateResult): string =>
  renderReport(
    `llmq eval: ${o.model}`,
    {
      model: o.model,
      reference: o.reference ?? null,
      dataset: o.dataset,
      "scored tokens": v.tokens,
      perplexity: v.perplexity,
      "reference perplexity": v.reference_perplexity,
      "KLD mean (nats)": v.kld?.mean ?? null,
      "KLD p99": v.kld?.p99 ?? null,
      "top-1 agreement": v.top1,
      "KV cache": kvCacheLabel(layerKvFormat(m, 0, o.kvCache)),
    },
    [
      ...(v.kldValues.length > 0 ? [{ title: "KL divergence per token (reference ‖ model)", svg: histogramSvg(v.kldValues, { xLabel: "KL divergence (nats)" }) }] : []),
      { title: "Perplexity per window", table: { head: ["window", "perplexity"], rows: v.windowPerplexity.map((p, i) => [i, p]) } },
    ],
  );

const f = (x: number | null | undefined, digits = 4): string => (x === null || x === undefined ? "—" : x.toFixed(digits));

export const formatEval = (r: EvalCommandResult): string =>
  [
    `model:                ${r.model}`,
    ...(r.reference !== null ? [`reference:            ${r.reference}`] : []),
    `scored tokens:        ${r.tokens} (${r.windows} windows)`,
    `perplexity:           ${f(r.perplexity)}`,
    ...(r.kv_cache !== "none" ? [`KV cache:             ${r.kv_cache}`] : []),
    ...(r.reference !== null
      ? [
          `reference perplexity: ${f(r.reference_perplexity)}`,
          `KL divergence:        mean ${f(r.kld?.mean, 6)}  p99 ${f(r.kld?.p99, 6)}  max ${f(r.kld?.max, 6)} (nats/token)`,
          `top-1 agreement:      ${r.top1 === null ? "—" : `${(r.top1 * 100).toFixed(2)} %`}`,
        ]
      : []),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
