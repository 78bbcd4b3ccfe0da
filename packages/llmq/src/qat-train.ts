import type { LlamaConfig, ModelHandle } from "@llmq/models";
import type { QuantizationModifierConfig } from "@llmq/schemes";
import {
  type FakeQuantPlan,
  type ScheduleName,
  type Teacher,
  type TrainEvent,
  type TrainState,
  type TrainWeights,
  adamWInit,
  epochBatches,
  klDistillation,
  llamaTrainLogits,
  newTape,
  qatModifier,
  train$,
  trainForwardSupport,
  trainWeights,
  trainedQuantizationModifier,
  weightTensors,
} from "@llmq/train";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { from, lastValueFrom, takeWhile, tap, toArray } from "rxjs";
import type { Dataset } from "./dataset.js";
import { type LlmqError, abortedBy, internal, modelError, recipeError } from "./errors.js";
import { oneshot } from "./oneshot.js";
import { openModelDir } from "./open-model.js";
import { type ProgressSink, noProgress } from "./progress.js";
import { qatPlan, readModelTensors } from "./qat-start.js";
import type { Recipe } from "./recipe.js";

// `llmq train`: quantization-aware training of a Llama-family model on the CPU. The recipe's QuantizationModifier
// names the modules and schemes; they train fake-quantized (frozen qparams, clipped STE) with AdamW, distilled from a
// teacher (KL to its logits) or on next-token cross-entropy, and the result is saved by oneshot as a compressed-tensors
// checkpoint whose weights are the trained ones quantized on the same grid.

// ----- model -----

