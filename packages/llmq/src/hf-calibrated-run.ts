import { nodeBuiltin } from "@llmq/tensor";
// The calibrated transformers methods (GPTQConfig, AwqConfig) as llmq runs them: the model cast to float16 (GPTQ and
// AWQ checkpoints store fp16 scales, so the codes are chosen with the scales that are stored) in a hidden sibling of
// the output, llmq's oneshot pipeline (sequential, as optimum / AutoAWQ go block by block) writing compressed-tensors
// there, and the method's repacking of those codes into its own layout as the output.
import { type PyJson, type PyJsonObject, type TorchFloat, openCheckpoint } from "@llmq/serialization";
import { type Recipe as LcRecipe, formatRecipeError, recipeFromModifiers } from "@llmq/schemes";
import { type Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, internal, ioErrorFrom, recipeError, usageError } from "./errors.js";
import { configText, isModelDirectory, readAll, writeOutput } from "./hf-output.js";
import { oneshot } from "./oneshot.js";
import { openModelDir } from "./open-model.js";
import type { ProgressSink } from "./progress.js";
import { loadCalibration } from "./quantize-command.js";
import { type ModifierOptions, type Recipe, awqProgress, recipeFromLc } from "./recipe.js";
const { mkdtemp, rename, rm, writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { dirname, join, resolve } = nodeBuiltin<typeof import("node:path")>("node:path");

export interface CalibratedRun {
  readonly model: string;
  readonly output: string;
  readonly overwrite: boolean;
  readonly dtype?: TorchFloat | undefined;
  readonly dataset?: string | undefined;
  readonly numSamples: number;
  readonly seqLen: number;
  /** Whether the user set --seq-len (a config's own window length, GPTQConfig.model_seqlen, must then agree). */
  readonly seqLenGiven?: boolean | undefined;
  readonly seed: number;
  /** Also keep the compressed-tensors checkpoint of the same run here (it is otherwise a removed intermediate). */
  readonly keepCompressedTensors?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly progress?: ProgressSink | undefined;
}

/** One calibrated method: its plan from the config, the modifiers that run it, and its repacking. */
export interface CalibratedMethod<P> {
  /** blockLinears: one block's linears relative to it; linearNames: every linear's full name. */
  readonly plan: (blockPrefix: string, blockLinears: ReadonlyArray<string>, linearNames: ReadonlyArray<string>) => E.Either<LlmqError, P & { readonly warnings: ReadonlyArray<string>; readonly subsets: ReadonlyArray<ReadonlyArray<string>> }>;
  /** Why a linear of this shape cannot be stored in the method's layout, or null. */
  readonly packable: (p: P, inFeatures: number, outFeatures: number) => string | null;
  readonly modifiers: (p: P, blockPrefix: string) => ReadonlyArray<{ readonly type: string } & Readonly<Record<string, unknown>>>;
  /** How the method's modifiers run beyond their recipe entries (AwqConfig: AutoAWQ's grid loss). */
  readonly modifierOptions?: ModifierOptions;
  /** Edits of the decoded recipe that its YAML cannot express (GPTQ's act-order groups). */
  readonly patchRecipe?: (p: P, r: LcRecipe) => LcRecipe;
  readonly dataset: (given: string | undefined) => E.Either<LlmqError, { readonly file: string | null; readonly texts: ReadonlyArray<string> | null; readonly warnings: ReadonlyArray<string> }>;
  readonly writeTexts: (dir: string, texts: ReadonlyArray<string>) => Promise<E.Either<LlmqError, string>>;
  /** Calibrate the subsets of a block in turn (GPTQ's true_sequential). */
  readonly inTurn: (p: P) => boolean;
  /** The config's own calibration window length (GPTQConfig.model_seqlen), or null. */
  readonly seqLen: (p: P) => number | null;
  readonly repack: (ctDir: string, p: P, quantized: ReadonlyArray<string>) => Promise<E.Either<LlmqError, { readonly tensors: ReadonlyMap<string, Tensor>; readonly warnings: ReadonlyArray<string> }>>;
  readonly quantizationConfig: () => PyJsonObject;
}

export interface CalibratedResult {
  readonly converted: ReadonlyArray<string>;
  readonly kept: ReadonlyArray<string>;
  readonly calibration: { readonly samples: number; readonly tokens: number };
  readonly warnings: ReadonlyArray<string>;
}

const LAYER = /^(.+)\.(\d+)\.(.+)$/;

interface ModelFacts {
  readonly blockPrefix: string;
  readonly blockLinears: ReadonlyArray<string>;
  /** Every linear: name, [out, in]. */
  readonly linears: ReadonlyArray<{ readonly name: string; readonly rel: string | null; readonly shape: ReadonlyArray<number> }>;
}

/** The model's blocks and linears, from its headers. */
const readModel = async (model: string): Promise<E.Either<LlmqError, ModelFacts>> => {
  if (!(await isModelDirectory(model)))
    return E.left(usageError("--model", `${model} is not a model directory with a config.json`, "give a Hugging Face directory (convert a GGUF file first with llmq convert --from gguf)"));
  const h = await openModelDir(model)();
  if (E.isLeft(h)) return h;
  try {
    const linears = h.right.linearModules().map((l) => {
      const m = LAYER.exec(l.name);
      return { name: l.name, prefix: m?.[1] ?? null, index: m?.[2] ?? null, rel: m?.[3] ?? null, shape: h.right.tensorInfo(`${l.name}.weight`)?.shape ?? [] };
    });
    const first = linears.find((l) => l.index !== null);
    if (first === undefined) return E.left(usageError("--model", `${model} has no decoder blocks with linears`, "give a Llama-family model"));
    const blockLinears = linears.filter((l) => l.prefix === first.prefix && l.index === first.index).map((l) => l.rel!);
    return E.right({ blockPrefix: first.prefix!, blockLinears, linears: linears.map((l) => ({ name: l.name, rel: l.prefix === first.prefix ? l.rel : null, shape: l.shape })) });
  } finally {
    await h.right.close();
  }
};

const isFloat = (t: Tensor): boolean => t.dtype === "f32" || t.dtype === "bf16" || t.dtype === "f64";

/** The model as float16 (transformers' from_pretrained(dtype=float16)), with no quantization_config. */
const writeFloat16 = async (model: string, dir: string): Promise<E.Either<LlmqError, void>> => {
  const h = await openModelDir(model)();
  if (E.isLeft(h)) return h;
  const tensors = await readAll(h.right);
  await h.right.close();
  if (E.isLeft(tensors)) return tensors;
  const half = new Map([...tensors.right].map(([n, t]) => [n, isFloat(t) ? cast(t, "f16") : t] as const));
  const text = await configText(model, null, "float16");
  return E.isLeft(text) ? text : writeOutput({ model, output: dir, overwrite: false }, half, text.right);
};

const keepCopy = async (from: string, to: string): Promise<E.Either<LlmqError, void>> => {
  try {
    await rename(from, to);
    return E.right(undefined);
  } catch (e) {
    return E.left(ioErrorFrom(to, "cannot keep the compressed-tensors checkpoint", e));
  }
};

/** Runs the method (see the file comment); every refusal comes before the model's tensors are read. */
/** The linears the plan quantizes, each checked against the method's layout. */
const chosenLinears = <P>(m: CalibratedMethod<P>, p: P & { readonly subsets: ReadonlyArray<ReadonlyArray<string>> }, linears: ModelFacts["linears"]): E.Either<LlmqError, ModelFacts["linears"]> => {
  const wanted = new Set(p.subsets.flat());
  const chosen = linears.filter((l) => l.rel !== null && wanted.has(l.rel));
  const bad = chosen.flatMap((l) => {
    const why = m.packable(p, l.shape[1]!, l.shape[0]!);
    return why === null ? [] : [`${l.rel}: ${why}`];
  });
  return bad.length > 0
    ? E.left(usageError("--hf-config", `cannot store these linears in the layout: ${[...new Set(bad)].join("; ")}`, "leave them out with modules_in_block_to_quantize (they stay dense)"))
    : E.right(chosen);
};

/** Runs the method (see the file comment); every refusal comes before the model's tensors are read. */
export const calibratedRun = async <P>(run: CalibratedRun, m: CalibratedMethod<P>): Promise<E.Either<LlmqError, CalibratedResult>> => {
  if (run.dtype !== undefined && run.dtype !== "float16")
    return E.left(usageError("--dtype", `${run.dtype}: GPTQ and AWQ checkpoints store float16 scales, so llmq quantizes in float16 (the stored scales are the ones the codes were chosen with)`, "drop --dtype or give float16"));
  const ds = m.dataset(run.dataset);
  if (E.isLeft(ds)) return ds;
  const facts = await readModel(run.model);
  if (E.isLeft(facts)) return facts;
  const { blockPrefix, blockLinears, linears } = facts.right;
  const plan = m.plan(blockPrefix, blockLinears, linears.map((l) => l.name));
  if (E.isLeft(plan)) return plan;
  const seqLen = m.seqLen(plan.right);
  if (seqLen !== null && run.seqLenGiven === true && seqLen !== run.seqLen)
    return E.left(usageError("--seq-len", `${run.seqLen} disagrees with the config's model_seqlen ${seqLen}`, "drop one of them"));
  const chosen = chosenLinears(m, plan.right, linears);
  if (E.isLeft(chosen)) return chosen;
  const decoded = recipeFromModifiers(m.modifiers(plan.right, blockPrefix));
  if (E.isLeft(decoded)) return E.left(recipeError(formatRecipeError(decoded.left)));
  const recipe = recipeFromLc(m.patchRecipe?.(plan.right, decoded.right) ?? decoded.right, { ...m.modifierOptions, ...(run.progress ? { onGridPoint: awqProgress(run.progress) } : {}) });
  if (E.isLeft(recipe)) return recipe;
  let tmp: string;
  try {
    tmp = await mkdtemp(join(dirname(resolve(run.output)), ".llmq-hf-calibrated-"));
  } catch (e) {
    return E.left(ioErrorFrom(dirname(resolve(run.output)), "cannot create the working directory beside the output", e));
  }
  try {
    const r = await runIn(tmp, run, m, { plan: plan.right, recipe: recipe.right, seqLen: seqLen ?? run.seqLen, converted: chosen.right.map((l) => l.name), data: ds.right });
    return E.map((x: Omit<CalibratedResult, "kept">) => ({
      ...x,
      kept: linears.filter((l) => !x.converted.includes(l.name)).map((l) => l.name),
      warnings: [...plan.right.warnings, ...x.warnings],
    }))(r);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
};

/** The work inside the temporary directory: float16 copy, calibration, oneshot, repacking, the output. */
const runIn = async <P>(
  tmp: string,
  run: CalibratedRun,
  m: CalibratedMethod<P>,
  w: { readonly plan: P; readonly recipe: Recipe; readonly seqLen: number; readonly converted: ReadonlyArray<string>; readonly data: { readonly file: string | null; readonly texts: ReadonlyArray<string> | null; readonly warnings: ReadonlyArray<string> } },
): Promise<E.Either<LlmqError, Omit<CalibratedResult, "kept">>> => {
  const half = join(tmp, "model");
  const wrote = await writeFloat16(run.model, half);
  if (E.isLeft(wrote)) return wrote;
  const file = w.data.texts !== null ? await m.writeTexts(tmp, w.data.texts) : E.right(w.data.file!);
  if (E.isLeft(file)) return file;
  const calib = await loadCalibration({ model: half, seqLen: w.seqLen, numSamples: run.numSamples, seed: run.seed }, file.right);
  if (E.isLeft(calib)) return calib;
  const ct = join(tmp, "compressed-tensors");
  const r = await oneshot({ model: half, output: ct, recipe: w.recipe, dataset: calib.right.data, pipeline: "sequential", inTurn: m.inTurn(w.plan), ...(run.signal ? { signal: run.signal } : {}), ...(run.progress ? { progress: run.progress } : {}) })();
  if (E.isLeft(r)) return r;
  const packed = await m.repack(ct, w.plan, w.converted);
  if (E.isLeft(packed)) return packed;
  const text = await configText(run.model, m.quantizationConfig(), "float16");
  if (E.isLeft(text)) return text;
  const out = await writeOutput(run, packed.right.tensors, text.right);
  if (E.isLeft(out)) return out;
  const kept = run.keepCompressedTensors !== undefined ? await keepCopy(ct, run.keepCompressedTensors) : E.right(undefined);
  if (E.isLeft(kept)) return kept;
  return E.right({
    converted: w.converted,
    calibration: { samples: calib.right.data.windows.length, tokens: calib.right.data.tokens },
    warnings: [...w.data.warnings, ...calib.right.warnings, ...r.right.warnings, ...packed.right.warnings],
  });
};

/**
 * The run's compressed-tensors checkpoint with each quantized linear's parts (keyed without the module prefix)
 * replaced by `pack`'s tensors; every other tensor as stored (float16).
 */
export const repackCompressed = async (
  ctDir: string,
  quantized: ReadonlyArray<string>,
  pack: (module: string, parts: ReadonlyMap<string, Tensor>) => E.Either<string, ReadonlyMap<string, Tensor>>,
): Promise<E.Either<LlmqError, Map<string, Tensor>>> => {
  const ck = await openCheckpoint(ctDir)();
  if (E.isLeft(ck)) return E.left(ioErrorFrom(ctDir, "cannot open the calibrated run's checkpoint", ck.left));
  try {
    const out = new Map<string, Tensor>();
    const mods = new Set(quantized);
    const parts = new Map<string, Map<string, Tensor>>();
    for (const name of ck.right.names) {
      const t = await ck.right.read(name)();
      if (E.isLeft(t)) return E.left(ioErrorFrom(ctDir, `cannot read ${name}`, t.left));
      const dot = name.lastIndexOf(".");
      const mod = name.slice(0, dot);
      if (mods.has(mod)) parts.set(mod, (parts.get(mod) ?? new Map()).set(name.slice(dot + 1), t.right));
      else out.set(name, t.right);
    }
    for (const [mod, ps] of parts) {
      const packed = pack(mod, ps);
      if (E.isLeft(packed)) return E.left(internal(`${packed.left} (the calibrated run wrote an unexpected layout)`));
      for (const [rel, t] of packed.right) out.set(`${mod}.${rel}`, t);
    }
    return E.right(out);
  } finally {
    await ck.right.close();
  }
};

export const strings = (v: PyJson): ReadonlyArray<string> | null => (Array.isArray(v) && v.every((x) => typeof x === "string") ? (v as string[]) : null);

/** Dataset resolution: a list of strings is calibration text; a hub dataset name needs --dataset (llmq is offline). */
export const calibrationDataset = (cls: string, d: PyJsonObject, given: string | undefined): E.Either<LlmqError, { readonly file: string | null; readonly texts: ReadonlyArray<string> | null; readonly warnings: ReadonlyArray<string> }> => {
  const ds = d.dataset ?? null;
  if (Array.isArray(ds)) {
    if (given !== undefined) return E.left(usageError("--dataset", `cannot be combined with a ${cls} dataset given as a list of strings`, "drop one of them"));
    const texts = strings(ds);
    return texts === null || texts.length === 0 ? E.left(usageError("--hf-config", `${cls}.dataset must be a non-empty list of strings`, "give calibration texts or a --dataset file")) : E.right({ file: null, texts, warnings: [] });
  }
  if (typeof ds === "string")
    return given === undefined
      ? E.left(usageError("--hf-config", `${cls}.dataset "${ds}" is a Hugging Face hub dataset, which llmq cannot fetch (it runs offline)`, `pass the calibration text with --dataset <file> (a local copy of ${ds}), or give dataset as a list of strings`))
      : E.right({ file: given, texts: null, warnings: [`${cls}.dataset "${ds}" names a hub dataset: calibrating on --dataset ${given} instead (saved in quantization_config as given)`] });
  return given === undefined
    ? E.left(usageError("--dataset", `${cls} needs calibration data`, `pass --dataset <file> (text, JSONL or token ids) or give ${cls} dataset as a list of strings`))
    : E.right({ file: given, texts: null, warnings: [] });
};

/** A list of calibration strings as a JSONL file (one sample each: BOS + its tokens, as optimum tokenizes them). */
export const writeTexts = async (dir: string, texts: ReadonlyArray<string>): Promise<E.Either<LlmqError, string>> => {
  const file = join(dir, "gptq-dataset.jsonl");
  try {
    await writeFile(file, texts.map((text) => JSON.stringify({ text })).join("\n"));
    return E.right(file);
  } catch (e) {
    return E.left(ioErrorFrom(file, "cannot write the calibration texts", e));
  }
};


const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/** The recipe target naming the given modules of every block: `re:^<block>\.\d+\.(m1|m2…)$`. */
export const blockTarget = (blockPrefix: string, modules: ReadonlyArray<string>): string => `re:^${escapeRe(blockPrefix)}\\.\\d+\\.(${modules.map(escapeRe).join("|")})$`;
