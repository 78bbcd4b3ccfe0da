import { describe, expect, it } from "vitest";
import { percentile, scoreWindow, summarize } from "./metrics.js";

describe("metrics", () => {
  it("nll is shift invariant and equals −log softmax", () => {
    const tokens = Int32Array.from([0, 2]);
    const [a] = scoreWindow(tokens, Float32Array.from([1, 2, 3, 0, 0, 0]), 3, null);
    const [b] = scoreWindow(tokens, Float32Array.from([1001, 1002, 1003, 0, 0, 0]), 3, null);
    const want = -(3 - Math.log(Math.exp(1) + Math.exp(2) + Math.exp(3)));
    expect(a!.nll).toBeCloseTo(want, 12);
    expect(b!.nll).toBeCloseTo(want, 9);
  });

  it("perplexity of a uniform model is the vocabulary size; KL to itself is zero; top-1 agreement is one", () => {
    const vocab = 7;
    const tokens = Int32Array.from([0, 3, 5, 6, 1]);
    const logits = new Float32Array(tokens.length * vocab); // all zeros = uniform
    const stats = scoreWindow(tokens, logits, vocab, logits);
    const s = summarize(stats);
    expect(s.tokens).toBe(4);
    expect(s.perplexity).toBeCloseTo(7, 10);
    expect(s.reference_perplexity).toBeCloseTo(7, 10);
    expect(s.kld!.mean).toBe(0);
    expect(s.top1).toBe(1);
  });

  it("KL(reference ‖ model) matches the closed form for two-token distributions", () => {
    // reference p = softmax([0, ln 3]) = [1/4, 3/4]; model q = [1/2, 1/2]
    const ref = Float32Array.from([0, Math.log(3), 0, 0]);
    const model = new Float32Array(4);
    const stats = scoreWindow(Int32Array.from([1, 1]), model, 2, ref);
    const expected = 0.25 * Math.log(0.25 / 0.5) + 0.75 * Math.log(0.75 / 0.5);
    expect(stats[0]!.kld).toBeCloseTo(expected, 6);
    expect(stats[0]!.nll).toBeCloseTo(Math.log(2), 9);
  });

  it("scores only the second half from the given position", () => {
    const vocab = 3;
    const tokens = Int32Array.from([0, 1, 2, 0, 1, 2]);
    expect(scoreWindow(tokens, new Float32Array(6 * vocab), vocab, null, 3)).toHaveLength(2);
  });

  it("summarizes a whole evaluation's positions (more than the engine's argument limit)", () => {
    const stats = Array.from({ length: 300_000 }, (_, i) => ({ nll: 1, refNll: 1, kld: i === 123_456 ? 5 : 0.5, top1: true }));
    expect(summarize(stats).kld!.max).toBe(5);
  });

  it("percentile interpolates like numpy", () => {
    expect(percentile([1, 2, 3, 4], 50)).toBe(2.5);
    expect(percentile([0, 10], 99)).toBeCloseTo(9.9, 12);
    expect(percentile([5], 99)).toBe(5);
  });
});
