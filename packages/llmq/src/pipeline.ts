import {
  type EpochEnd,
  type LayerState,
  type ModelPlan,
  type ModifierRun,
  type Tap,
  type TransformRecord,
  calibrationEpochEnd,
  calibrationEpochStart,
  expectRun,
  formatLifecycleError,
  sequentialEpochEnd,
} from "@llmq/observers";
import type { Architecture, LlamaConfig, ModelError } from "@llmq/models";
import { formatModelError } from "@llmq/models";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import {
  type Observable,
  type OperatorFunction,
  concatMap,
  connect,
  filter,
  forkJoin,
  from,
  lastValueFrom,
  map,
  mergeScan,
  of,
  range,
  reduce,
  take,
  takeWhile,
  toArray,
} from "rxjs";
import { type LlmqError, abortedBy, internal, modelError, modifierFailure } from "./errors.js";
import {
  type TapRequest,
  type TappedOutput,
  decoderOut,
  decoderTapped,
  headTapped,
  inputQuantization,
  pipelineView,
  quantizedView,
  relErrParts,
  viewsAgree,
} from "./layer-forward.js";
import { mergeHooks, onlineHooks } from "./online-transforms.js";
import { BATCH_ROWS, type WindowBatch, batchable, splitRows, windowBatches$ } from "./window-batches.js";
import { NO_WINDOWS_STORE, type WindowStore, type WindowStoreOptions, windowStore } from "./window-store.js";
import type { ProgressSink } from "./progress.js";

// llm-compressor's calibration pipelines over an in-memory model, layer by layer. A pass runs the layers in order; in a
// pass with calibration data, the windows of a layer stream through its calibration forward, the taps are folded by
// each active modifier's reducer, sequential_epoch_end lets every modifier edit the layer, and the edited layer (with
// quantization disabled, as LC's sequential pipeline runs it) produces the next layer's windows. "independent" (LC's
// default) gives each data-needing modifier its own pass; "sequential" calibrates them all in one; "datafree" none.

// ----- model -----

export type PipelineName = "independent" | "sequential" | "datafree";

/** One pass over the model: data-free modifiers before and after the calibrated ones, in recipe order. */
export interface Pass {
  readonly pre: ReadonlyArray<number>;
  readonly data: ReadonlyArray<number>;
  readonly post: ReadonlyArray<number>;
  /**
   * The calibrated modifiers of a layer calibrate in turn, each on the layer as the previous one left it (GPTQ's
   * true_sequential: optimum forwards the block again for every subset of modules), instead of all on one forward.
   */
  readonly inTurn?: boolean;
}

export interface LayerReport {
  readonly name: string;
  readonly layer: number;
  readonly loss: number;
  /** ‖quantized layer output − fp layer output‖² / ‖fp layer output‖² on the first 8 windows; null when data-free. */
  readonly output_rel_error: number | null;
  readonly modules: ReadonlyArray<{ readonly name: string; readonly method: string; readonly loss: number; readonly seconds: number }>;
  /** What transforms (SmoothQuant, AWQ) decided for this layer's mappings, in the order they were applied. */
  readonly transforms: ReadonlyArray<TransformRecord>;
}

/** Where layers come from and go to: the first pass loads them, the last one hands them to the writer. */
export interface LayerIO {
  readonly load: (index: number) => Promise<E.Either<LlmqError, LayerState>>;
  readonly save: (layer: LayerState) => Promise<E.Either<LlmqError, void>>;
  /** Called once the last pass has started, before its first layer is saved (the embedding and other tensors). */
  readonly beforeSave: () => Promise<E.Either<LlmqError, void>>;
}

export interface PipelineContext {
  readonly config: LlamaConfig;
  readonly architecture: Architecture;
  readonly numLayers: number;
  readonly io: LayerIO;
  readonly signal?: AbortSignal | undefined;
  readonly progress: ProgressSink;
  /** What every modifier planned (calibration_epoch_start hands it to each). */
  readonly plan: ModelPlan;
}

type AnyRun = ModifierRun<unknown, unknown>;

