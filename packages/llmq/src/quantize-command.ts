import { readFile, writeFile } from "node:fs/promises";
import type { TransformRecord } from "@llmq/observers";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type Dataset, loadDataset } from "./dataset.js";
import { type LlmqError, ioError, recipeError } from "./errors.js";
import { type OneshotResult, oneshot } from "./oneshot.js";
import type { PipelineName } from "./pipeline.js";
import { openModelDir, optionalTokenizer } from "./open-model.js";
import type { ProgressSink } from "./progress.js";
import { type Recipe, recipeFromScheme, recipeFromYaml } from "./recipe.js";
import { type ReportSection, barChartSvg, renderReport } from "./report.js";

export interface QuantizeCommandOptions {
  readonly model: string;
  readonly output: string;
  readonly scheme?: string | undefined;
  readonly method: string;
  readonly recipe?: string | undefined;
  readonly dataset?: string | undefined;
  readonly numSamples: number;
  readonly seqLen: number;
  readonly ignore?: ReadonlyArray<string> | undefined;
  readonly targets?: ReadonlyArray<string> | undefined;
  readonly seed: number;
  readonly pipeline?: PipelineName | undefined;
  readonly report?: string | undefined;
  readonly overwrite: boolean;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

const resolveRecipe = async (o: QuantizeCommandOptions): Promise<E.Either<LlmqError, Recipe>> => {
  if (o.recipe !== undefined) {
    let text: string;
    try {
      text = await readFile(o.recipe, "utf8");
    } catch (e) {
      return E.left(ioError(o.recipe, `cannot read the recipe: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`));
    }
    const progress = o.progress;
    return recipeFromYaml(
      text,
      { ignore: o.ignore, targets: o.targets },
      progress ? { onGridPoint: (mapping, done, total) => progress({ kind: "detail", stage: "quantize", label: `AWQ ${mapping} · grid ${done}/${total}` }) } : {},
    );
  }
  if (o.method !== "rtn" && o.method !== "gptq") return E.left(recipeError(`--method must be rtn or gptq, got "${o.method}" (other methods are given with --recipe)`));
  return recipeFromScheme({ scheme: o.scheme ?? "W4A16", method: o.method, targets: o.targets, ignore: o.ignore });
};

/** `llmq quantize`: recipe from flags or YAML, optional calibration data, then oneshot. */
export const quantizeCommand = (o: QuantizeCommandOptions): TE.TaskEither<LlmqError, OneshotResult> => async () => {
  const recipe = await resolveRecipe(o);
  if (E.isLeft(recipe)) return recipe;
  let dataset: Dataset | null = null;
  if (o.dataset !== undefined) {
    const h = await openModelDir(o.model)();
    if (E.isLeft(h)) return h;
    const vocab = h.right.config.vocab_size;
    await h.right.close();
    const tok = await optionalTokenizer(o.model)();
    if (E.isLeft(tok)) return tok;
    const ds = await loadDataset(o.dataset, tok.right, { numSamples: o.numSamples, seqLen: o.seqLen, seed: o.seed, sampling: "shuffle", vocabSize: vocab })();
    if (E.isLeft(ds)) return ds;
    dataset = ds.right;
  }
  const r = await oneshot({
    model: o.model,
    output: o.output,
    recipe: recipe.right,
    dataset,
    ...(o.pipeline !== undefined ? { pipeline: o.pipeline } : {}),
    overwrite: o.overwrite,
    ...(o.signal ? { signal: o.signal } : {}),
    ...(o.progress ? { progress: o.progress } : {}),
  })();
  if (E.isLeft(r) || o.report === undefined) return r;
  const written = await writeQuantizeReport(o.report, o.model, recipe.right, r.right);
  return E.isLeft(written) ? written : r;
};

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
  try {
    await writeFile(path, html);
    return E.right(undefined);
  } catch (e) {
    return E.left(ioError(path, `cannot write the report: ${(e as Error).message}`));
  }
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
