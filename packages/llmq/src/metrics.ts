// Evaluation statistics (llama.cpp's perplexity/KL-divergence methodology), computed per scored position from logits.
// Everything is accumulated in f64; logits come in as f32 rows.

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

// ----- kernels -----

/** log-softmax of one row into `out` (f64), numerically stable. */
export const logSoftmaxRow = (logits: Float32Array, offset: number, n: number, out: Float64Array): void => {
  let m = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = logits[offset + j]!;
    if (v > m) m = v;
  }
  let s = 0;
  for (let j = 0; j < n; j++) s += Math.exp(logits[offset + j]! - m);
  const lse = m + Math.log(s);
  for (let j = 0; j < n; j++) out[j] = logits[offset + j]! - lse;
};

const argmaxRow = (logits: Float32Array, offset: number, n: number): number => {
  let best = 0;
  let bv = -Infinity;
  for (let j = 0; j < n; j++) {
    const v = logits[offset + j]!;
    if (v > bv) {
      bv = v;
      best = j;
    }
  }
  return best;
};

/**
 * Scores the positions [from, T−1) of one window: logits at t predict tokens[t+1]. `from` = 0 scores every
 * position; the llama.cpp protocol scores only the second half (from = ⌊T/2⌋).
 */
export const scoreWindow = (
  tokens: Int32Array,
  logits: Float32Array,
  vocab: number,
  refLogits: Float32Array | null,
  from = 0,
): PositionStats[] => {
  const T = tokens.length;
  const lp = new Float64Array(vocab);
  const lq = new Float64Array(vocab);
  const out: PositionStats[] = [];
  for (let t = from; t < T - 1; t++) {
    const off = t * vocab;
    logSoftmaxRow(logits, off, vocab, lq);
    const target = tokens[t + 1]!;
    const nll = -lq[target]!;
    if (refLogits === null) {
      out.push({ nll });
      continue;
    }
    logSoftmaxRow(refLogits, off, vocab, lp);
    let kld = 0;
    for (let j = 0; j < vocab; j++) {
      const p = Math.exp(lp[j]!);
      if (p > 0) kld += p * (lp[j]! - lq[j]!);
    }
    out.push({ nll, refNll: -lp[target]!, kld: Math.max(0, kld), top1: argmaxRow(logits, off, vocab) === argmaxRow(refLogits, off, vocab) });
  }
  return out;
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
    kld: hasRef ? { mean: meanOf((s) => s.kld!), p99: percentile(klds, 99), max: Math.max(...klds) } : null,
    top1: hasRef ? stats.filter((s) => s.top1).length / n : null,
  };
};
