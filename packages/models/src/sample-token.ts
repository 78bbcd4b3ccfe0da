// The sampler of llmq's generate, shared with @llmq/runtime-gpu so that both pick the same token from the same logits
// and the same uniform draw.

/**
 * The next token from the last position's logits: argmax (first of equal maxima) at temperature 0, else a draw `u`
 * ∈ [0, 1) from softmax(logits / temperature) restricted to the smallest set of most likely tokens whose mass
 * reaches `topP` (in f64).
 */
export const sampleToken = (logits: Float32Array, temperature: number, topP: number, u: number): number => {
  if (temperature <= 0) {
    let best = 0;
    for (let i = 1; i < logits.length; i++) if (logits[i]! > logits[best]!) best = i;
    return best;
  }
  let max = Number.NEGATIVE_INFINITY;
  for (const l of logits) max = Math.max(max, l);
  const p = Array.from(logits, (l, i) => ({ i, p: Math.exp((l - max) / temperature) }));
  const z = p.reduce((a, x) => a + x.p, 0);
  p.sort((a, b) => b.p - a.p || a.i - b.i);
  const kept: typeof p = [];
  let mass = 0;
  for (const x of p) {
    kept.push(x);
    mass += x.p / z;
    if (mass >= topP) break;
  }
  let r = u * kept.reduce((a, x) => a + x.p, 0);
  for (const x of kept) {
    r -= x.p;
    if (r < 0) return x.i;
  }
  return kept[kept.length - 1]!.i;
};