export interface TrainOptions {
  /** The starting model: dense, or a compressed-tensors checkpoint (GPTQ's) whose qparams QAT continues from. */
  readonly model: string;
  readonly output: string;
  readonly recipe: Recipe;
  readonly dataset: Dataset;
  /** Held-out windows for the per-epoch KL divergence to the teacher (none: not measured). */
  readonly evalDataset?: Dataset | null;
  /** The frozen model to distil from (usually the unquantized one); without it, cross-entropy. */
  readonly teacher?: string | undefined;
  readonly epochs: number;
  readonly lr: number;
  readonly batchSize: number;
  readonly schedule: ScheduleName;
  readonly warmupSteps: number;
  readonly maxGradNorm: number | null;
  readonly weightDecay: number;
  /** Weight of the KL term (1: pure distillation); 1 − it weights the cross-entropy. */
  readonly distillWeight: number;
  readonly seed: number;
  readonly overwrite?: boolean;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

export interface EpochRecord {
  readonly epoch: number;
  readonly loss: number;
  /** Mean KL(teacher ‖ fake-quantized model) per scored position of the held-out windows (null without them). */
  readonly eval_kld: number | null;
}

export interface TrainResult {
  readonly output: string;
  readonly modules: number;
  readonly qparams_from_checkpoint: number;
  readonly steps: number;
  readonly seconds: number;
  readonly start_eval_kld: number | null;
  readonly epochs: ReadonlyArray<EpochRecord>;
  /** The loss of every optimizer step (the loss curve). */
  readonly losses: ReadonlyArray<number>;
  readonly warnings: ReadonlyArray<string>;
}

// ----- steps -----

const qatConfig = (r: Recipe): E.Either<LlmqError, QuantizationModifierConfig> => {
  const mods = r.source.modifiers;
  const q = mods.flatMap((m) => (m.type === "QuantizationModifier" ? [m as QuantizationModifierConfig] : []));
  const other = mods.find((m) => m.type !== "QuantizationModifier");
  if (other !== undefined) return E.left(recipeError(`llmq train runs one QuantizationModifier (QAT); ${other.type} belongs in \`llmq quantize\` (run it first, then train from its output)`));
  if (q.length !== 1) return E.left(recipeError(`llmq train needs exactly one QuantizationModifier in the recipe, got ${q.length}`));
  return E.right(q[0]!);
};

/** The teacher's logits of a window, computed once per window (the teacher is frozen). */
const teacherOf = (cfg: LlamaConfig, w: TrainWeights): Teacher => {
  const cache = new Map<string, Float32Array>();
  const none: FakeQuantPlan = { modules: new Map(), active: false };
  return (ids) => {
    const key = ids.join(",");
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const l = llamaTrainLogits(newTape(), cfg, w, ids, none);
    if (E.isLeft(l)) throw new Error("llmq internal: the teacher's forward has no fake quantization to fail");
    const out = l.right.data as Float32Array;
    cache.set(key, out);
    return out;
  };
};

/** Mean KL(teacher ‖ model) over the scored positions (0..T−2) of the windows, the model as it trains (fake-quantized). */
const evalKld = (cfg: LlamaConfig, s: TrainState, windows: ReadonlyArray<Int32Array>): number | null => {
  if (s.teacher === null || windows.length === 0) return null;
  let total = 0;
  let n = 0;
  for (const w of windows) {
    const ids = w.subarray(0, w.length - 1);
    const l = llamaTrainLogits(newTape(), cfg, s.weights, ids, { ...s.quant, active: true });
    if (E.isLeft(l)) return null;
    total += klDistillation(newTape(), l.right, s.teacher(ids)).data[0]! * ids.length;
    n += ids.length;
  }
  return total / n;
};

interface Started {
  readonly handle: ModelHandle;
  readonly state: TrainState;
  readonly qparams: Awaited<ReturnType<typeof qatPlan>> extends E.Either<unknown, infer P> ? P : never;
}

/** Opens the start model (and teacher), reads their tensors, plans the qparams and builds the initial state. */
const start = async (o: TrainOptions, qcfg: QuantizationModifierConfig, opened: ModelHandle[]): Promise<E.Either<LlmqError, Started>> => {
  const h = await openModelDir(o.model)();
  if (E.isLeft(h)) return h;
  opened.push(h.right);
  const cfg = trainForwardSupport(h.right.config);
  if (E.isLeft(cfg)) return E.left(modelError(`${o.model}: ${cfg.left}`));
  const tensors = await readModelTensors(h.right);
  if (E.isLeft(tensors)) return tensors;
  const plan = await qatPlan(h.right, qcfg, tensors.right);
  if (E.isLeft(plan)) return plan;
  let teacher: Teacher | null = null;
  if (o.teacher !== undefined) {
    const t = await openModelDir(o.teacher)();
    if (E.isLeft(t)) return t;
    opened.push(t.right);
    const tt = await readModelTensors(t.right);
    if (E.isLeft(tt)) return tt;
    const tw = trainWeights(t.right.config, tt.right, () => false);
    if (E.isLeft(tw)) return E.left(modelError(`${o.teacher}: ${tw.left}`));
    teacher = teacherOf(t.right.config, tw.right);
  }
  // Decoder layers train (norms and linears); the embedding, the final norm and a tied head stay as they are.
  const w = trainWeights(cfg.right, tensors.right, (n) => n.startsWith("model.layers."));
  if (E.isLeft(w)) return E.left(modelError(`${o.model}: ${w.left}`));
  const params = new Map([...w.right].filter(([, v]) => v.needsGrad));
  const quant = { modules: plan.right.qparams, active: false };
  return E.right({ handle: h.right, qparams: plan.right, state: { epoch: 0, step: 0, weights: w.right, optimizer: adamWInit(params), loss: null, quant, teacher } });
};

/** Runs the epochs: the loss of each step, and the held-out KLD at the end of each epoch. */
const runEpochs = async (o: TrainOptions, s0: TrainState, qcfg: QuantizationModifierConfig, cfg: LlamaConfig) => {
  const progress = o.progress ?? noProgress;
  const batches = epochBatches(o.dataset.windows, o.epochs, o.batchSize, o.seed);
  const perEpoch = Math.ceil(o.dataset.windows.length / o.batchSize);
  const evalWindows = o.evalDataset?.windows ?? [];
  const schedule = { name: o.schedule, warmupSteps: o.warmupSteps, totalSteps: batches.length };
  const opts = { config: cfg, optimizer: { lr: o.lr, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: o.weightDecay }, schedule, maxGradNorm: o.maxGradNorm, distillWeight: o.distillWeight };
  const epochs: EpochRecord[] = [];
  const losses: number[] = [];
  let last = s0;
  progress({ kind: "stage", stage: "train", total: batches.length });
  const events = await lastValueFrom(
    train$(from(batches), s0, [qatModifier(s0.quant.modules, { start: qcfg.start, end: qcfg.end })], opts).pipe(
      takeWhile(() => o.signal?.aborted !== true),
      tap((e) => {
        if (E.isLeft(e) || e.right._tag !== "Step") return;
        const st: Extract<TrainEvent, { _tag: "Step" }> = e.right;
        losses.push(st.loss);
        last = st.state;
        progress({ kind: "tick", stage: "train", done: st.step, total: batches.length, label: `epoch ${st.epoch} loss ${st.loss.toFixed(5)}` });
        if (st.step % perEpoch !== 0) return;
        const epochLoss = losses.slice(-perEpoch).reduce((a, b) => a + b, 0) / perEpoch;
        const kld = evalKld(cfg, st.state, evalWindows);
        epochs.push({ epoch: st.epoch, loss: epochLoss, eval_kld: kld });
        progress({ kind: "log", message: `epoch ${st.epoch}: loss ${epochLoss.toFixed(5)}${kld === null ? "" : `, held-out KLD ${kld.toFixed(5)}`}` });
      }),
      toArray(),
    ),
  );
  const failed = events.find(E.isLeft);
  return { failed: failed === undefined ? null : (failed as E.Left<{ detail: string }>).left.detail, epochs, losses, last };
};

export const train = (o: TrainOptions): TE.TaskEither<LlmqError, TrainResult> => async () => {
  const t0 = performance.now();
  const qcfg = qatConfig(o.recipe);
  if (E.isLeft(qcfg)) return qcfg;
  const opened: ModelHandle[] = [];
  try {
    const s = await start(o, qcfg.right, opened);
    if (E.isLeft(s)) return s;
    const cfg = s.right.handle.config;
    const startKld = evalKld(cfg, s.right.state, o.evalDataset?.windows ?? []);
    const r = await runEpochs(o, s.right.state, qcfg.right, cfg);
    if (o.signal?.aborted) return E.left(abortedBy(o.signal));
    if (r.failed !== null) return E.left(internal(`training failed: ${r.failed}`));
    const trained = new Map([...weightTensors(r.last.weights)].filter(([n]) => n.startsWith("model.layers.")));
    const saved = await oneshot({
      model: o.teacher ?? o.model,
      output: o.output,
      recipe: o.recipe,
      modifiers: [trainedQuantizationModifier(qcfg.right, trained, s.right.qparams.qparams)],
      pipeline: "datafree",
      ...(o.overwrite !== undefined ? { overwrite: o.overwrite } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
    })();
    if (E.isLeft(saved)) return saved;
    return E.right({
      output: o.output,
      modules: s.right.qparams.qparams.size,
      qparams_from_checkpoint: s.right.qparams.fromCheckpoint,
      steps: r.losses.length,
      seconds: (performance.now() - t0) / 1000,
      start_eval_kld: startKld,
      epochs: r.epochs,
      losses: r.losses,
      warnings: [...o.recipe.warnings, ...saved.right.warnings],
    });
  } finally {
    await Promise.all(opened.map((h) => h.close()));
  }
};
