import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type ScheduleName, adamWInit, adamWStep, clipGradNorm, scheduleFactor } from "./adamw.js";

// Against torch 2.13 / transformers 5.24 (tools/gen_train_fixtures.py → fixtures/optim.json).
const fx = JSON.parse(readFileSync(new URL("../fixtures/optim.json", import.meta.url), "utf8"));

const close = (a: ArrayLike<number>, b: ReadonlyArray<number>, tol: number): void => {
  expect(a.length).toBe(b.length);
  for (let i = 0; i < b.length; i++) expect(Math.abs(a[i]! - b[i]!), `element ${i}: ${a[i]} vs ${b[i]}`).toBeLessThan(tol * Math.max(1, Math.abs(b[i]!)));
};

describe("optimizer pieces vs torch", () => {
  it("AdamW: three steps with weight decay and a changing lr match torch.optim.AdamW (f64)", () => {
    const a = fx.adamw;
    const p = { data: Float64Array.from(a.param as number[]), grad: null as Float64Array | null };
    const params = new Map([["w", p]]);
    let st = adamWInit(params);
    a.grads.forEach((g: number[], i: number) => {
      p.grad = Float64Array.from(g);
      st = adamWStep(st, params, { lr: a.lrs[i], betas: a.betas, eps: a.eps, weightDecay: a.weight_decay }, a.lrs[i]);
      close(p.data, a.after[i], 1e-14);
    });
    expect(st.step).toBe(3);
  });

  it("clip_grad_norm_: the norm returned and the scaled gradients", () => {
    for (const c of fx.clip) {
      const grads = c.grads.map((g: number[]) => Float64Array.from(g));
      expect(clipGradNorm(grads, c.max_norm)).toBeCloseTo(c.norm, 14);
      grads.forEach((g: Float64Array, i: number) => {
        close(g, c.clipped[i], 1e-14);
      });
    }
  });

  it("constant / linear / cosine schedules with warmup match transformers", () => {
    const s = fx.schedules;
    for (const name of ["constant", "linear", "cosine"] as ScheduleName[]) {
      const got = (s.factors[name] as number[]).map((_, step) => scheduleFactor({ name, warmupSteps: s.warmup, totalSteps: s.total }, step));
      close(got, s.factors[name], 1e-14);
    }
  });
});
