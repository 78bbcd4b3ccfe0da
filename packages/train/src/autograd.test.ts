import { describe, expect, it } from "vitest";
import { causalAttention, rope } from "./attention.js";
import { crossEntropy, klDistillation, weightedSum } from "./losses.js";
import { add, embedding, linear, rmsNorm, siluMul } from "./ops.js";
import { type Tape, type Var, backward, gradOf, newTape, param, record } from "./tape.js";

// Every backward against central finite differences in f64 on random small shapes: the loss is Σ out ⊙ r for a fixed
// random r (so every output element's gradient path is exercised), each input element is nudged by ±h.

let seed = 12345;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
const randn = (n: number, s = 1): Float64Array => Float64Array.from({ length: n }, () => s * (2 * rand() - 1));
const randInt = (n: number, hi: number): Int32Array => Int32Array.from({ length: n }, () => Math.floor(rand() * hi));

/** Σ out ⊙ r as a scalar on the tape. */
const project = (tape: Tape, out: Var, r: Float64Array): Var => {
  let s = 0;
  for (let i = 0; i < r.length; i++) s += out.data[i]! * r[i]!;
  return record(tape, [out], Float64Array.of(s), [], (_, g) => {
    const go = gradOf(out);
    for (let i = 0; i < r.length; i++) go[i] = go[i]! + g[0]! * r[i]!;
  });
};

const gradCheck = (shapes: ReadonlyArray<ReadonlyArray<number>>, f: (tape: Tape, xs: ReadonlyArray<Var>) => Var, scales: ReadonlyArray<number> = []): void => {
  const datas = shapes.map((s, i) => randn(s.reduce((a, b) => a * b, 1), scales[i] ?? 1));
  const lossOf = (tape: Tape, xs: ReadonlyArray<Var>, r: Float64Array | null): Var => {
    const out = f(tape, xs);
    return out.data.length === 1 && r === null ? out : project(tape, out, r!);
  };
  const probe = f(newTape(), datas.map((d, i) => param(d, shapes[i]!)));
  const r = probe.data.length === 1 ? null : randn(probe.data.length);
  const tape = newTape();
  const xs = datas.map((d, i) => param(d, shapes[i]!));
  backward(tape, lossOf(tape, xs, r));
  const h = 1e-6;
  xs.forEach((x, k) => {
    for (let i = 0; i < x.data.length; i++) {
      const at = (delta: number): number => {
        const d = datas.map((v) => Float64Array.from(v));
        d[k]![i] = d[k]![i]! + delta;
        return lossOf(newTape(), d.map((v, j) => param(v, shapes[j]!)), r).data[0]!;
      };
      const fd = (at(h) - at(-h)) / (2 * h);
      const an = x.grad === null ? 0 : x.grad[i]!;
      expect(Math.abs(an - fd), `input ${k} element ${i}: analytic ${an} vs finite difference ${fd}`).toBeLessThan(1e-6 * Math.max(1, Math.abs(fd)));
    }
  });
};

describe("backward vs central finite differences (f64)", () => {
  it("linear (x Wᵀ): dx and dW", () => gradCheck([[5, 7], [3, 7]], (t, [x, w]) => linear(t, x!, w!)));
  it("add (residual)", () => gradCheck([[4, 3], [4, 3]], (t, [a, b]) => add(t, a!, b!)));
  it("rmsNorm: dx and dw", () => gradCheck([[3, 8], [8]], (t, [x, w]) => rmsNorm(t, x!, w!, 1e-5)));
  it("siluMul: dgate and dup", () => gradCheck([[4, 6], [4, 6]], (t, [g, u]) => siluMul(t, g!, u!), [3, 1]));
  it("embedding: the used rows, a row used twice sums", () => {
    const ids = Int32Array.of(2, 0, 2, 4);
    gradCheck([[5, 3]], (t, [e]) => embedding(t, e!, ids));
  });
  it("RoPE (rotate-half)", () => {
    const tokens = 3;
    const half = 2;
    const tables = { cos: randn(tokens * half), sin: randn(tokens * half) };
    gradCheck([[tokens, 2 * 2 * half]], (t, [x]) => rope(t, x!, 2, 2 * half, tables));
  });
  it("causal GQA attention: dq, dk, dv (4 query heads on 2 kv heads)", () => {
    const shape = { heads: 4, kvHeads: 2, headDim: 3 };
    gradCheck([[5, 12], [5, 6], [5, 6]], (t, [q, k, v]) => causalAttention(t, q!, k!, v!, shape), [2, 2, 1]);
  });
  it("causal attention with one head and one token", () =>
    gradCheck([[1, 2], [1, 2], [1, 2]], (t, [q, k, v]) => causalAttention(t, q!, k!, v!, { heads: 1, kvHeads: 1, headDim: 2 })));
  it("cross-entropy (mean over positions)", () => {
    const targets = randInt(4, 6);
    gradCheck([[4, 6]], (t, [l]) => crossEntropy(t, l!, targets), [3]);
  });
  it("KL(teacher ‖ student) distillation", () => {
    const teacher = randn(4 * 6, 3);
    gradCheck([[4, 6]], (t, [l]) => klDistillation(t, l!, teacher), [3]);
  });
  it("weighted sum of two losses", () => {
    const teacher = randn(3 * 5, 2);
    const targets = randInt(3, 5);
    gradCheck([[3, 5]], (t, [l]) => weightedSum(t, klDistillation(t, l!, teacher), 0.7, crossEntropy(t, l!, targets), 0.3));
  });
  it("a tied weight used by the embedding and the head gets both gradients", () => {
    const ids = Int32Array.of(1, 3, 1);
    gradCheck([[4, 5], [5]], (t, [e, w]) => linear(t, rmsNorm(t, embedding(t, e!, ids), w!, 1e-5), e!));
  });
});

describe("losses", () => {
  it("KL of identical logits is 0 and cross-entropy of uniform logits is log V", () => {
    const l = randn(12);
    expect(klDistillation(newTape(), param(l, [3, 4]), l).data[0]).toBeCloseTo(0, 14);
    expect(crossEntropy(newTape(), param(new Float64Array(12), [3, 4]), Int32Array.of(0, 1, 3)).data[0]).toBeCloseTo(Math.log(4), 14);
  });
});