interface PassState {
  readonly runs: ReadonlyArray<AnyRun>;
  /** Windows entering the next layer ([T, hidden] each), owned by the pass (propagation replaces them in place). */
  readonly hidden: WindowStore;
  /** Layers kept for a later pass (several calibrated passes only). */
  readonly kept: ReadonlyMap<number, LayerState>;
  readonly reports: ReadonlyArray<LayerReport>;
  readonly warnings: ReadonlyArray<string>;
  /** Transform decisions per layer index, from every pass so far. */
  readonly records: ReadonlyMap<number, ReadonlyArray<TransformRecord>>;
}

/** Windows whose outputs the per-layer error report compares. */
export const ERROR_WINDOWS = 8;

// ----- passes -----

/** LC's pipeline choice: each data-needing modifier its own pass (independent), all in one (sequential), or none. */
export const planPasses = (needsData: ReadonlyArray<boolean>, pipeline: PipelineName): E.Either<string, ReadonlyArray<Pass>> => {
  const all = needsData.map((_, i) => i);
  const data = all.filter((i) => needsData[i]);
  if (pipeline === "datafree") return data.length > 0 ? E.left("the datafree pipeline cannot run modifiers that need calibration data") : E.right([{ pre: all, data: [], post: [] }]);
  if (data.length === 0) return E.right([{ pre: all, data: [], post: [] }]);
  // LC's sequential pipeline sends every layer's sequential_epoch_end to all modifiers of the recipe, in recipe order,
  // after one calibration pass: data-free modifiers act at the same point as the calibrated ones.
  if (pipeline === "sequential") return E.right([{ pre: [], data: all, post: [] }]);
  return E.right(
    data.map((d, k) => ({
      pre: all.filter((i) => !needsData[i] && i < d && (k === 0 || i > data[k - 1]!)),
      data: [d],
      post: k === data.length - 1 ? all.filter((i) => !needsData[i] && i > d) : [],
    })),
  );
};

// ----- lifecycle plumbing -----

type StartedRun = Extract<AnyRun, { _tag: "Started" }>;

/**
 * Steps the started runs `which`, in order, threading an accumulator; each step returns (or resolves to) its run's
 * next state. One step at a time: a modifier's edit may be asynchronous (AWQ yields to signals between grid points).
 */
const stepRuns = <A>(
  runs: ReadonlyArray<AnyRun>,
  which: ReadonlyArray<number>,
  init: A,
  f: (r: StartedRun, acc: A, i: number) => E.Either<LlmqError, readonly [AnyRun, A]> | Promise<E.Either<LlmqError, readonly [AnyRun, A]>>,
): Promise<E.Either<LlmqError, { readonly runs: ReadonlyArray<AnyRun>; readonly acc: A }>> =>
  which.reduce(
    async (prev: Promise<E.Either<LlmqError, { readonly runs: ReadonlyArray<AnyRun>; readonly acc: A }>>, i) => {
      const state = await prev;
      if (E.isLeft(state)) return state;
      const { runs: rs, acc } = state.right;
      const r = expectRun(rs[i]!, "Started", "event");
      if (E.isLeft(r)) return E.left(internal(formatLifecycleError(r.left)));
      return E.map(([run, next]: readonly [AnyRun, A]) => ({ runs: rs.map((x, j) => (j === i ? run : x)), acc: next }))(await f(r.right, acc, i));
    },
    Promise.resolve(E.right({ runs, acc: init })),
  );

interface EpochAcc {
  readonly layer: LayerState;
  readonly warnings: ReadonlyArray<string>;
  readonly records: ReadonlyArray<TransformRecord>;
}

/** sequential_epoch_end of the given modifiers, in order, each seeing the previous one's edits. */
const epochEnds = async (
  runs: ReadonlyArray<AnyRun>,
  which: ReadonlyArray<number>,
  layer: LayerState,
  calibrated: ReadonlyMap<number, unknown>,
  signal?: AbortSignal,
): Promise<E.Either<LlmqError, { readonly runs: ReadonlyArray<AnyRun> } & EpochAcc>> =>
  E.map(({ runs: rs, acc }: { readonly runs: ReadonlyArray<AnyRun>; readonly acc: EpochAcc }) => ({ runs: rs, ...acc }))(
    await stepRuns(runs, which, { layer, warnings: [], records: [] } as EpochAcc, async (r, acc, i) => {
      const ended = await sequentialEpochEnd(r, acc.layer, calibrated.has(i) ? calibrated.get(i) : null, { signal });
      // A modifier that stopped because the run was aborted reports the abort, not its own Left.
      if (signal?.aborted) return E.left(abortedBy(signal));
      return E.bimap(
        modifierFailure,
        ({ run, result }: { readonly run: AnyRun; readonly result: EpochEnd<unknown> }) =>
          [run, { layer: result.layer, warnings: [...acc.warnings, ...result.warnings], records: [...acc.records, ...(result.records ?? [])] }] as const,
      )(ended);
    }),
  );

