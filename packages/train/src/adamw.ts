import type { Buf } from "./tape.js";

// torch.optim.AdamW (amsgrad off, maximize off) and torch.nn.utils.clip_grad_norm_, on raw parameter arrays, plus the
// learning-rate schedules of transformers' get_{constant,linear,cosine}_schedule_with_warmup. The optimizer state is
// plain data (moments and step count), so a checkpoint can save and restore it.

// ----- model -----

export interface AdamWOptions {
  readonly lr: number;
  readonly betas: readonly [number, number];
  readonly eps: number;
  readonly weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWOptions = { lr: 1e-3, betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 };

/** First and second moments per parameter (by name) and the number of steps taken. */
export interface AdamWState {
  readonly step: number;
  readonly m: ReadonlyMap<string, Float64Array>;
  readonly v: ReadonlyMap<string, Float64Array>;
}

export type ScheduleName = "constant" | "linear" | "cosine";
export const SCHEDULE_NAMES: ReadonlyArray<ScheduleName> = ["constant", "linear", "cosine"];

export interface Schedule {
  readonly name: ScheduleName;
  readonly warmupSteps: number;
  readonly totalSteps: number;
}

// ----- algorithms -----

export const adamWInit = (params: ReadonlyMap<string, { readonly data: Buf }>): AdamWState => ({
  step: 0,
  m: new Map([...params].map(([k, p]) => [k, new Float64Array(p.data.length)])),
  v: new Map([...params].map(([k, p]) => [k, new Float64Array(p.data.length)])),
});

/**
 * One AdamW step at learning rate `lr` over every parameter with a gradient (in place; the moments are mutated and the
 * new state shares them): p ← p(1 − lr·wd); m ← β₁m + (1−β₁)g; v ← β₂v + (1−β₂)g²;
 * p ← p − lr/(1−β₁ᵗ) · m / (√v / √(1−β₂ᵗ) + eps).
 */
export const adamWStep = (
  state: AdamWState,
  params: ReadonlyMap<string, { readonly data: Buf; readonly grad: Buf | null }>,
  o: AdamWOptions,
  lr: number,
): AdamWState => {
  const step = state.step + 1;
  const [b1, b2] = o.betas;
  const stepSize = lr / (1 - b1 ** step);
  const bc2 = Math.sqrt(1 - b2 ** step);
  for (const [name, p] of params) {
    const g = p.grad;
    const m = state.m.get(name);
    const v = state.v.get(name);
    if (g === null || m === undefined || v === undefined) continue;
    const w = p.data;
    for (let i = 0; i < w.length; i++) {
      const gi = g[i]!;
      m[i] = b1 * m[i]! + (1 - b1) * gi;
      v[i] = b2 * v[i]! + (1 - b2) * gi * gi;
      const decayed = w[i]! * (1 - lr * o.weightDecay);
      w[i] = decayed - (stepSize * m[i]!) / (Math.sqrt(v[i]!) / bc2 + o.eps);
    }
  }
  return { step, m: state.m, v: state.v };
};

/** torch's clip_grad_norm_ (L2): scales every gradient by min(1, max / (‖g‖ + 1e-6)); returns the norm before clipping. */
export const clipGradNorm = (grads: ReadonlyArray<Buf>, maxNorm: number): number => {
  let ss = 0;
  for (const g of grads) for (let i = 0; i < g.length; i++) ss += g[i]! * g[i]!;
  const norm = Math.sqrt(ss);
  const coef = Math.min(1, maxNorm / (norm + 1e-6));
  if (coef < 1) for (const g of grads) for (let i = 0; i < g.length; i++) g[i] = g[i]! * coef;
  return norm;
};

/** The multiplier of the base learning rate at `step` (0-based), as transformers' schedules with warmup define it. */
export const scheduleFactor = (s: Schedule, step: number): number => {
  if (step < s.warmupSteps) return step / Math.max(1, s.warmupSteps);
  if (s.name === "constant") return 1;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  if (s.name === "linear") return Math.max(0, (s.totalSteps - step) / span);
  const progress = (step - s.warmupSteps) / span;
  return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * progress)));
};
