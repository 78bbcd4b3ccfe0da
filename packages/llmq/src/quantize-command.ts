import { nodeBuiltin } from "@llmq/tensor";
import type { TransformRecord } from "@llmq/observers";
import { formatMsConfigError, parseMsQuantConfig } from "@llmq/schemes";
import { liveLockHolder, lockPathOf, parseByteSize, quantMethodOf } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type Dataset, loadDataset, readRegularFile } from "./dataset.js";
import { checkOutputPath } from "./check-output-path.js";
import { type ConvertFormat, convertCommand } from "./convert-command.js";
import { type LlmqError, ioErrorFrom, outputExists, outputLocked, recipeError, usageError } from "./errors.js";
import { type OneshotResult, oneshot } from "./oneshot.js";
import type { PipelineName } from "./pipeline.js";
import { isGgufPath, openModelDir, optionalTokenizer } from "./open-model.js";
import type { ProgressSink } from "./progress.js";
import { type Recipe, awqProgress, recipeFromScheme, recipeFromYaml } from "./recipe.js";
import { quantizeWithMsModelSlim } from "./ms-model-slim.js";
import { checkReportPath, writeReportFile } from "./report-file.js";
import { type ReportSection, barChartSvg, renderReport } from "./report.js";
import { MAX_NUM_SAMPLES, checkSeqLen, checkWindowMemory, seqLenWarning } from "./window-memory.js";
const { mkdtemp, readFile, rm } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { dirname, join, resolve } = nodeBuiltin<typeof import("node:path")>("node:path");