/** Runs each layer step (or pass) after the previous one, stopping at the first Left; emits the last result. */
const foldSteps = <S>(count: number, init: S, step: (s: S, i: number) => Promise<E.Either<LlmqError, S>>): Promise<E.Either<LlmqError, S>> =>
  lastValueFrom(
    range(0, count).pipe(
      mergeScan((acc: E.Either<LlmqError, S>, i) => (E.isLeft(acc) ? of(acc) : from(step(acc.right, i))), E.right(init), 1),
      takeWhile(E.isRight, true),
    ),
  );

// ----- calibration -----

/** The taps each data modifier wants from this layer, and the fold of all of them over the tapped windows. */
const calibrations = (runs: ReadonlyArray<AnyRun>, data: ReadonlyArray<number>, layer: LayerState) => {
  const cals = data.flatMap((i) => {
    const r = runs[i]!;
    const c = r._tag === "Started" ? r.modifier.calibration?.(r.state, layer) : null;
    return c === null || c === undefined ? [] : [[i, c] as const];
  });
  const request: TapRequest = {
    linearInputs: new Set(cals.flatMap(([, c]) => [...c.linearInputs])),
    attentionKV: cals.some(([, c]) => c.attentionKV),
  };
  const fold: OperatorFunction<Tap, ReadonlyMap<number, unknown>> = (taps) =>
    cals.length === 0
      ? of(new Map())
      : taps.pipe(
          connect((shared) => forkJoin(cals.map(([i, c]) => shared.pipe(c.fold, map((v) => [i, v] as const))))),
          map((entries) => new Map(entries)),
        );
  return { request, fold };
};

/**
 * The calibration pass of one layer: every window through the layer as it is now, the taps folded by the modifiers,
 * and the fp outputs of the first windows kept for the error report.
 */
const calibrate = (
  ctx: PipelineContext,
  layer: LayerState,
  hidden: WindowStore,
  cal: ReturnType<typeof calibrations>,
  tick: (b: number) => void,
): Observable<E.Either<LlmqError, { readonly folded: ReadonlyMap<number, unknown>; readonly fpOut: ReadonlyArray<Tensor<"f32">> }>> => {
  const view = pipelineView(layer);
  const online = onlineHooks(layer.online);
  const isHead = layer.index === ctx.numLayers;
  const forward = ({ x, start, count }: WindowBatch): E.Either<LlmqError, TappedOutput> => {
    tick(start + count - 1);
    return isHead
      ? E.right(headTapped(ctx.config, ctx.architecture, view, cal.request, x))
      : E.mapLeft((e: Parameters<typeof formatModelError>[0]) => modelError(`layer ${layer.index}: ${formatModelError(e)}`))(
          decoderTapped(ctx.config, view, cal.request, x, online, start < ERROR_WINDOWS, count),
        );
  };
  const rows = isHead || !batchable(online) ? 0 : BATCH_ROWS;
  return windowBatches$(hidden.lengths, hidden.get, ctx.signal, rows, ERROR_WINDOWS).pipe(
    map(E.chain((batch: WindowBatch) => E.map((r: TappedOutput) => ({ ...r, outs: r.out === null ? [] : splitRows(r.out, batch.count) }))(forward(batch)))),
    connect((shared) =>
      forkJoin({
        folded: shared.pipe(
          filter(E.isRight),
          concatMap((r) => from(r.right.taps)),
          cal.fold,
        ),
        fpOut: shared.pipe(
          filter(E.isRight),
          concatMap((r) => from(r.right.outs)),
          take(ERROR_WINDOWS),
          toArray(),
        ),
        failure: shared.pipe(filter(E.isLeft), map((l) => l.left), toArray()),
      }),
    ),
    map(({ folded, fpOut, failure }) => (failure.length > 0 ? E.left(failure[0]!) : E.right({ folded, fpOut }))),
  );
};

