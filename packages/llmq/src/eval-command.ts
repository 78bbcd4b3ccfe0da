import { writeFile } from "node:fs/promises";
import type { ModelHandle } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { loadDataset } from "./dataset.js";
import { type LlmqError, ioError } from "./errors.js";
import { evaluate } from "./evaluate.js";
import { openModelDir, optionalTokenizer } from "./open-model.js";
import type { ProgressSink } from "./progress.js";
import { histogramSvg, renderReport } from "./report.js";

export interface EvalCommandOptions {
  readonly model: string;
  readonly reference?: string | undefined;
  readonly dataset: string;
  readonly seqLen: number;
  readonly numSamples?: number | undefined;
  readonly scoreSecondHalf: boolean;
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
}

export const evalCommand = (o: EvalCommandOptions): TE.TaskEither<LlmqError, EvalCommandResult> => async () => {
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
    const tok = await optionalTokenizer(o.model, o.reference)();
    if (E.isLeft(tok)) return tok;
    const ds = await loadDataset(o.dataset, tok.right, {
      seqLen: o.seqLen,
      numSamples: o.numSamples,
      sampling: "sequential",
      vocabSize: m.right.config.vocab_size,
    })();
    if (E.isLeft(ds)) return ds;
    const r = await evaluate(m.right, ref, ds.right, {
      scoreSecondHalf: o.scoreSecondHalf,
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
    };
    if (o.report !== undefined) {
      const html = renderReport(
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
        },
        [
          ...(v.kldValues.length > 0
            ? [{ title: "KL divergence per token (reference ‖ model)", svg: histogramSvg(v.kldValues, { xLabel: "KL divergence (nats)" }) }]
            : []),
          { title: "Perplexity per window", table: { head: ["window", "perplexity"], rows: v.windowPerplexity.map((p, i) => [i, p]) } },
        ],
      );
      try {
        await writeFile(o.report, html);
      } catch (e) {
        return E.left(ioError(o.report, `cannot write the report: ${(e as Error).message}`));
      }
    }
    return E.right(result);
  } finally {
    await Promise.all(opened.map((h) => h.close()));
  }
};

const f = (x: number | null | undefined, digits = 4): string => (x === null || x === undefined ? "—" : x.toFixed(digits));

export const formatEval = (r: EvalCommandResult): string =>
  [
    `model:                ${r.model}`,
    ...(r.reference !== null ? [`reference:            ${r.reference}`] : []),
    `scored tokens:        ${r.tokens} (${r.windows} windows)`,
    `perplexity:           ${f(r.perplexity)}`,
    ...(r.reference !== null
      ? [
          `reference perplexity: ${f(r.reference_perplexity)}`,
          `KL divergence:        mean ${f(r.kld?.mean, 6)}  p99 ${f(r.kld?.p99, 6)}  max ${f(r.kld?.max, 6)} (nats/token)`,
          `top-1 agreement:      ${r.top1 === null ? "—" : `${(r.top1 * 100).toFixed(2)} %`}`,
        ]
      : []),
  ].join("\n");
