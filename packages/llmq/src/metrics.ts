// Evaluation statistics (llama.cpp's perplexity/KL-divergence methodology), computed per scored position from logits.
// Everything is accumulated in f64; logits come in as f32 rows.
import { kernels } from "@llmq/tensor";

// ----- model -----

export interface PositionStats {
  /** −log p(next token) under the model. */
  readonly nll: number;
  /** −log p(next token) under the reference (when given). */
  readonly refNll?: number;
  /** KL(reference ‖ model) at this position, in nats. */
  readonly kld?: number;
  /** Whether the model's argmax equals the reference's argmax. */
  readonly top1?: boolean;
}

export interface EvalSummary {
  readonly tokens: number;
  readonly perplexity: number;
  readonly reference_perplexity: number | null;
  readonly kld: { readonly mean: number; readonly p99: number; readonly max: number } | null;
  readonly top1: number | null;
}

// ----- scoring -----

/**
 * Scores the positions [from, T−1) of one window: logits at t predict tokens[t+1]. `from` = 0 scores every
 * position; the llama.cpp protocol scores only the second half (from = ⌊T/2⌋). The per-row log-softmax, KL and argmax
 * run in @llmq/tensor's `logitStats` kernel (threaded, f64).
 */
export const scoreWindow = (
  tokens: Int32Array,
  logits: Float32Array,
  vocab: number,
  refLogits: Float32Array | null,
  from = 0,
): PositionStats[] => {
  const rows = Math.max(0, tokens.length - 1 - from);
  if (rows === 0) return [];
  const span = (l: Float32Array): Float32Array => l.subarray(from * vocab, (from + rows) * vocab);
  const out = new Float64Array(rows * 4);
  kernels().logitStats(span(logits), refLogits === null ? null : span(refLogits), rows, vocab, tokens.subarray(from + 1, from + 1 + rows), out);
  return Array.from({ length: rows }, (_, r) =>
    refLogits === null ? { nll: out[4 * r]! } : { nll: out[4 * r]!, refNll: out[4 * r + 1]!, kld: out[4 * r + 2]!, top1: out[4 * r + 3] === 1 },
  );
};

/** Percentile with linear interpolation between order statistics (numpy's default). */
export const percentile = (values: ReadonlyArray<number>, q: number): number => {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const pos = (q / 100) * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
};

export const summarize = (stats: ReadonlyArray<PositionStats>): EvalSummary => {
  const n = stats.length;
  const meanOf = (f: (s: PositionStats) => number): number => stats.reduce((a, s) => a + f(s), 0) / n;
  const hasRef = n > 0 && stats[0]!.kld !== undefined;
  const klds = hasRef ? stats.map((s) => s.kld!) : [];
  return {
    tokens: n,
    perplexity: Math.exp(meanOf((s) => s.nll)),
    reference_perplexity: hasRef ? Math.exp(meanOf((s) => s.refNll!)) : null,
    kld: hasRef ? { mean: meanOf((s) => s.kld!), p99: percentile(klds, 99), max: klds.reduce((m, v) => (v > m || Number.isNaN(v) ? v : m), Number.NEGATIVE_INFINITY) } : null,
    top1: hasRef ? stats.filter((s) => s.top1).length / n : null,
  };
};