// ----- propagation and the error report -----

/** ‖quantized − fp‖² and ‖fp‖² summed over the report's windows. */
interface ErrParts {
  readonly num: number;
  readonly den: number;
}
const NO_ERROR: ErrParts = { num: 0, den: 0 };
const addParts = (a: ErrParts, p: ErrParts): ErrParts => ({ num: a.num + p.num, den: a.den + p.den });

/**
 * The layer's outputs for the next layer (pipeline view), written over the windows as they are produced (the pass owns
 * the store: one set of windows is alive, not two), and its error against the fp outputs (quantized view).
 */
const propagate = async (
  ctx: PipelineContext,
  layer: LayerState,
  hidden: WindowStore,
  fpOut: ReadonlyArray<Tensor<"f32">>,
  quantizedPropagation: boolean,
  tick: (b: number) => void,
): Promise<E.Either<LlmqError, { readonly relErr: number | null }>> => {
  if (layer.index === ctx.numLayers || hidden.lengths.length === 0) return E.right({ relErr: null });
  const online = onlineHooks(layer.online);
  const qHooks = mergeHooks(online, inputQuantization(layer));
  const pView = quantizedPropagation ? quantizedView(layer) : pipelineView(layer);
  const pHooks = quantizedPropagation ? qHooks : online;
  const qView = viewsAgree(layer) || quantizedPropagation ? null : quantizedView(layer);
  // The report's quantized view runs window by window (input quantization is per window in llm-compressor).
  const reported = (x: Tensor<"f32">, b: number, out: Tensor<"f32">): E.Either<ModelError, ErrParts> => {
    if (b >= fpOut.length) return E.right({ num: 0, den: 0 });
    return E.map((qo: Tensor<"f32">) => relErrParts(qo, fpOut[b]!))(qView === null ? E.right(out) : decoderOut(ctx.config, qView, x, qHooks));
  };
  const modelFail = (e: ModelError): LlmqError => modelError(`layer ${layer.index}: ${formatModelError(e)}`);
  const step = ({ x, start, count }: WindowBatch): E.Either<LlmqError, ErrParts> => {
    tick(start + count - 1);
    const xs = splitRows(x, count);
    return pipe(
      decoderOut(ctx.config, pView, x, pHooks, count),
      E.bimap(modelFail, (o) => splitRows(o, count)),
      E.chain((outs) =>
        outs.reduce(
          (acc: E.Either<LlmqError, ErrParts>, o, i) =>
            pipe(
              acc,
              E.chainFirst(() => hidden.set(start + i, o)),
              E.chain((a) => E.bimap(modelFail, (p: ErrParts) => addParts(a, p))(reported(xs[i]!, start + i, o))),
            ),
          E.right(NO_ERROR),
        ),
      ),
    );
  };
  const total = await lastValueFrom(
    windowBatches$(hidden.lengths, hidden.get, ctx.signal, batchable(pHooks) ? BATCH_ROWS : 0, ERROR_WINDOWS).pipe(
      map(E.chain(step)),
      takeWhile(E.isRight, true),
      reduce((acc: E.Either<LlmqError, ErrParts>, r) => E.chain((a: ErrParts) => E.map((p: ErrParts) => addParts(a, p))(r))(acc), E.right(NO_ERROR)),
    ),
  );
  return E.map((t: ErrParts) => ({ relErr: t.den > 0 ? t.num / t.den : null }))(total);
};

// ----- one layer of one pass -----

const reportOf = (layer: LayerState, relErr: number | null, arch: Architecture, transforms: ReadonlyArray<TransformRecord>): LayerReport => {
  const modules = [...layer.quantized.values()].map((q) => ({
    name: q.module.name,
    method: q.weight?.method ?? "none",
    loss: q.weight?.loss ?? 0,
    seconds: q.seconds,
  }));
  return {
    name: layer.prefix === "" ? arch.head : layer.prefix.slice(0, -1),
    layer: layer.index,
    loss: modules.reduce((s, m) => s + m.loss, 0),
    output_rel_error: relErr,
    modules,
    transforms,
  };
};

type Epoch = { readonly runs: ReadonlyArray<AnyRun> } & EpochAcc;

