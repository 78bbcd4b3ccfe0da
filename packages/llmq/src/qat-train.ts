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
import { type SavedProgress, resumeTrainState, saveTrainState, snapshotState } from "./train-state-file.js";
import type { Recipe } from "./recipe.js";

// `llmq train`: quantization-aware training of a Llama-family model on the CPU. The recipe's QuantizationModifier
// names the modules and schemes; they train fake-quantized (frozen qparams, clipped STE) with AdamW, distilled from a
// teacher (KL to its logits) or on next-token cross-entropy, and the result is saved by oneshot as a compressed-tensors
// checkpoint whose weights are the trained ones quantized on the same grid.

// ----- model -----

/** The options `llmq train` passes through unchanged to the library entry. */
export interface TrainHyperparameters {
  /** The frozen model to distil from (usually the unquantized one); without it, cross-entropy. */
  readonly teacher?: string | undefined;
  readonly epochs: number;
  readonly lr: number;
  /** Windows per optimizer step. */
  readonly batchSize: number;
  readonly schedule: ScheduleName;
  readonly weightDecay: number;
  /** Weight of the KL term (1: pure distillation); 1 − it weights the cross-entropy. */
  readonly distillWeight: number;
  readonly seed: number;
  /** Where the training state is saved after every epoch, and resumed from when a previous run of the same options left one. */
  readonly stateDir?: string | undefined;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

export interface TrainOptions extends TrainHyperparameters {
  /** The starting model: dense, or a compressed-tensors checkpoint (GPTQ's) whose qparams QAT continues from. */
  readonly model: string;
  readonly output: string;
  readonly recipe: Recipe;
  readonly dataset: Dataset;
  /** Held-out windows for the per-epoch KL divergence to the teacher (none: not measured). */
  readonly evalDataset?: Dataset | null;
  readonly warmupSteps: number;
  readonly maxGradNorm: number | null;
  readonly overwrite?: boolean;
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

/** The recipe's one QuantizationModifier (what QAT trains); any other modifier belongs in `llmq quantize`. */
export const qatConfig = (r: Recipe): E.Either<LlmqError, QuantizationModifierConfig> => {
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
  const quant = { modules: plan.right.qparams, inputs: plan.right.inputs, active: false };
  return E.right({ handle: h.right, qparams: plan.right, state: { epoch: 0, step: 0, weights: w.right, optimizer: adamWInit(params), loss: null, quant, teacher } });
};

/** Where the epochs start: from scratch, or what a saved state had done. */
interface Resume {
  readonly epochsDone: number;
  readonly losses: ReadonlyArray<number>;
  readonly epochs: ReadonlyArray<EpochRecord>;
}

/** Runs the epochs: the loss of each step, the held-out KLD and `onEpoch` (the state save) at the end of each epoch. */
const runEpochs = async (o: TrainOptions, s0: TrainState, qcfg: QuantizationModifierConfig, cfg: LlamaConfig, from0: Resume, onEpoch: (s: TrainState, losses: ReadonlyArray<number>, epochs: ReadonlyArray<EpochRecord>) => void) => {
  const progress = o.progress ?? noProgress;
  const perEpoch = Math.ceil(o.dataset.windows.length / o.batchSize);
  const batches = epochBatches(o.dataset.windows, o.epochs, o.batchSize, o.seed, from0.epochsDone);
  const total = perEpoch * o.epochs;
  const schedule = { name: o.schedule, warmupSteps: o.warmupSteps, totalSteps: total };
  const opts = { config: cfg, optimizer: { lr: o.lr, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: o.weightDecay }, schedule, maxGradNorm: o.maxGradNorm, distillWeight: o.distillWeight };
  const epochs: EpochRecord[] = [...from0.epochs];
  const losses: number[] = [...from0.losses];
  let last = s0;
  progress({ kind: "stage", stage: "train", total });
  const events = await lastValueFrom(
    train$(from(batches), s0, [qatModifier(s0.quant.modules, { start: qcfg.start, end: qcfg.end, ...(s0.quant.inputs ? { inputs: s0.quant.inputs } : {}) })], opts).pipe(
      takeWhile(() => o.signal?.aborted !== true),
      tap((e) => {
        if (E.isLeft(e) || e.right._tag !== "Step") return;
        const st: Extract<TrainEvent, { _tag: "Step" }> = e.right;
        losses.push(st.loss);
        last = st.state;
        progress({ kind: "tick", stage: "train", done: st.step, total, label: `epoch ${st.epoch} loss ${st.loss.toFixed(5)}` });
        if (st.step % perEpoch !== 0) return;
        const epochLoss = losses.slice(-perEpoch).reduce((a, b) => a + b, 0) / perEpoch;
        const kld = evalKld(cfg, st.state, o.evalDataset?.windows ?? []);
        epochs.push({ epoch: st.epoch, loss: epochLoss, eval_kld: kld });
        onEpoch(st.state, losses, epochs);
        progress({ kind: "log", message: `epoch ${st.epoch}: loss ${epochLoss.toFixed(5)}${kld === null ? "" : `, held-out KLD ${kld.toFixed(5)}`}` });
      }),
      toArray(),
    ),
  );
  const failed = events.find(E.isLeft);
  return { failed: failed === undefined ? null : (failed as E.Left<{ detail: string }>).left.detail, epochs, losses, last };
};

/** What a saved state must agree on to be resumed: every option and input that changes the result. */
const fingerprintOf = (o: TrainOptions): string => {
  let h = 0x811c9dc5;
  for (const w of o.dataset.windows) for (let i = 0; i < w.length; i++) h = Math.imul(h ^ w[i]!, 0x01000193) >>> 0;
  const { model, teacher, epochs, lr, batchSize, schedule, warmupSteps, maxGradNorm, weightDecay, distillWeight, seed } = o;
  return JSON.stringify({ model, teacher, recipe: o.recipe.yaml, windows: o.dataset.windows.length, tokens: h, epochs, lr, batchSize, schedule, warmupSteps, maxGradNorm, weightDecay, distillWeight, seed });
};

/** Resumes from `o.stateDir` when it holds a state of this run; the state's step and epoch move on accordingly. */
const resumed = async (o: TrainOptions, s: TrainState, fingerprint: string): Promise<E.Either<LlmqError, { readonly state: TrainState; readonly saved: SavedProgress | null }>> => {
  if (o.stateDir === undefined) return E.right({ state: s, saved: null });
  const r = await resumeTrainState(o.stateDir, s, fingerprint);
  if (E.isLeft(r) || r.right === null) return E.map(() => ({ state: s, saved: null }))(r);
  const p = r.right;
  (o.progress ?? noProgress)({ kind: "log", message: `resuming from ${o.stateDir}: ${p.epochsDone} epoch(s), ${p.step} step(s) done` });
  return E.right({ state: { ...s, epoch: p.epochsDone, step: p.step, optimizer: { ...s.optimizer, step: p.step } }, saved: p });
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
    const fingerprint = fingerprintOf(o);
    const res = await resumed(o, s.right.state, fingerprint);
    if (E.isLeft(res)) return res;
    const saved = res.right.saved;
    const startKld = saved !== null ? saved.startEvalKld : evalKld(cfg, s.right.state, o.evalDataset?.windows ?? []);
    let writes: Promise<E.Either<LlmqError, void>> = Promise.resolve(E.right(undefined));
    const onEpoch = (st: TrainState, losses: ReadonlyArray<number>, epochs: ReadonlyArray<EpochRecord>): void => {
      if (o.stateDir === undefined) return;
      const [dir, tensors] = [o.stateDir, snapshotState(st)];
      const p: SavedProgress = { fingerprint, epochsDone: st.epoch + 1, step: st.step, losses: [...losses], epochs: [...epochs], startEvalKld: startKld };
      writes = writes.then((prev) => (E.isLeft(prev) ? prev : saveTrainState(dir, tensors, p)));
    };
    const r = await runEpochs(o, res.right.state, qcfg.right, cfg, saved ?? { epochsDone: 0, losses: [], epochs: [] }, onEpoch);
    const written = await writes;
    if (E.isLeft(written)) return written;
    if (o.signal?.aborted) return E.left(abortedBy(o.signal));
    if (r.failed !== null) return E.left(internal(`training failed: ${r.failed}`));
    const trained = new Map([...weightTensors(r.last.weights)].filter(([n]) => n.startsWith("model.layers.")));
    const out = await oneshot({
      model: o.teacher ?? o.model,
      output: o.output,
      recipe: o.recipe,
      modifiers: [trainedQuantizationModifier(qcfg.right, trained, s.right.qparams.qparams)],
      pipeline: "datafree",
      ...(o.overwrite !== undefined ? { overwrite: o.overwrite } : {}),
      ...(o.signal ? { signal: o.signal } : {}),
      ...(o.progress ? { progress: o.progress } : {}),
    })();
    if (E.isLeft(out)) return out;
    return E.right({
      output: o.output,
      modules: s.right.qparams.qparams.size,
      qparams_from_checkpoint: s.right.qparams.fromCheckpoint,
      steps: r.losses.length,
      seconds: (performance.now() - t0) / 1000,
      start_eval_kld: startKld,
      epochs: r.epochs,
      losses: r.losses,
      // start / end have their effect here (they schedule training); oneshot's warning that they have none does not apply.
      warnings: [...o.recipe.warnings.filter((w) => !/\.(start|end) = .* has no effect in oneshot/.test(w)), ...out.right.warnings],
    });
  } finally {
    await Promise.all(opened.map((h) => h.close()));
  }
};
