import type { LlamaConfig } from "@llmq/models";
import { type ModifierError, type ModifierEvent, formatModifierError } from "@llmq/observers";
import { formatSchemeError } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type Observable, concatMap, from, of, takeWhile } from "rxjs";
import { type AdamWOptions, type Schedule, adamWStep, clipGradNorm, scheduleFactor } from "./adamw.js";
import { fakeQuantizeWeights, llamaTrainLogits } from "./llama-train-forward.js";
import { crossEntropy, klDistillation, weightedSum } from "./losses.js";
import { type Buf, type Var, backward, newTape, runBackward } from "./tape.js";
import type { TrainModifier } from "./train-modifier.js";
import type { TrainState } from "./train-state.js";

// The training loop as an RxJS pipeline: a stream of batches in, a stream of what happened out. Each batch runs
// LC's training events in order — batch_start, forward and loss, loss_calculated, backward, optim_pre_step (after
// gradient clipping, as HF's Trainer clips before optimizer.step), the AdamW step, optim_post_step, batch_end — and
// every modifier sees each event with the state. A failure is a value in the stream, after which it completes.

// ----- model -----

/** One optimizer step's windows of token ids (each window's next-token targets are its own ids shifted by one). */
export interface Batch {
  readonly epoch: number;
  readonly windows: ReadonlyArray<Int32Array>;
}

export interface TrainOptions {
  readonly config: LlamaConfig;
  readonly optimizer: AdamWOptions;
  readonly schedule: Schedule;
  /** clip_grad_norm_'s max_norm; null: no clipping. */
  readonly maxGradNorm: number | null;
  /** Weight of the distillation KL against the teacher; 1 − it weights the cross-entropy. Ignored without a teacher. */
  readonly distillWeight: number;
}

/** What the loop emits: every modifier event as it is dispatched, and one record per optimizer step. */
export type TrainEvent =
  | { readonly _tag: "Event"; readonly event: ModifierEvent; readonly epoch: number; readonly step: number }
  | { readonly _tag: "Step"; readonly epoch: number; readonly step: number; readonly loss: number; readonly lr: number; readonly gradNorm: number; readonly state: TrainState };

export type TrainError = { readonly _tag: "TrainError"; readonly detail: string };

type Mods = ReadonlyArray<{ readonly modifier: TrainModifier; state: unknown }>;

// ----- steps -----

const trainError = (detail: string): TrainError => ({ _tag: "TrainError", detail });

/** Dispatches one event to every modifier in order, threading the training state through them. */
const dispatch = (mods: Mods, event: ModifierEvent, train: TrainState, out: TrainEvent[]): E.Either<ModifierError, TrainState> => {
  out.push({ _tag: "Event", event, epoch: train.epoch, step: train.step });
  let t = train;
  for (const m of mods) {
    const r = m.modifier.onEvent(m.state, event, t);
    if (E.isLeft(r)) return r;
    m.state = r.right.state;
    t = r.right.train;
  }
  return E.right(t);
};

/** Forward and loss of one window (KL to the teacher and / or cross-entropy on the next tokens), on a fresh tape. */
const windowLoss = (s: TrainState, o: TrainOptions, ids: Int32Array): E.Either<TrainError, { readonly loss: Var; readonly run: () => void }> => {
  const tape = newTape();
  const input = ids.subarray(0, ids.length - 1);
  const logits = llamaTrainLogits(tape, o.config, s.weights, input, s.quant);
  if (E.isLeft(logits)) return E.left(trainError(formatSchemeError(logits.left)));
  const targets = ids.subarray(1);
  const ce = () => crossEntropy(tape, logits.right, targets);
  let loss: Var;
  if (s.teacher === null || o.distillWeight === 0) loss = ce();
  else {
    const kl = klDistillation(tape, logits.right, s.teacher(input));
    loss = o.distillWeight === 1 ? kl : weightedSum(tape, kl, o.distillWeight, ce(), 1 - o.distillWeight);
  }
  return E.right({ loss, run: () => backward(tape, loss) });
};

const trainableGrads = (s: TrainState): ReadonlyArray<Buf> => [...s.weights.values()].flatMap((v) => (v.needsGrad && v.grad !== null ? [v.grad] : []));

const zeroGrads = (s: TrainState): void => {
  for (const v of s.weights.values()) if (v.grad !== null) v.grad.fill(0);
};

/** Scales the gradient of each window's loss by 1/windows so the step sees the batch's mean loss. */
const scaleGrads = (s: TrainState, k: number): void => {
  for (const g of trainableGrads(s)) for (let i = 0; i < g.length; i++) g[i] = g[i]! * k;
};

