import { type HqqBits, type HqqQuantized, type MsQuantConfig, msPerGroup, msQuantType } from "@llmq/schemes";
import { HqqModifier, type Modifier } from "@llmq/observers";
import { MsKvCacheModifier } from "@llmq/kv-cache";
import {
  type Checkpoint,
  MS_GIB,
  type MsLayout,
  type MsLayoutType,
  type MsLinear,
  type PyJson,
  dumpPythonJson,
  formatSerializationError,
  msAscendV1,
  msModelSlimLayout,
  msShards,
  openCheckpoint,
  outputState,
  parsePythonJson,
  stageDirectory,
  unpackColsFromInt32,
  unpackRowsFromInt32,
  writeSafetensors,
} from "@llmq/serialization";
import { nodeBuiltin, type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import type { Dataset } from "./dataset.js";
import { type LlmqError, ioErrorFrom, modelError, outputExists, recipeError } from "./errors.js";
import { msAutoDisable, msDisableLevel } from "./ms-auto-disable.js";
import { msIgnore, msModelSlimRecipe, msUnsupported } from "./ms-model-slim-recipe.js";
import { type OneshotResult, oneshot } from "./oneshot.js";
import { openModelDir } from "./open-model.js";
import type { PipelineName } from "./pipeline.js";
import type { Recipe } from "./recipe.js";
import type { ProgressSink } from "./progress.js";
const { copyFile, mkdtemp, readFile, readdir, rm, writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { basename, dirname, join } = nodeBuiltin<typeof import("node:path")>("node:path");

// msModelSlim's Calibrator as a library call: the QuantConfig's modifiers run by llmq's oneshot into a hidden
// compressed-tensors checkpoint, which is then written in msModelSlim's layout (the codes, scales and zero points are
// the same numbers in both; msModelSlim's offset is compressed-tensors' zero point). The output directory holds
// quant_model_weight_<type>.safetensors, quant_model_description_<type>.json, config.json (without a
// quantization_config) and the tokenizer files, so that runtimes and `llmq convert --from msmodelslim` can load it.

export interface MsModelSlimOptions {
  readonly model: string;
  readonly output: string;
  readonly dataset?: Dataset | null;
  readonly overwrite?: boolean;
  readonly pipeline?: PipelineName;
  /** As oneshot's: calibration activations kept in memory, the rest spilled to a file in spillDir. */
  readonly maxMemory?: number;
  readonly spillDir?: string;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

export interface MsModelSlimResult {
  readonly output: string;
  readonly type: string;
  readonly files: ReadonlyArray<string>;
  readonly quantized: number;
  /** Linears kept float by disable_level (highest range_param first). */
  readonly autoDisabled: ReadonlyArray<string>;
  readonly oneshot: OneshotResult;
  readonly warnings: ReadonlyArray<string>;
}

export const MS_TYPES: ReadonlyArray<MsLayoutType> = ["W8A8", "W8A8_DYNAMIC", "W8A16", "W4A16"];
const DTYPE_OF: Readonly<Record<string, "f32" | "bf16" | "f16">> = { float32: "f32", bfloat16: "bf16", float16: "f16" };

interface GroupArgs {
  readonly num_bits: number;
  readonly symmetric: boolean;
  readonly strategy: string;
  readonly group_size: number | null;
}

const read = async (ck: Checkpoint, name: string): Promise<Tensor> => {
  const r = await ck.read(name)();
  if (E.isLeft(r)) throw new Error(formatSerializationError(r.left));
  return r.right;
};

/** Signed codes of a compressed-tensors weight: int-quantized int8 `weight`, or pack-quantized int32 `weight_packed`. */
const codesOf = async (ck: Checkpoint, m: string, bits: number): Promise<{ codes: Int8Array; out: number; in: number }> => {
  if (ck.names.includes(`${m}.weight_packed`)) {
    const shape = Array.from((await read(ck, `${m}.weight_shape`)).data as ArrayLike<number | bigint>, Number);
    const packed = await read(ck, `${m}.weight_packed`);
    return { codes: unpackRowsFromInt32(packed.data as Int32Array, shape[0]!, shape[1]!, bits), out: shape[0]!, in: shape[1]! };
  }
  const w = await read(ck, `${m}.weight`);
  return { codes: w.data as Int8Array, out: w.shape[0]!, in: w.shape[1]! };
};

/** One quantized module of the compressed-tensors checkpoint as msModelSlim's linear. */
const msLinearOf = async (ck: Checkpoint, m: string, a: GroupArgs, staticInput: boolean): Promise<MsLinear> => {
  const { codes, out, in: k } = await codesOf(ck, m, a.num_bits);
  const s = toFloat32(await read(ck, `${m}.weight_scale`)).data;
  const cols = a.strategy === "group" ? k / a.group_size! : 1;
  // per-tensor scales are written per channel (msModelSlim documents per-channel and per-group shapes only)
  const scale = s.length === 1 ? new Float32Array(out).fill(s[0]!) : Float32Array.from(s);
  let offset = new Float32Array(scale.length);
  if (!a.symmetric) {
    const z = await read(ck, `${m}.weight_zero_point`);
    const zv = z.dtype === "i32" && a.num_bits < 8 ? unpackColsFromInt32(z.data as Int32Array, out, cols, a.num_bits) : toFloat32(z).data;
    offset = zv.length === 1 ? new Float32Array(out).fill(zv[0]!) : Float32Array.from(zv);
  }
  const input = staticInput
    ? { scale: toFloat32(await read(ck, `${m}.input_scale`)).data[0]!, offset: toFloat32(await read(ck, `${m}.input_zero_point`)).data[0]! }
    : undefined;
  return { name: m, out, in: k, codes, scale, offset, groupSize: a.strategy === "group" ? a.group_size : null, ...(input ? { input } : {}) };
};

/** Every tensor of a compressed-tensors directory sorted into msModelSlim linears and float tensors. */
const fromCompressedTensors = async (dir: string, config: Record<string, unknown>): Promise<{ linears: MsLinear[]; floats: Map<string, Tensor> }> => {
  const qc = config.quantization_config as { config_groups: Record<string, { weights: GroupArgs; input_activations: { dynamic: boolean } | null }> } | undefined;
  const group = qc === undefined ? undefined : Object.values(qc.config_groups)[0]!;
  const ck = await openCheckpoint(dir)();
  if (E.isLeft(ck)) throw new Error(formatSerializationError(ck.left));
  try {
    const modules = group === undefined ? [] : ck.right.names.filter((n) => n.endsWith(".weight_scale")).map((n) => n.slice(0, -".weight_scale".length));
    const staticInput = group !== undefined && group.input_activations !== null && !group.input_activations.dynamic;
    const linears: MsLinear[] = [];
    for (const m of modules) linears.push(await msLinearOf(ck.right, m, group!.weights, staticInput));
    const owned = new Set(modules.flatMap((m) => ["weight", "weight_packed", "weight_shape", "weight_scale", "weight_zero_point", "input_scale", "input_zero_point"].map((p) => `${m}.${p}`)));
    // a compressed-tensors kv_cache_scheme (attention k_scale / v_scale) has no msModelSlim form: not carried
    const kv = (qc as { kv_cache_scheme?: unknown } | undefined)?.kv_cache_scheme != null ? /\.(k|v)_(scale|zero_point)$/ : null;
    const floats = new Map<string, Tensor>();
    for (const n of ck.right.names) if (!owned.has(n) && !(kv?.test(n) ?? false)) floats.set(n, await read(ck.right, n));
    return { linears, floats };
  } finally {
    await ck.right.close();
  }
};

/** An hqq result (axis 1, unsigned codes, float zero) as msModelSlim's signed linear: codes − 2^(b−1), offset zero − 2^(b−1). */
const msLinearOfHqq = (name: string, q: HqqQuantized): MsLinear => {
  const half = 2 ** (Math.round(q.nbits) - 1);
  const [out, k] = [q.shape[0]!, q.shape[1]!];
  return {
    name,
    out,
    in: k,
    codes: Int8Array.from(q.codes.data, (v) => v - half),
    scale: Float32Array.from(q.scale.data),
    offset: Float32Array.from(q.zero.data, (z) => z - half),
    groupSize: q.groupSize === null || q.groupSize === k ? null : q.groupSize,
  };
};

const CARRIED = /^(tokenizer.*|special_tokens_map\.json|generation_config\.json)$/;

/** How Calibrator.save writes: save_type ascendV1 (with the per-group size for its description), part_file_size in bytes. */
export interface MsSaveOptions {
  readonly ascendV1: boolean;
  readonly groupSize: number | null;
  readonly partBytes: number | null;
}

const SAFE_TENSOR: MsSaveOptions = { ascendV1: false, groupSize: null, partBytes: null };

/** The save options a QuantConfig asks for (numpy is refused earlier by msUnsupported). */
export const msSaveOptions = (c: MsQuantConfig): MsSaveOptions => ({
  ascendV1: c.save_type.includes("ascendV1"),
  // the groups the weights really have: per-group configs, and HQQ (hqq's grouping; msModelSlim's own HQQ is .so internals)
  groupSize: msPerGroup(c) || c.w_method === "HQQ" ? c.group_size : null,
  partBytes: c.part_file_size === null ? null : c.part_file_size * MS_GIB,
});

/** The weight file(s) of a layout: one safetensors file, or shards and their index. */
const writeWeights = async (staging: string, layout: MsLayout, partBytes: number | null): Promise<ReadonlyArray<string>> => {
  const put = async (file: string, tensors: MsLayout["tensors"]) => {
    const w = await writeSafetensors(join(staging, file), tensors)();
    if (E.isLeft(w)) throw new Error(formatSerializationError(w.left));
  };
  if (partBytes === null) {
    await put(layout.weightFile, layout.tensors);
    return [layout.weightFile];
  }
  const shards = msShards(layout.weightFile, layout.tensors, partBytes);
  for (const f of shards.files) await put(f.file, f.tensors);
  await writeFile(join(staging, shards.indexFile), `${JSON.stringify(shards.index, null, 2)}\n`);
  return [...shards.files.map((f) => f.file), shards.indexFile];
};

/** The msModelSlim files of a compressed-tensors checkpoint written by a QuantConfig's modifiers, into `staging`. */
const writeMsFiles = async (ctDir: string, staging: string, type: MsLayoutType, hqq: ReadonlyMap<string, HqqQuantized>, save: MsSaveOptions): Promise<ReadonlyArray<string>> => {
  const parsed = parsePythonJson(await readFile(join(ctDir, "config.json"), "utf8"));
  if (E.isLeft(parsed)) throw new Error(`config.json: ${parsed.left}`);
  const config = parsed.right as Record<string, unknown>;
  const { linears, floats } = await fromCompressedTensors(ctDir, config);
  for (const [name, q] of hqq) {
    floats.delete(`${name}.weight`);
    linears.push(msLinearOfHqq(name, q));
  }
  const safe = msModelSlimLayout(type, linears, floats, DTYPE_OF[String(config.torch_dtype)] ?? "f32");
  const layout = save.ascendV1 ? E.flatMap(safe, (l) => msAscendV1(l, save.groupSize)) : safe;
  if (E.isLeft(layout)) throw new Error(layout.left);
  const weights = await writeWeights(staging, layout.right, save.partBytes);
  await writeFile(join(staging, layout.right.descriptionFile), `${JSON.stringify(layout.right.description, null, 2)}\n`);
  const { quantization_config: _, ...plain } = config;
  // the model's config as transformers writes it (Python floats kept), so that a conversion back is byte-identical
  await writeFile(join(staging, "config.json"), dumpPythonJson(plain as PyJson, { indent: 2, sortKeys: true }));
  for (const f of await readdir(ctDir)) if (CARRIED.test(f)) await copyFile(join(ctDir, f), join(staging, f));
  return [...weights, layout.right.descriptionFile];
};

/** disable_names must each name a linear of the model (msModelSlim matches exact module names). */
const checkDisableNames = async (c: MsQuantConfig, model: string): Promise<E.Either<LlmqError, void>> => {
  const h = await openModelDir(model)();
  if (E.isLeft(h)) return h;
  const names = new Set(h.right.linearModules().map((m) => m.name));
  const missing = msIgnore(c).filter((n) => !names.has(n) && !(n === "lm_head" && !c.explicit.has("disable_names")));
  await h.right.close();
  return missing.length === 0
    ? E.right(undefined)
    : E.left(recipeError(`msModelSlim QuantConfig: disable_names: ${missing.map((n) => JSON.stringify(n)).join(", ")} match no linear of ${model}; nothing was written`));
};

/**
 * A compressed-tensors checkpoint of one config group with int weights (int-quantized or pack-quantized; static
 * per-tensor or dynamic inputs) rewritten in msModelSlim's layout of `type` at `output` (staged, then renamed).
 */
export const compressedTensorsToMsModelSlim =
  (
    ctDir: string,
    output: string,
    type: MsLayoutType,
    overwrite = false,
    hqq: ReadonlyMap<string, HqqQuantized> = new Map(),
    save: MsSaveOptions = SAFE_TENSOR,
  ): TE.TaskEither<LlmqError, ReadonlyArray<string>> =>
  async () => {
    const staged = await stageDirectory(output, { overwrite })();
    if (E.isLeft(staged)) return E.left(ioErrorFrom(output, "cannot stage the output", staged.left));
    try {
      const files = await writeMsFiles(ctDir, staged.right.staging, type, hqq, save);
      const done = await staged.right.commit()();
      return E.isLeft(done) ? E.left(ioErrorFrom(output, "cannot move the output into place", done.left)) : E.right(files);
    } catch (e) {
      return E.left(modelError(`writing msModelSlim's layout failed: ${(e as Error).message}`));
    } finally {
      await staged.right.discard();
    }
  };

/** Fails before any work when the output exists and may not be replaced. */
const checkOutput = async (o: MsModelSlimOptions): Promise<E.Either<LlmqError, void>> => {
  const st = await outputState(o.output);
  return st === "absent" || st === "empty" || (o.overwrite && st === "non-empty") ? E.right(undefined) : E.left(outputExists(o.output));
};

type Planned = { readonly recipe: Recipe | { readonly modifiers: ReadonlyArray<Modifier> }; readonly hqq: Map<string, HqqQuantized> };

/** What llmq runs for `c` (refusals before any work): a recipe, or HQQ's modifier with the map its results go to. */
const planRun = (c: MsQuantConfig): E.Either<LlmqError, Planned> => {
  const hqq = new Map<string, HqqQuantized>();
  const recipe = c.w_method === "HQQ" ? hqqRun(c, hqq) : msModelSlimRecipe(c);
  return E.map((r: Planned["recipe"]) => ({ recipe: r, hqq }))(recipe);
};

/** disable_level L<n>: the feature pass's rollback names (none at L0; data-free runs fall back to L0 as msModelSlim's). */
const autoDisabled = async (c: MsQuantConfig, o: MsModelSlimOptions, scratch: string): Promise<E.Either<LlmqError, { names: ReadonlyArray<string>; warnings: string[] }>> => {
  if (msDisableLevel(c) === 0) return E.right({ names: [], warnings: [] });
  if (o.dataset == null) return E.right({ names: [], warnings: [`disable_level ${c.disable_level}: no calibration data (data-free), so disable_level is L0 as in msModelSlim`] });
  const r = await msAutoDisable(c, o.model, o.dataset, scratch)();
  if (E.isLeft(r)) return r;
  const shown = r.right.names.map((n) => `${n} (range_param ${r.right.rangeParams.get(n)!.toPrecision(6)})`);
  return E.right({ names: r.right.names, warnings: [`disable_level ${c.disable_level}: kept float ${shown.join(", ") || "nothing"}`] });
};

/** `Calibrator(model, cfg, calib_data, disable_level).run(); .save(output, save_type=["safe_tensor"])` with llmq's modifiers. */
export const quantizeWithMsModelSlim =
  (c: MsQuantConfig, o: MsModelSlimOptions): TE.TaskEither<LlmqError, MsModelSlimResult> =>
  async () => {
    const type = msQuantType(c);
    const atL0: MsQuantConfig = { ...c, disable_level: "L0" };
    const checked = planRun(atL0);
    if (E.isLeft(checked)) return checked;
    if (type === null || !MS_TYPES.includes(type as MsLayoutType)) return E.left(recipeError(`msModelSlim QuantConfig: type ${type} is not written by llmq`));
    for (const check of [() => checkDisableNames(c, o.model), () => checkOutput(o)]) {
      const r = await check();
      if (E.isLeft(r)) return r;
    }
    const tmp = await mkdtemp(join(dirname(o.output), `.${basename(o.output)}.ct-`));
    try {
      const auto = await autoDisabled(c, o, join(tmp, "features"));
      if (E.isLeft(auto)) return auto;
      const planned = auto.right.names.length === 0 ? checked : planRun({ ...atL0, disable_names: [...c.disable_names, ...auto.right.names] });
      if (E.isLeft(planned)) return planned;
      const ct = join(tmp, "ct");
      const kv = c.use_kvcache_quant ? [MsKvCacheModifier(c.kv_sym) as Modifier] : [];
      const r = planned.right.recipe;
      const what = "source" in r ? { recipe: r as Recipe, modifiers: [...r.modifiers, ...kv] } : { modifiers: [...r.modifiers, ...kv] };
      const run = await oneshot({ model: o.model, output: ct, ...what, dataset: o.dataset ?? null, protect: [o.output], ...pick(o) })();
      if (E.isLeft(run)) return run;
      const files = await compressedTensorsToMsModelSlim(ct, o.output, type as MsLayoutType, o.overwrite ?? false, planned.right.hqq, msSaveOptions(c))();
      if (E.isLeft(files)) return files;
      const saveWarning = c.explicit.has("save_type")
        ? c.save_type.includes("ascendV1") && c.save_type.length > 1
          ? [`save_type ${JSON.stringify(c.save_type)}: ascendV1 is written alone, as msModelSlim does`]
          : []
        : ['save_type not given: msModelSlim\'s code default is ["numpy"]; llmq writes safe_tensor'];
      const warnings = [...saveWarning, ...auto.right.warnings, ...run.right.warnings];
      return E.right({ output: o.output, type: type!, files: files.right, quantized: run.right.modules, autoDisabled: auto.right.names, oneshot: run.right, warnings });
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  };

/**
 * w_method HQQ: hqq's defaults for the bits (BaseQuantizeConfig: groups of group_size along the input axis, zero
 * rounded before optimization at 4 bits), as an HqqModifier whose results are collected into `into`.
 */
const hqqRun = (c: MsQuantConfig, into: Map<string, HqqQuantized>): E.Either<LlmqError, { readonly modifiers: ReadonlyArray<Modifier> }> => {
  const bad = msUnsupported(c);
  if (bad !== null) return E.left(recipeError(`msModelSlim QuantConfig: ${bad}; nothing was read or written`));
  const mod = HqqModifier({ nbits: c.w_bit as HqqBits, groupSize: c.group_size, axis: 1, roundZero: c.w_bit === 4, rowGroups: true, ignore: msIgnore(c), onQuantized: (n, q) => into.set(n, q) });
  return E.right({ modifiers: [mod as Modifier] });
};

const pick = (o: MsModelSlimOptions) => ({
  ...(o.pipeline ? { pipeline: o.pipeline } : {}),
  ...(o.maxMemory !== undefined ? { maxMemory: o.maxMemory } : {}),
  ...(o.spillDir !== undefined ? { spillDir: o.spillDir } : {}),
  ...(o.signal ? { signal: o.signal } : {}),
  ...(o.progress ? { progress: o.progress } : {}),
});