/**
 * The calibrated modifiers' part of a layer step: calibration forward(s) and their sequential_epoch_end — one forward
 * for all, or one per modifier when the pass calibrates them in turn. `fpOut` comes from the first forward (the layer
 * before any calibrated edit); `asLoaded` is the layer the error report compares with in a data-free pass.
 */
const calibrateInTurn = async (
  ctx: PipelineContext,
  pass: Pass,
  hidden: WindowStore,
  start: Epoch,
  asLoaded: LayerState | null,
  tick: (b: number) => void,
): Promise<E.Either<LlmqError, Epoch & { readonly fpOut: ReadonlyArray<Tensor<"f32">> }>> => {
  const groups = pass.inTurn === true && pass.data.length > 1 ? pass.data.map((d) => [d]) : [pass.data];
  let at: Epoch = start;
  let fpOut: ReadonlyArray<Tensor<"f32">> | null = null;
  for (const group of groups) {
    const cal = calibrations(at.runs, group, at.layer);
    const calibrated =
      hidden.lengths.length === 0
        ? E.right({ folded: new Map<number, unknown>(), fpOut: [] as ReadonlyArray<Tensor<"f32">> })
        : await lastValueFrom(calibrate(ctx, asLoaded ?? at.layer, hidden, cal, tick));
    if (E.isLeft(calibrated)) return calibrated;
    if (ctx.signal?.aborted) return E.left(abortedBy(ctx.signal));
    fpOut ??= calibrated.right.fpOut;
    const ended = await epochEnds(at.runs, group, at.layer, calibrated.right.folded, ctx.signal);
    if (E.isLeft(ended)) return ended;
    at = { ...ended.right, warnings: [...at.warnings, ...ended.right.warnings], records: [...at.records, ...ended.right.records] };
  }
  return E.right({ ...at, fpOut: fpOut ?? [] });
};

const layerStep = (ctx: PipelineContext, pass: Pass, first: boolean, last: boolean, reportOnly: boolean) => async (s: PassState, index: number): Promise<E.Either<LlmqError, PassState>> => {
  const total = ctx.numLayers + 1;
  const tick = (phase: number, label: string) => (b: number) =>
    ctx.progress({ kind: "tick", stage: "quantize", done: index + (phase + (b + 1) / Math.max(1, s.hidden.lengths.length)) / 2, total, label: `${label} ${b + 1}/${s.hidden.lengths.length}` });
  const loaded = first ? await ctx.io.load(index) : E.fromNullable(internal(`layer ${index} was not kept between passes`))(s.kept.get(index));
  if (E.isLeft(loaded)) return loaded;
  const pre = await epochEnds(s.runs, pass.pre, loaded.right, new Map(), ctx.signal);
  if (E.isLeft(pre)) return pre;
  const calibrated = await calibrateInTurn(ctx, pass, s.hidden, { runs: pre.right.runs, layer: pre.right.layer, warnings: [], records: [] }, reportOnly ? loaded.right : null, tick(0, `layer ${index} · calibrating`));
  if (E.isLeft(calibrated)) return calibrated;
  const data = calibrated.right;
  const post = await epochEnds(data.runs, pass.post, data.layer, new Map(), ctx.signal);
  if (E.isLeft(post)) return post;
  const layer = post.right.layer;
  const records = [...(s.records.get(index) ?? []), ...pre.right.records, ...data.records, ...post.right.records];
  const prop = await propagate(ctx, layer, s.hidden, last ? data.fpOut : [], reportOnly, tick(1, `layer ${index} · propagating`));
  if (E.isLeft(prop)) return prop;
  if (ctx.signal?.aborted) return E.left(abortedBy(ctx.signal));
  const saved = last ? await ctx.io.save(layer) : E.right(undefined);
  if (E.isLeft(saved)) return saved;
  ctx.progress({ kind: "tick", stage: "quantize", done: index + 1, total, label: `layer ${index} done` });
  return E.right({
    runs: post.right.runs,
    hidden: s.hidden,
    kept: last ? s.kept : new Map([...s.kept, [index, layer]]),
    reports: last && layer.quantized.size + (index < ctx.numLayers ? 1 : 0) > 0 ? [...s.reports, reportOf(layer, prop.right.relErr, ctx.architecture, records)] : s.reports,
    records: records.length > 0 ? new Map([...s.records, [index, records]]) : s.records,
    warnings: [...s.warnings, ...pre.right.warnings, ...data.warnings, ...post.right.warnings],
  });
};