export interface QuantizeCommandOptions {
  readonly model: string;
  readonly output: string;
  readonly scheme?: string | undefined;
  readonly method: string;
  readonly recipe?: string | undefined;
  /** An msModelSlim QuantConfig (JSON or YAML): the output is written in msModelSlim's safe_tensor layout. */
  readonly msmodelslimConfig?: string | undefined;
  readonly dataset?: string | undefined;
  readonly numSamples: number;
  readonly seqLen: number;
  readonly ignore?: ReadonlyArray<string> | undefined;
  readonly targets?: ReadonlyArray<string> | undefined;
  readonly seed: number;
  readonly pipeline?: PipelineName | undefined;
  readonly report?: string | undefined;
  /** Calibration activations kept in memory ("2GB"); the rest spill to a temporary file (in `spillDir`). */
  readonly maxMemory?: string | undefined;
  readonly spillDir?: string | undefined;
  readonly overwrite: boolean;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

/** oneshot's maxMemory (bytes) and spillDir: what --max-memory / --spill-dir ask for, parsed and checked once. */
interface Spill {
  readonly maxMemory?: number;
  readonly spillDir?: string;
}

const spillOf = (o: QuantizeCommandOptions): E.Either<LlmqError, Spill> => {
  if (o.maxMemory === undefined)
    return o.spillDir !== undefined ? E.left(usageError("--spill-dir", "only applies with --max-memory", "add --max-memory or drop --spill-dir")) : E.right({});
  const bytes = parseByteSize(o.maxMemory, "--max-memory");
  if (E.isLeft(bytes)) return E.left(usageError("--max-memory", bytes.left, 'pass a size such as "2GB" or "512MB"'));
  if (o.dataset === undefined) return E.left(usageError("--max-memory", "bounds the calibration activations, and there is no --dataset", "drop --max-memory or pass --dataset"));
  return E.right({ maxMemory: bytes.right, ...(o.spillDir !== undefined ? { spillDir: o.spillDir } : {}) });
};

const resolveRecipe = async (o: QuantizeCommandOptions): Promise<E.Either<LlmqError, Recipe>> => {
  if (o.recipe !== undefined) {
    let text: string;
    try {
      text = await readRegularFile(o.recipe);
    } catch (e) {
      return E.left(ioErrorFrom(o.recipe, "cannot read the recipe", e));
    }
    const progress = o.progress;
    return recipeFromYaml(
      text,
      { ignore: o.ignore, targets: o.targets },
      progress ? { onGridPoint: awqProgress(progress) } : {},
    );
  }
  if (o.method !== "rtn" && o.method !== "gptq") return E.left(recipeError(`--method must be rtn or gptq, got "${o.method}" (other methods are given with --recipe)`));
  return recipeFromScheme({ scheme: o.scheme ?? "W4A16", method: o.method, targets: o.targets, ignore: o.ignore });
};

/** The files the run reads: the output may not overlap any of them. */
const inputsOf = (o: QuantizeCommandOptions): ReadonlyArray<string> => [o.model, ...[o.dataset, o.recipe, o.msmodelslimConfig].filter((p): p is string => p !== undefined)];

/** The paths the output may not equal, contain or lie inside: the inputs and the report. */
const protectedPaths = (o: QuantizeCommandOptions): ReadonlyArray<string> => [...inputsOf(o), ...(o.report !== undefined ? [o.report] : [])];

/** Everything about the paths that can be refused before any work: overlaps, an existing output, the report. */
/**
 * The `llmq convert --from` format of a model that is not a dense / compressed-tensors directory: a GGUF file, or a
 * GPTQ / AWQ / bitsandbytes / FP8 / HQQ / AQLM directory (null otherwise). Such a model is dequantized to a dense f32
 * directory first and that is quantized (the output needs an HF config and tokenizer files of its own).
 */
const sourceFormatOf = async (model: string): Promise<ConvertFormat | null> => {
  if (await isGgufPath(model)) return "gguf";
  let qc: unknown;
  try {
    qc = (JSON.parse(await readFile(join(model, "config.json"), "utf8")) as Record<string, unknown> | null)?.quantization_config;
  } catch {
    return null; // a missing or broken config.json is reported where the model is opened
  }
  if (typeof qc !== "object" || qc === null || !("quant_method" in qc)) return null;
  const m = quantMethodOf("config.json", qc);
  if (E.isLeft(m) || m.right === "compressed-tensors") return null;
  return m.right.startsWith("bitsandbytes") ? "bnb" : m.right === "fbgemm_fp8" ? "fp8" : (m.right as ConvertFormat);
};

/** Dequantizes a quantized source into a hidden sibling of the output (removed by the caller) with a warning. */
const dequantizedSource = async (o: QuantizeCommandOptions, from: ConvertFormat): Promise<E.Either<LlmqError, { readonly dir: string; readonly model: string; readonly warning: string }>> => {
  let dir: string;
  try {
    dir = await mkdtemp(join(dirname(resolve(o.output)), ".llmq-dequantized-"));
  } catch (e) {
    return E.left(ioErrorFrom(dirname(resolve(o.output)), "cannot create the dequantized copy of the model beside the output", e));
  }
  const model = join(dir, "model");
  const c = await convertCommand({ from, model: o.model, output: model, overwrite: false, dtype: "f32" })();
  if (E.isLeft(c)) {
    await rm(dir, { recursive: true, force: true });
    return c;
  }
  const types = Object.entries(c.right.sourceTypes ?? {}).map(([t, n]) => `${n} ${t}`).join(", ");
  return E.right({
    dir,
    model,
    warning: `${o.model} is a ${from} checkpoint (${types}): it was dequantized to f32 and re-quantized, so the result's quality is bounded by the source's quantization`,
  });
};

const checkPaths = async (o: QuantizeCommandOptions): Promise<E.Either<LlmqError, void>> => {
  const state = await checkOutputPath(o.output, protectedPaths(o));
  if (E.isLeft(state)) return state;
  const holder = await liveLockHolder(o.output);
  if (holder !== null) return E.left(outputLocked(o.output, holder, lockPathOf(resolve(o.output))));
  if (!o.overwrite && state.right === "non-empty") return E.left(outputExists(o.output));
  return o.report === undefined ? E.right(undefined) : checkReportPath(o.report, o.output, inputsOf(o));
};

const checkNumSamples = (n: number): E.Either<LlmqError, void> =>
  Number.isSafeInteger(n) && n >= 1 && n <= MAX_NUM_SAMPLES
    ? E.right(undefined)
    : E.left(usageError("--num-samples", `must be an integer in [1, ${MAX_NUM_SAMPLES}], got ${n}`, "pass a smaller --num-samples"));

/** Calibration windows checked against the model: --seq-len allocatable, their activations within memory. */
export const loadCalibration = async (
  o: Pick<QuantizeCommandOptions, "model" | "seqLen" | "numSamples" | "seed">,
  dataset: string,
  maxMemory?: number,
): Promise<E.Either<LlmqError, { readonly data: Dataset; readonly warnings: ReadonlyArray<string> }>> => {
  const h = await openModelDir(o.model)();
  if (E.isLeft(h)) return h;
  const config = h.right.config;
  await h.right.close();
  const seq = checkSeqLen(config, o.seqLen, false);
  if (E.isLeft(seq)) return seq;
  const tok = await optionalTokenizer(o.model)();
  if (E.isLeft(tok)) return tok;
  const ds = await loadDataset(dataset, tok.right, { numSamples: o.numSamples, seqLen: o.seqLen, seed: o.seed, sampling: "shuffle", vocabSize: config.vocab_size })();
  if (E.isLeft(ds)) return ds;
  const mem = checkWindowMemory(config, ds.right.windows, { copies: 1, logits: false, maxMemory });
  return E.isLeft(mem) ? mem : E.right({ data: ds.right, warnings: seqLenWarning(config, o.seqLen) });
};

/** `llmq quantize`: arguments checked, recipe from flags or YAML, optional calibration data, then oneshot. */
export const quantizeCommand = (o: QuantizeCommandOptions): TE.TaskEither<LlmqError, OneshotResult> => async () => {
  const checked = checkNumSamples(o.numSamples);
  if (E.isLeft(checked)) return checked;
  const spill = spillOf(o);
  if (E.isLeft(spill)) return spill;
  const paths = await checkPaths(o);
  if (E.isLeft(paths)) return paths;
  if (o.msmodelslimConfig !== undefined) return quantizeMsModelSlim(o, o.msmodelslimConfig, spill.right);
  const recipe = await resolveRecipe(o);
  if (E.isLeft(recipe)) return recipe;
  const from = await sourceFormatOf(o.model);
  if (from === null) return quantizeDense(o, o, recipe.right, [], spill.right);
  const src = await dequantizedSource(o, from);
  if (E.isLeft(src)) return src;
  try {
    return await quantizeDense({ ...o, model: src.right.model }, o, recipe.right, [src.right.warning], spill.right);
  } finally {
    await rm(src.right.dir, { recursive: true, force: true });
  }
};

/** The flags a QuantConfig replaces: giving them beside --msmodelslim-config is a usage error, not silently ignored. */
const MS_CONFLICTS: ReadonlyArray<readonly [keyof QuantizeCommandOptions, string, string]> = [
  ["recipe", "--recipe", "the QuantConfig is the recipe"],
  ["scheme", "--scheme", "the QuantConfig's w_bit / a_bit choose the scheme"],
  ["ignore", "--ignore", "use disable_names in the QuantConfig"],
  ["targets", "--targets", "msModelSlim quantizes every Linear; use disable_names"],
  ["report", "--report", "the report is written for compressed-tensors output only"],
];

/** `llmq quantize --msmodelslim-config cfg`: the QuantConfig decoded, calibration loaded, quantizeWithMsModelSlim. */
const quantizeMsModelSlim = async (o: QuantizeCommandOptions, file: string, spill: Spill): Promise<E.Either<LlmqError, OneshotResult>> => {
  const clash = MS_CONFLICTS.find(([k]) => o[k] !== undefined && !(Array.isArray(o[k]) && (o[k] as unknown[]).length === 0));
  if (clash) return E.left(usageError(clash[1], `cannot be combined with --msmodelslim-config: ${clash[2]}`, `drop ${clash[1]}`));
  if (o.method !== "rtn") return E.left(usageError("--method", "cannot be combined with --msmodelslim-config: the QuantConfig's w_method chooses it", "drop --method"));
  let text: string;
  try {
    text = await readRegularFile(file);
  } catch (e) {
    return E.left(ioErrorFrom(file, "cannot read the msModelSlim config", e));
  }
  const cfg = parseMsQuantConfig(text);
  if (E.isLeft(cfg)) return E.left(recipeError(`${file}: ${formatMsConfigError(cfg.left)}`));
  const calib = o.dataset !== undefined ? await loadCalibration(o, o.dataset, spill.maxMemory) : E.right(null);
  if (E.isLeft(calib)) return calib;
  const r = await quantizeWithMsModelSlim(cfg.right, {
    model: o.model,
    output: o.output,
    dataset: calib.right?.data ?? null,
    overwrite: o.overwrite,
    ...(o.pipeline !== undefined ? { pipeline: o.pipeline } : {}),
    ...spill,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  })();
  if (E.isLeft(r)) return r;
  const one = r.right.oneshot;
  return E.right({ ...one, output: r.right.output, format: `msmodelslim ${r.right.type} (${r.right.files.join(", ")})`, warnings: [...(calib.right?.warnings ?? []), ...r.right.warnings] });
};

/** Calibration, oneshot and the report for a dense (or compressed-tensors) model `run.model`; `o` is what the user gave. */
const quantizeDense = async (
  run: QuantizeCommandOptions,
  o: QuantizeCommandOptions,
  recipe: Recipe,
  warnings: ReadonlyArray<string>,
  spill: Spill,
): Promise<E.Either<LlmqError, OneshotResult>> => {
  const calib = run.dataset !== undefined ? await loadCalibration(run, run.dataset, spill.maxMemory) : E.right(null);
  if (E.isLeft(calib)) return calib;
  const r = await oneshot({
    model: run.model,
    output: o.output,
    recipe,
    dataset: calib.right?.data ?? null,
    ...(o.pipeline !== undefined ? { pipeline: o.pipeline } : {}),
    ...spill,
    overwrite: o.overwrite,
    protect: protectedPaths(o),
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  })();
  if (E.isLeft(r)) return r;
  const result: OneshotResult = { ...r.right, warnings: [...warnings, ...(calib.right?.warnings ?? []), ...r.right.warnings] };
  if (o.report === undefined) return E.right(result);
  const written = await writeQuantizeReport(o.report, o.model, recipe, result);
  return E.isLeft(written) ? E.left(reportAfterCommit(written.left, result.output)) : E.right(result);
};

/** A report that failed although it was checked: the checkpoint is complete, say so. */
const reportAfterCommit = (e: LlmqError, output: string): LlmqError =>
  e._tag === "IoError" ? { ...e, detail: `${e.detail}; the checkpoint ${output} itself was written completely` } : e;

/** SmoothQuant / AWQ: what each mapping chose (AWQ: the grid point and its loss against the first grid point's). */
const transformSections = (ts: ReadonlyArray<TransformRecord>): ReadonlyArray<ReportSection> => {
  if (ts.length === 0) return [];
  const searched = ts.filter((t) => t.loss !== null && t.initialLoss !== null && t.initialLoss > 0);
  return [
    ...(searched.length > 0
      ? [
          {
            title: "AWQ loss per mapping (best / first grid point)",
            note: "mean squared error of the parent module's output with Q(W·s)/s, at the chosen ratio relative to ratio 0 without duo scaling (1 = no gain)",
            svg: barChartSvg(searched.map((t) => ({ label: t.smooth, value: t.loss! / t.initialLoss! }))),
          },
        ]
      : []),
    {
      title: "Transforms per mapping",
      table: {
        head: ["modifier", "smooth layer", "balance layers", "ratio", "duo scaling", "loss", "first-point loss", "scale min", "scale max", "seconds"],
        rows: ts.map((t) => [
          t.modifier,
          t.smooth,
          t.balance.map((b) => b.split(".").slice(-1)[0]).join(", "),
          t.ratio ?? "—",
          t.duoScaling === null ? "—" : String(t.duoScaling),
          t.loss ?? "—",
          t.initialLoss ?? "—",
          t.scaleMin,
          t.scaleMax,
          t.seconds,
        ]),
      },
    },
  ];
};

/** The HTML report of a quantize run: per-layer output error, per-module loss, the module table. */
const writeQuantizeReport = async (path: string, model: string, recipe: Recipe, v: OneshotResult): Promise<E.Either<LlmqError, void>> => {
  const modules = v.layers.flatMap((l) => l.modules);
  const html = renderReport(
    `llmq quantize: ${v.output}`,
    {
      model,
      output: v.output,
      scheme: v.scheme,
      format: v.format,
      modifiers: recipe.modifiers.map((m) => m.type).join(", "),
      modules: v.modules,
      "calibration samples": v.calibration?.samples ?? null,
      "calibration tokens": v.calibration?.tokens ?? null,
      seconds: v.seconds,
      "peak RSS (MB)": v.peak_rss_mb,
      backend: v.backend,
    },
    [
      ...(v.layers.some((l) => l.output_rel_error !== null)
        ? [
            {
              title: "Per-layer output error",
              note: "‖quantized layer output − fp layer output‖² / ‖fp layer output‖² on the first 8 calibration batches (same inputs)",
              svg: barChartSvg(
                v.layers.map((l) => ({ label: l.name, value: l.output_rel_error ?? 0 })),
                { log: true },
              ),
            },
          ]
        : []),
      {
        title: "Per-module loss",
        note: "GPTQ modules: loss Σ((w − q)/d)²/2; RTN modules: ½‖W − Q‖²",
        svg: barChartSvg(
          modules.map((m) => ({ label: m.name, value: m.loss })),
          { log: true },
        ),
      },
      { title: "Modules", table: { head: ["module", "method", "loss", "seconds"], rows: modules.map((m) => [m.name, m.method, m.loss, m.seconds]) } },
      ...transformSections(v.layers.flatMap((l) => l.transforms)),
    ],
  );
  return writeReportFile(path, html);
};

export const formatQuantize = (r: OneshotResult): string => {
  const worst = [...r.layers].sort((a, b) => (b.output_rel_error ?? b.loss) - (a.output_rel_error ?? a.loss))[0];
  return [
    `quantized ${r.modules} modules (${r.scheme}, ${r.format}) → ${r.output}`,
    `time ${r.seconds.toFixed(2)} s, peak RSS ${r.peak_rss_mb} MB, backend ${r.backend}` +
      (r.calibration ? `, calibration ${r.calibration.samples} samples / ${r.calibration.tokens} tokens` : ", data-free"),
    ...(worst
      ? [`largest layer error: ${worst.name} (${worst.output_rel_error !== null ? `relative output error ${worst.output_rel_error.toExponential(3)}` : `loss ${worst.loss.toExponential(3)}`})`]
      : []),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
};
