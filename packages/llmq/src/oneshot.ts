import { type ModelHandle, embed } from "@llmq/models";
import {
  type QuantizationArgs,
  type QuantizationScheme,
  type TransformConfig,
  encodeQuantizationArgs,
  encodeRecipeYaml,
  encodeTransformConfig,
  isOnlineLocation,
} from "@llmq/schemes";
import { kvCacheSchemeOf } from "@llmq/kv-cache";
import { type ModelInfo, type ModelPlan, type Modifier, type ModifierRun, endRun, expectRun, finalizeRun, formatLifecycleError, initializeAndStart } from "@llmq/observers";
import {
  type SerializationError,
  type ShardedWriter,
  type StagedDirectory,
  createShardedWriter,
  type PyJson,
  dumpPythonJson,
  parsePythonJson,
  stageDirectory,
} from "@llmq/serialization";
import { type Tensor, activeBackend, nativeAddon, toFloat32, nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { quantizationConfigJson, transformOnlyConfigJson } from "./checkpoint-format.js";
import { type CheckpointIO, type GlobalTensors, checkpointIO, loadGlobals } from "./checkpoint-io.js";
import type { Dataset } from "./dataset.js";
import { type LlmqError, abortedBy, datasetError, internal, ioErrorFrom, modifierFailure, outputFailure as outputFailureOf, quantizationError, recipeError } from "./errors.js";
import { modelInfo } from "./model-info.js";
import { openModelDir } from "./open-model.js";
import { type CalibrationWindows, type LayerReport, NO_CALIBRATION, type Pass, type PipelineName, planPasses, runPipeline } from "./pipeline.js";
import { type ProgressSink, noProgress } from "./progress.js";
import type { Recipe } from "./recipe.js";
const { copyFile, readFile, readdir, writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// llm-compressor's `oneshot`: initialize and start every modifier against the model (nothing but headers read), pick
// the calibration pipeline, run it over the in-memory layers, finalize the modifiers, and save what the layers hold as
// a compressed-tensors checkpoint. The whole directory is produced in a hidden sibling and renamed at the end.

// ----- model -----

export interface OneshotOptions {
  readonly model: string;
  readonly output: string;
  /** An llm-compressor recipe (its modifiers run unless `modifiers` is given; its YAML is saved as recipe.yaml). */
  readonly recipe?: Recipe;
  /** The modifiers to run, in order: your own values, e.g. `[clipOutliers, ...recipe.modifiers]`. */
  readonly modifiers?: ReadonlyArray<Modifier>;
  /** Calibration windows; required when a modifier needs data (GPTQ, static activations); else the error report uses them. */
  readonly dataset?: Dataset | null;
  /** LC's `pipeline`: "independent" (default), "sequential" or "datafree". */
  readonly pipeline?: PipelineName;
  /**
   * With the sequential pipeline: the calibrated modifiers calibrate each layer in turn, each on the layer as the
   * previous one left it (GPTQConfig's true_sequential, one GPTQModifier per subset of modules).
   */
  readonly inTurn?: boolean;
  readonly overwrite?: boolean;
  /** Paths besides the model that the output may not equal, contain or lie inside (the dataset, the report). */
  readonly protect?: ReadonlyArray<string>;
  readonly maxShardSize?: string | number;
  /**
   * Bytes of calibration activations a pass keeps in memory ([T, hidden] per window); windows beyond it go to a
   * temporary file in `spillDir` (default the OS temp directory) and are read back per batch. Absent: all in memory.
   */
  readonly maxMemory?: number;
  readonly spillDir?: string;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

/** The options that do not name files: what a run over a model held in memory takes too. */
export type OneshotCore = Pick<OneshotOptions, "recipe" | "modifiers" | "dataset" | "pipeline" | "inTurn" | "signal" | "progress">;

export type { LayerReport };
export type ModuleReport = LayerReport["modules"][number];

export interface OneshotResult {
  readonly output: string;
  readonly scheme: string;
  readonly format: string;
  readonly modules: number;
  readonly seconds: number;
  readonly peak_rss_mb: number;
  readonly backend: string;
  readonly calibration: { readonly samples: number; readonly tokens: number } | null;
  readonly layers: ReadonlyArray<LayerReport>;
  readonly warnings: ReadonlyArray<string>;
}

type AnyRun = ModifierRun<unknown, unknown>;

// ----- steps -----

/** Each started modifier's edits of the tensors outside the layers (SpinQuant's embedding), in recipe order. */
const editGlobals = (runs: ReadonlyArray<AnyRun>, globals: GlobalTensors): E.Either<LlmqError, ReadonlyArray<AnyRun>> => {
  const out: AnyRun[] = [];
  for (const r of runs) {
    if (r._tag !== "Started" || r.modifier.editGlobals === undefined) {
      out.push(r);
      continue;
    }
    const e = r.modifier.editGlobals(r.state, globals.current);
    if (E.isLeft(e)) return E.left(modifierFailure(e.left));
    globals.current = new Map([...globals.current, ...e.right.edits]);
    out.push({ ...r, state: e.right.state });
  }
  return E.right(out);
};

/** What the modifiers add to config.json (untied embeddings) and their transform config (one rotation modifier). */
const checkpointConfigOf = (runs: ReadonlyArray<AnyRun>): E.Either<LlmqError, { readonly config: Readonly<Record<string, unknown>>; readonly transformConfig: TransformConfig | null }> => {
  const parts = runs.flatMap((r) => (r._tag === "Started" && r.modifier.checkpointConfig !== undefined ? [r.modifier.checkpointConfig(r.state)] : []));
  const withTransforms = parts.filter((p) => p.transformConfig !== null);
  if (withTransforms.length > 1) return E.left(recipeError("llmq runs one rotation modifier (SpinQuantModifier or QuIPModifier) per recipe"));
  return E.right({ config: Object.assign({}, ...parts.map((p) => p.config)), transformConfig: withTransforms[0]?.transformConfig ?? null });
};

/** LC's session.initialize: every modifier initialized (and, start ≤ 0 in oneshot, started) before any data. */
const startAll = (mods: ReadonlyArray<Modifier>, info: ModelInfo): E.Either<LlmqError, ReadonlyArray<AnyRun>> =>
  pipe(
    mods,
    E.traverseArray((m) => initializeAndStart(m, info) as E.Either<Parameters<typeof modifierFailure>[0], AnyRun>),
    E.mapLeft(modifierFailure),
  );

const needsDataError = (m: Modifier): LlmqError =>
  quantizationError(m.type, `${m.calibrationDataReason ?? `${m.type} needs calibration data`}: pass --dataset (text, JSONL or token ids)`);

/** Token windows → their [T, hidden] embeddings on demand; an id outside the vocabulary is the dataset's fault. */
const embedWindows = (h: ModelHandle, globals: ReadonlyMap<string, Tensor>, dataset: Dataset | null): E.Either<LlmqError, CalibrationWindows> => {
  if (dataset === null) return E.right(NO_CALIBRATION);
  const vocab = h.config.vocab_size;
  for (const [i, w] of dataset.windows.entries()) {
    const bad = w.findIndex((t) => t < 0 || t >= vocab);
    if (bad >= 0) return E.left(datasetError(dataset.path, `window ${i}, position ${bad}: token id ${w[bad]} is outside the vocabulary 0..${vocab - 1} of ${h.dir}`));
  }
  const e = globals.get(h.architecture.embedding);
  if (e === undefined) return E.left(internal(`${h.architecture.embedding} was not loaded`));
  // Held until the last pass has embedded its windows: the writer lets go of the globals then, and so does this.
  let emb: Tensor<"f32"> | null = toFloat32(e);
  return E.right({
    lengths: dataset.windows.map((w) => w.length),
    embedded: (i) => embed(emb!, dataset.windows[i]!),
    release: () => {
      emb = null;
    },
  });
};

/** End and finalize every run (LC's session.finalize after the pipeline). */
const finishAll = (runs: ReadonlyArray<AnyRun>): E.Either<LlmqError, void> =>
  pipe(
    runs,
    E.traverseArray((r) =>
      pipe(
        expectRun(r, "Started", "end"),
        E.mapLeft((e) => internal(formatLifecycleError(e))),
        E.chain((s) => E.mapLeft(modifierFailure)(E.chain(finalizeRun)(endRun(s)))),
      ),
    ),
    E.map(() => undefined),
  );

/** Tokenizer and generation files: llm-compressor's save copies them (weights and config are written anew). */
export const MODEL_EXTRAS = /^(tokenizer.*|special_tokens_map\.json|generation_config\.json|.*\.tiktoken|vocab\.json|merges\.txt|chat_template\.(jinja|json)|README\.md|LICENSE.*)$/;

const copyModelExtras = async (from: string, to: string): Promise<void> => {
  for (const f of await readdir(from)) if (MODEL_EXTRAS.test(f)) await copyFile(join(from, f), join(to, f));
};

/** What the modifiers add to the checkpoint's metadata: config.json's extra keys and transform config, the KV scheme. */
export interface MetadataParts {
  readonly yaml: string | null;
  readonly kvCacheScheme: QuantizationArgs | null;
  readonly extra: { readonly config: Readonly<Record<string, unknown>>; readonly transformConfig: TransformConfig | null };
}

/**
 * config.json (the model's own text with Python floats kept, plus quantization_config) and recipe.yaml, by file name,
 * and the checkpoint's format.
 */
export const metadataFiles = (
  h: ModelHandle,
  configText: string,
  written: ReturnType<CheckpointIO["written"]>,
  m: MetadataParts,
): E.Either<LlmqError, { readonly files: ReadonlyArray<readonly [string, string]>; readonly format: string }> => {
  const raw = parsePythonJson(configText);
  const quantized = new Set(written.map((q) => q.module.name));
  const unquantized = h.linearModules().map((q) => q.name).filter((n) => !quantized.has(n));
  const base = { ...(E.isRight(raw) ? (raw.right as Record<string, unknown>) : h.rawConfig), ...m.extra.config };
  // Nothing quantized: compressed-tensors writes no quantization_config (QuantizationConfig.from_pretrained → None)
  // unless there are transforms.
  const cfg =
    written.length > 0 || m.kvCacheScheme !== null
      ? quantizationConfigJson(base, written, unquantized, m.kvCacheScheme, m.extra.transformConfig)
      : m.extra.transformConfig !== null
        ? E.map((text: string) => ({ text, format: "dense" }))(transformOnlyConfigJson(base, m.extra.transformConfig))
        : E.right({ text: dumpPythonJson(base as PyJson, { indent: 2, sortKeys: true }), format: "dense" });
  return E.map((c: { readonly text: string; readonly format: string }) => ({
    files: [["config.json", c.text] as const, ...(m.yaml !== null ? [["recipe.yaml", m.yaml] as const] : [])],
    format: c.format,
  }))(cfg);
};

/** config.json, recipe.yaml and the tokenizer files written into the staging directory. */
const writeMetadata =
  (h: ModelHandle, staging: string, written: ReturnType<CheckpointIO["written"]>, m: MetadataParts): TE.TaskEither<LlmqError, string> =>
  async () => {
    const ioFail = (e: unknown): LlmqError => ioErrorFrom(staging, "cannot write the checkpoint metadata", e);
    const text = await TE.tryCatch(() => readFile(join(h.dir, "config.json"), "utf8"), ioFail)();
    if (E.isLeft(text)) return text;
    const meta = metadataFiles(h, text.right, written, m);
    if (E.isLeft(meta)) return meta;
    const wrote = await TE.tryCatch(async () => {
      for (const [name, body] of meta.right.files) await writeFile(join(staging, name), body);
      await copyModelExtras(h.dir, staging);
    }, ioFail)();
    return E.map(() => meta.right.format)(wrote);
  };

/** recipe.yaml as llm-compressor saves it after on_initialize: a rotation modifier holds the transform_config it built. */
const savedRecipeYaml = (r: Recipe | undefined, tc: TransformConfig | null): string | null =>
  r === undefined
    ? null
    : tc === null
      ? r.yaml
      : encodeRecipeYaml({
          ...r.source,
          modifiers: r.source.modifiers.map((m) =>
            (m.type === "SpinQuantModifier" || m.type === "QuIPModifier") && m.transform_config === null ? { ...m, transform_config: encodeTransformConfig(tc) } : m,
          ),
        });

// ----- the entry point -----

let peakRss = 0;
/** The process's resident set size where Node tells it (0 in a browser). */
const sampleRss = (): void => {
  const p = (globalThis as { process?: { memoryUsage?: { rss?: () => number } } }).process;
  peakRss = Math.max(peakRss, p?.memoryUsage?.rss?.() ?? 0);
};

export interface Prepared {
  readonly runs: ReadonlyArray<AnyRun>;
  readonly passes: ReadonlyArray<Pass>;
  readonly plan: ModelPlan;
  readonly kvCacheScheme: QuantizationArgs | null;
}

/**
 * What every started modifier will quantize, with which scheme (the schemes LC attaches at initialize). Overlapping
 * targets are refused: LC would attach the later scheme to the earlier modifier's modules.
 */
const planOf = (runs: ReadonlyArray<AnyRun>): E.Either<LlmqError, ModelPlan> => {
  const schemes = new Map<string, QuantizationScheme>();
  const owner = new Map<string, string>();
  for (const r of runs) {
    if (r._tag !== "Started") continue;
    for (const [name, scheme] of r.modifier.plannedSchemes?.(r.state) ?? []) {
      const prev = owner.get(name);
      if (prev !== undefined) return E.left(recipeError(`${name} is targeted by both ${prev} and ${r.modifier.type}; give each module to one quantization modifier (targets / ignore)`));
      owner.set(name, r.modifier.type);
      schemes.set(name, scheme);
    }
  }
  return E.right({ schemes });
};

/** LC's recipe validator, for modifiers given as values too: AWQ is a transform and needs a later quantization modifier. */
const checkAwqFollowed = (mods: ReadonlyArray<Modifier>): E.Either<LlmqError, void> => {
  const i = mods.findIndex((m, k) => m.type === "AWQModifier" && !mods.slice(k + 1).some((x) => x.plannedSchemes !== undefined));
  return i < 0
    ? E.right(undefined)
    : E.left(
        recipeError(
          `Recipe includes AWQModifier with no subsequent quantization modifier: [${mods.map((m) => m.type).join(", ")}]. AWQ must be run with a subsequent quantization modifier (QuantizationModifier or GPTQModifier)`,
        ),
      );
};

/**
 * One rotation modifier per recipe (config.json holds one transform_config), and none with online transforms in front
 * of AWQ: llmq's AWQ grid search runs submodules without them.
 */
const checkRotations = (runs: ReadonlyArray<AnyRun>): E.Either<LlmqError, void> =>
  E.flatMap(checkpointConfigOf(runs), ({ transformConfig }) => {
    const online = transformConfig !== null && Object.values(transformConfig.config_groups).some((g) => g.apply.some((a) => isOnlineLocation(a.location)));
    return online && runs.some((r) => r._tag === "Started" && r.modifier.type === "AWQModifier")
      ? E.left(recipeError("AWQModifier cannot follow online rotations (SpinQuant R4, QuIP) in llmq: its grid search does not run them; use fused rotations only (R1, R2) with AWQ"))
      : E.right(undefined);
  });

/** config.json holds one kv_cache_scheme: two modifiers calibrating the cache with different args cannot both be saved. */
const singleKvCacheScheme = (mods: ReadonlyArray<Modifier>): E.Either<LlmqError, QuantizationArgs | null> => {
  const all = mods.flatMap((m) => {
    const a = kvCacheSchemeOf(m);
    return a === null ? [] : [{ type: m.type, key: JSON.stringify(encodeQuantizationArgs(a)), args: a }];
  });
  const other = all.find((x) => x.key !== all[0]?.key);
  if (other !== undefined) return E.left(recipeError(`${all[0]!.type} and ${other.type} set different kv_cache_schemes; a checkpoint has one (keep it on one modifier)`));
  return E.right(all[0]?.args ?? null);
};

/** Everything decided before a byte is read or written: modifiers started, targets disjoint, data present. */
export const prepare = (opts: OneshotCore, h: ModelHandle): E.Either<LlmqError, Prepared> => {
  const mods = (opts.modifiers ?? opts.recipe?.modifiers ?? []) as ReadonlyArray<Modifier>;
  if (mods.length === 0) return E.left(recipeError("nothing to run: pass a recipe or modifiers"));
  const followed = checkAwqFollowed(mods);
  if (E.isLeft(followed)) return followed;
  const missing = opts.dataset == null ? mods.find((m) => m.requiresCalibrationData) : undefined;
  if (missing !== undefined) return E.left(needsDataError(missing));
  const kv = singleKvCacheScheme(mods);
  if (E.isLeft(kv)) return kv;
  return pipe(
    startAll(mods, modelInfo(h)),
    E.chainFirst(checkRotations),
    E.chain((runs) => E.map((plan: ModelPlan) => ({ runs, plan }))(planOf(runs))),
    E.chain(({ runs, plan }) =>
      pipe(
        planPasses(
          mods.map((m) => m.requiresCalibrationData),
          opts.pipeline ?? "independent",
        ),
        E.bimap(recipeError, (passes) => ({ runs, passes: opts.inTurn === true ? passes.map((p) => ({ ...p, inTurn: true })) : passes, plan, kvCacheScheme: kv.right })),
      ),
    ),
  );
};

/** What calibration leaves once every layer is written and the writer closed: the metadata is still to be saved. */
export interface Calibrated {
  readonly written: ReturnType<CheckpointIO["written"]>;
  readonly metadata: MetadataParts;
  readonly layers: ReadonlyArray<LayerReport>;
  readonly warnings: ReadonlyArray<string>;
}

/** The modifiers over the model's layers, every tensor written through `writer` (closed at the end). */
export const calibrateInto = (opts: OneshotCore & Pick<OneshotOptions, "maxMemory" | "spillDir">, h: ModelHandle, prep: Prepared, writer: ShardedWriter, output: string): TE.TaskEither<LlmqError, Calibrated> => async () => {
  const globals = await loadGlobals(h);
  if (E.isLeft(globals)) return globals;
  const runs = editGlobals(prep.runs, globals.right);
  if (E.isLeft(runs)) return runs;
  const extra = checkpointConfigOf(runs.right);
  if (E.isLeft(extra)) return extra;
  const windows = embedWindows(h, globals.right.current, opts.dataset ?? null);
  if (E.isLeft(windows)) return windows;
  const io = checkpointIO(h, globals.right, writer, output, sampleRss);
  const ctx = { config: h.config, architecture: h.architecture, numLayers: h.numLayers, io, signal: opts.signal, progress: opts.progress ?? noProgress, plan: prep.plan };
  const ran = await runPipeline(ctx, runs.right, prep.passes, windows.right, {
    ...(opts.maxMemory !== undefined ? { maxMemory: opts.maxMemory } : {}),
    ...(opts.spillDir !== undefined ? { spillDir: opts.spillDir } : {}),
  });
  if (E.isLeft(ran)) return ran;
  const finished = finishAll(ran.right.runs);
  if (E.isLeft(finished)) return finished;
  const closed = await writer.close()();
  if (E.isLeft(closed)) return E.left(outputFailureOf(output, closed.left));
  return E.right({
    written: io.written(),
    metadata: { yaml: savedRecipeYaml(opts.recipe, extra.right.transformConfig), kvCacheScheme: prep.kvCacheScheme, extra: extra.right },
    layers: ran.right.reports,
    warnings: ran.right.warnings,
  });
};

/** The run's summary once the checkpoint is complete at `output`. */
export const resultOf = (opts: OneshotCore, output: string, format: string, c: Calibrated, t0: number): OneshotResult => {
  sampleRss();
  const dataset = opts.dataset ?? null;
  return {
    output,
    scheme: opts.recipe?.schemeName ?? "custom",
    format,
    modules: c.written.length,
    seconds: (performance.now() - t0) / 1000,
    peak_rss_mb: Math.round(peakRss / 2 ** 20),
    backend: activeBackend() === "native" ? `native (${nativeAddon()?.isa ?? "?"})` : "js",
    calibration: dataset ? { samples: dataset.windows.length, tokens: dataset.tokens } : null,
    layers: c.layers,
    warnings: [...(opts.recipe?.warnings ?? []), ...c.warnings],
  };
};

/** Starts the peak-RSS sampling of one run. */
export const startRss = (): void => {
  peakRss = 0;
  sampleRss();
};

const quantizeInto = (opts: OneshotOptions, h: ModelHandle, prep: Prepared, staged: StagedDirectory, writer: ShardedWriter, t0: number): TE.TaskEither<LlmqError, OneshotResult> => async () => {
  const c = await calibrateInto(opts, h, prep, writer, opts.output)();
  if (E.isLeft(c)) return c;
  const format = await writeMetadata(h, staged.staging, c.right.written, c.right.metadata)();
  if (E.isLeft(format)) return format;
  if (opts.signal?.aborted) return E.left(abortedBy(opts.signal));
  const committed = await staged.commit()();
  if (E.isLeft(committed)) return E.left(outputFailureOf(opts.output, committed.left));
  return E.right(resultOf(opts, committed.right, format.right, c.right, t0));
};

/** llm-compressor's `oneshot`: calibrate, quantize and save a compressed-tensors checkpoint. */
export const oneshot = (opts: OneshotOptions): TE.TaskEither<LlmqError, OneshotResult> => {
  const t0 = performance.now();
  startRss();
  const outputFailure = (e: SerializationError): LlmqError => outputFailureOf(opts.output, e);
  return TE.bracket(
    openModelDir(opts.model),
    (h) =>
      pipe(
        TE.fromEither(prepare(opts, h)),
        TE.chain((prep) =>
          TE.bracket(
            TE.mapLeft(outputFailure)(stageDirectory(opts.output, { overwrite: opts.overwrite === true, protect: [opts.model, ...(opts.protect ?? [])] })),
            (staged) =>
              TE.bracket(
                TE.mapLeft(outputFailure)(createShardedWriter(staged.staging, { maxShardSize: opts.maxShardSize ?? "5GB" })),
                (writer) => quantizeInto(opts, h, prep, staged, writer, t0),
                // A no-op once close() has renamed the shards into place.
                (writer, r) => (E.isLeft(r) ? TE.fromTask(() => writer.abort()) : TE.right(undefined)),
              ),
            (staged, r) => (E.isLeft(r) ? TE.fromTask(() => staged.discard()) : TE.right(undefined)),
          ),
        ),
      ),
    (h) => TE.fromTask(() => h.close()),
  );
};