/** One optimizer step over a batch: the events in LC's order around forward, backward, clipping and AdamW. */
const trainStep = (mods: Mods, o: TrainOptions, start: TrainState, batch: Batch, out: TrainEvent[]): E.Either<TrainError, TrainState> => {
  const fail = (e: ModifierError) => E.left(trainError(formatModifierError(e)));
  let s = { ...start, epoch: batch.epoch };
  const b = dispatch(mods, { type: "batch_start", batch: s.step }, s, out);
  if (E.isLeft(b)) return fail(b.left);
  s = b.right;
  zeroGrads(s);
  // The weights change only at the optimizer step: fake-quantize them once for all windows of the batch.
  const quantTape = newTape();
  const fq = fakeQuantizeWeights(quantTape, s.weights, s.quant);
  if (E.isLeft(fq)) return E.left(trainError(formatSchemeError(fq.left)));
  const sq = { ...s, quant: { ...s.quant, fakeQuantized: fq.right } };
  let total = 0;
  for (const ids of batch.windows) {
    const w = windowLoss(sq, o, ids);
    if (E.isLeft(w)) return w;
    w.right.run();
    total += w.right.loss.data[0]!;
  }
  runBackward(quantTape);
  const loss = total / batch.windows.length;
  scaleGrads(s, 1 / batch.windows.length);
  for (const [event, edit] of [
    [{ type: "loss_calculated", loss }, (t: TrainState) => ({ ...t, loss })],
    [{ type: "optim_pre_step" }, (t: TrainState) => t],
  ] as const) {
    const r = dispatch(mods, event, edit(s), out);
    if (E.isLeft(r)) return fail(r.left);
    s = r.right;
  }
  const gradNorm = clipGradNorm(trainableGrads(s), o.maxGradNorm ?? Number.POSITIVE_INFINITY);
  const lr = o.optimizer.lr * scheduleFactor(o.schedule, s.step);
  s = { ...s, optimizer: adamWStep(s.optimizer, new Map([...s.weights].filter(([, v]) => v.needsGrad)), o.optimizer, lr), step: s.step + 1 };
  for (const event of [{ type: "optim_post_step" }, { type: "batch_end", batch: s.step - 1 }] as const) {
    const r = dispatch(mods, event, s, out);
    if (E.isLeft(r)) return fail(r.left);
    s = r.right;
  }
  out.push({ _tag: "Step", epoch: s.epoch, step: s.step, loss, lr, gradNorm, state: s });
  return E.right(s);
};

// ----- pipeline -----

/**
 * Trains over a stream of batches: emits each modifier event and each step's record (with the state after it); a
 * failure is emitted as a Left and ends the stream. Modifier states live in the subscription (each subscription
 * starts from `initial` and the modifiers' `init`).
 */
export const train$ = (
  batches: Observable<Batch>,
  initial: TrainState,
  modifiers: ReadonlyArray<TrainModifier>,
  o: TrainOptions,
): Observable<E.Either<TrainError, TrainEvent>> => {
  let state = initial;
  let mods: Mods = [];
  let failed = false;
  return of(null).pipe(
    concatMap(() => {
      state = initial;
      mods = modifiers.map((modifier) => ({ modifier, state: modifier.init }));
      return batches;
    }),
    takeWhile(() => !failed),
    concatMap((batch) => {
      const out: TrainEvent[] = [];
      const r = trainStep(mods, o, state, batch, out);
      if (E.isLeft(r)) {
        failed = true;
        return from([...out.map((e) => E.right(e)), E.left(r.left)] as E.Either<TrainError, TrainEvent>[]);
      }
      state = r.right;
      return from(out.map((e) => E.right(e)) as E.Either<TrainError, TrainEvent>[]);
    }),
  );
};

/** Batches of `batchSize` windows for `epochs` epochs from `startEpoch`, the windows in a seeded order per epoch. */
export const epochBatches = (windows: ReadonlyArray<Int32Array>, epochs: number, batchSize: number, seed: number, startEpoch = 0): ReadonlyArray<Batch> => {
  const out: Batch[] = [];
  for (let epoch = startEpoch; epoch < epochs; epoch++) {
    const order = shuffled(windows.length, seed + epoch);
    for (let i = 0; i < order.length; i += batchSize) out.push({ epoch, windows: order.slice(i, i + batchSize).map((j) => windows[j]!) });
  }
  return out;
};

/** A Fisher–Yates permutation of 0..n−1 from a small LCG (deterministic across platforms). */
const shuffled = (n: number, seed: number): number[] => {
  const p = Array.from({ length: n }, (_, i) => i);
  let s = (seed >>> 0) + 1;
  for (let i = n - 1; i > 0; i--) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    const j = s % (i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
};