// ----- the pipeline -----

const passEvents = async (
  runs: ReadonlyArray<AnyRun>,
  pass: Pass,
  f: (r: StartedRun) => ReturnType<typeof calibrationEpochEnd>,
): Promise<E.Either<LlmqError, ReadonlyArray<AnyRun>>> =>
  E.map((r: { readonly runs: ReadonlyArray<AnyRun> }) => r.runs)(
    await stepRuns(
      runs,
      [...pass.pre, ...pass.data, ...pass.post].sort((a, b) => a - b),
      null,
      (r) => E.bimap(modifierFailure, (next: AnyRun) => [next, null] as const)(f(r)),
    ),
  );

/** The calibration windows, embedded again by each pass that needs them (a lookup: cheaper than keeping a copy). */
export interface CalibrationWindows {
  readonly lengths: ReadonlyArray<number>;
  readonly embedded: (i: number) => Tensor<"f32">;
  /** Lets go of the embedding table once the last pass has its windows (the checkpoint writer has let go of it). */
  readonly release: () => void;
}

/** No calibration data (a data-free run): nothing is ever embedded. */
export const NO_CALIBRATION: CalibrationWindows = { lengths: [], embedded: () => new Tensor("f32", [0, 0], new Float32Array(0)), release: () => undefined };


const runPass =
  (ctx: PipelineContext, passes: ReadonlyArray<Pass>, windows: CalibrationWindows, storeOpts: WindowStoreOptions) =>
  async (s: PassState, k: number): Promise<E.Either<LlmqError, PassState>> => {
    const pass = passes[k]!;
    const first = k === 0;
    const last = k === passes.length - 1;
    const started = await passEvents(s.runs, pass, (r) => calibrationEpochStart(r, ctx.plan));
    if (E.isLeft(started)) return started;
    if (last) {
      const g = await ctx.io.beforeSave();
      if (E.isLeft(g)) return g;
    }
    // Calibrated passes start again from the embedded windows; a data-free pass with a dataset only reports.
    const reportOnly = pass.data.length === 0;
    const count = reportOnly ? (last ? Math.min(ERROR_WINDOWS, windows.lengths.length) : 0) : windows.lengths.length;
    const store = windowStore(windows.lengths.slice(0, count), ctx.config.hidden_size, windows.embedded, storeOpts);
    if (E.isLeft(store)) return store;
    if (last) windows.release();
    ctx.progress({ kind: "stage", stage: "quantize", total: ctx.numLayers + 1 });
    try {
      const done = await foldSteps(ctx.numLayers + 1, { ...s, runs: started.right, hidden: store.right }, layerStep(ctx, pass, first, last, reportOnly));
      if (E.isLeft(done)) return done;
      return E.map((runs: ReadonlyArray<AnyRun>) => ({ ...done.right, runs, hidden: NO_WINDOWS_STORE }))(await passEvents(done.right.runs, pass, calibrationEpochEnd));
    } finally {
      // The spill file goes whatever happened (an error, an abort, an exception from a modifier).
      store.right.close();
    }
  };

/**
 * Runs the passes over every layer and the head. `runs` are started modifiers (LC initializes and starts all of them
 * before the pipeline); `windows` are the calibration windows (none when data-free), held per pass as `storeOpts` says
 * (in memory, or up to a budget with the rest spilled to a file).
 */
export const runPipeline = async (
  ctx: PipelineContext,
  runs: ReadonlyArray<AnyRun>,
  passes: ReadonlyArray<Pass>,
  windows: CalibrationWindows,
  storeOpts: WindowStoreOptions = {},
): Promise<E.Either<LlmqError, { readonly runs: ReadonlyArray<AnyRun>; readonly reports: ReadonlyArray<LayerReport>; readonly warnings: ReadonlyArray<string> }>> => {
  const init: PassState = { runs, hidden: NO_WINDOWS_STORE, kept: new Map(), reports: [], warnings: [], records: new Map() };
  const r = await foldSteps(passes.length, init, runPass(ctx, passes, windows, storeOpts));
  return E.map((s: PassState) => ({ runs: s.runs, reports: s.reports, warnings: s.warnings }))(r);
};
