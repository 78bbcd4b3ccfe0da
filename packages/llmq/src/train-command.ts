import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type Dataset, loadDataset, readRegularFile } from "./dataset.js";
import { type LlmqError, ioErrorFrom, usageError } from "./errors.js";
import { lineChartSvg } from "./line-chart-svg.js";
import { optionalTokenizer, openModelDir } from "./open-model.js";
import { type TrainHyperparameters, type TrainResult, qatConfig, train } from "./qat-train.js";
import { recipeFromYaml } from "./recipe.js";
import { checkReportPath, writeReportFile } from "./report-file.js";
import { renderReport } from "./report.js";

export interface TrainCommandOptions extends TrainHyperparameters {
  readonly model: string;
  readonly recipe: string;
  readonly dataset: string;
  readonly evalDataset?: string | undefined;
  readonly output: string;
  readonly warmup: number;
  /** 0: no clipping. */
  readonly maxGradNorm: number;
  readonly seqLen: number;
  readonly numSamples?: number | undefined;
  readonly evalSamples?: number | undefined;
  readonly overwrite: boolean;
  readonly report?: string | undefined;
}

const checkArgs = async (o: TrainCommandOptions): Promise<E.Either<LlmqError, void>> => {
  if (!(o.distillWeight >= 0 && o.distillWeight <= 1)) return E.left(usageError("--distill-weight", `must lie in [0, 1], got ${o.distillWeight}`, "1 distils only, 0 trains on cross-entropy only"));
  if (o.distillWeight > 0 && o.teacher === undefined)
    return E.left(usageError("--teacher", `--distill-weight ${o.distillWeight} distils from a teacher, but none was given`, "pass --teacher DIR (the unquantized model) or --distill-weight 0"));
  if (o.evalDataset !== undefined && o.teacher === undefined)
    return E.left(usageError("--eval-dataset", "the held-out KL divergence is measured against --teacher, and none was given", "pass --teacher DIR or leave out --eval-dataset"));
  if (o.epochs < 1) return E.left(usageError("--epochs", `must be ≥ 1, got ${o.epochs}`, "pass --epochs 1 or more"));
  const inputs = [o.model, o.dataset, o.recipe, ...[o.teacher, o.evalDataset].filter((p): p is string => p !== undefined)];
  return o.report === undefined ? E.right(undefined) : checkReportPath(o.report, o.output, inputs);
};

const windowsOf = async (o: TrainCommandOptions, path: string, numSamples: number | undefined, sampling: "shuffle" | "sequential"): Promise<E.Either<LlmqError, Dataset>> => {
  const m = await openModelDir(o.model)();
  if (E.isLeft(m)) return m;
  try {
    const tok = await optionalTokenizer(o.model, o.teacher)();
    if (E.isLeft(tok)) return tok;
    return await loadDataset(path, tok.right, { seqLen: o.seqLen, numSamples, seed: o.seed, sampling, vocabSize: m.right.config.vocab_size })();
  } finally {
    await m.right.close();
  }
};

export const trainCommand = (o: TrainCommandOptions): TE.TaskEither<LlmqError, TrainResult> => async () => {
  const args = await checkArgs(o);
  if (E.isLeft(args)) return args;
  let text: string;
  try {
    text = await readRegularFile(o.recipe);
  } catch (e) {
    return E.left(ioErrorFrom(o.recipe, "cannot read the recipe", e));
  }
  const recipe = recipeFromYaml(text);
  if (E.isLeft(recipe)) return recipe;
  const qat = qatConfig(recipe.right);
  if (E.isLeft(qat)) return qat;
  const ds = await windowsOf(o, o.dataset, o.numSamples, "shuffle");
  if (E.isLeft(ds)) return ds;
  const evalDs = o.evalDataset === undefined ? null : await windowsOf(o, o.evalDataset, o.evalSamples, "sequential");
  if (evalDs !== null && E.isLeft(evalDs)) return evalDs;
  // The rest of the options are the library's (TrainHyperparameters) as they are.
  const r = await train({
    ...o,
    recipe: recipe.right,
    dataset: ds.right,
    evalDataset: evalDs === null ? null : evalDs.right,
    warmupSteps: o.warmup,
    maxGradNorm: o.maxGradNorm === 0 ? null : o.maxGradNorm,
    distillWeight: o.teacher === undefined ? 0 : o.distillWeight,
  })();
  if (E.isLeft(r) || o.report === undefined) return r;
  const written = await writeReportFile(o.report, trainReport(o, r.right));
  return E.isLeft(written) ? written : r;
};

const trainReport = (o: TrainCommandOptions, r: TrainResult): string =>
  renderReport(
    `llmq train: ${o.model}`,
    { model: o.model, teacher: o.teacher ?? null, recipe: o.recipe, output: r.output, steps: r.steps, "seconds": r.seconds, "held-out KLD at start": r.start_eval_kld },
    [
      { title: "Training loss per step", svg: lineChartSvg(r.losses, { xLabel: "step", yLabel: o.teacher === undefined ? "cross-entropy (nats)" : "loss (nats)" }) },
      {
        title: "Epochs",
        table: { head: ["epoch", "mean loss", "held-out KLD"], rows: r.epochs.map((e) => [e.epoch, e.loss, e.eval_kld ?? "—"]) },
      },
    ],
  );

const f = (x: number | null, digits = 6): string => (x === null ? "—" : x.toFixed(digits));

export const formatTrain = (r: TrainResult): string =>
  [
    `output:          ${r.output}`,
    `modules:         ${r.modules} fake-quantized (${r.qparams_from_checkpoint} on the start checkpoint's qparams)`,
    `steps:           ${r.steps} in ${r.seconds.toFixed(1)} s`,
    `held-out KLD:    ${f(r.start_eval_kld)} at start`,
    ...r.epochs.map((e) => `epoch ${e.epoch}:         loss ${f(e.loss)}  held-out KLD ${f(e.eval_kld)}`),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
