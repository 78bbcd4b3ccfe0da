import {
  type Calibration,
  type LayerState,
  type ModelInfo,
  type ModelPlan,
  type Modifier,
  type ModifierError,
  type Tap,
  type TransformRecord,
  modifierError,
  reducer,
  withTensors,
} from "@llmq/observers";
import type { AWQModifierConfig, QuantizationScheme } from "@llmq/schemes";
import { type Tensor, roundToDType, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LayerFloatDType, floatDTypeOf, scaleRange, smoothingEdits } from "./apply-smoothing.js";
import { type AwqLoss, type AwqResult, type BalanceLayer, awqSearch, referenceOutputs } from "./awq-search.js";
import { type MappingSpec, type ResolvedMapping, lowestCommonAncestor, mappingsOfLayer, resolveMappings } from "./resolve-mappings.js";

// llm-compressor 0.14's AWQModifier (modifiers/transform/awq/base.py) on the modifier contract. A transform only:
// it scales, and the quantization modifier that must follow it in the recipe quantizes. Its calibration fold keeps,
// per mapping of a layer, the parent module's input of every batch and Σ|x| of the first balance layer's input; at
// the layer's sequential epoch end each mapping in turn is searched (awq-search.ts) against the parent's output with
// the weights as they are then, and the best scales are applied before the next mapping.

// ----- model -----

/** A mapping ready to search: the parent module runs alone on the input of `input` (a linear's tapped input). */
export interface AwqMapping extends ResolvedMapping {
  readonly parent: string;
  readonly input: string;
}

export interface AwqState {
  readonly cfg: AWQModifierConfig;
  readonly model: ModelInfo;
  readonly mappings: ReadonlyArray<AwqMapping>;
  /** The schemes the following quantization modifiers attach (known at calibration start). */
  readonly schemes: ReadonlyMap<string, QuantizationScheme>;
  /** Warnings to report with the first layer (skipped mappings). */
  readonly pending: ReadonlyArray<string>;
}

/** What the calibration fold keeps for one mapping of a layer. */
export interface AwqCache {
  readonly inputs: ReadonlyArray<Tensor<"f32">>;
  readonly xSum: Float32Array | null;
  readonly count: number;
}

export interface AwqOptions {
  /** Progress of the grid search: mapping (smooth layer's full name), grid points done and total. */
  readonly onGridPoint?: (mapping: string, done: number, total: number) => void;
  /** How grid losses are summed (awq-search.ts `AwqLoss`); llm-compressor's when absent. */
  readonly loss?: AwqLoss;
}

const TYPE = "AWQModifier";

// ----- initialization -----

/** LC's default_mappings from the architecture table: each norm → its linears, then linear → linear inside them. */
const defaultMappings = (model: ModelInfo): ReadonlyArray<MappingSpec> =>
  model.architecture.normMappings.flatMap((n) => [
    { smooth: `re:.*${n.norm}$`, balance: n.linears.map((l) => `re:.*${l}$`) },
    ...model.architecture.linearMappings.filter((l) => n.linears.includes(l.from)).map((l) => ({ smooth: `re:.*${l.from}$`, balance: l.to.map((t) => `re:.*${t}$`) })),
  ]);

/** `_check_layers_are_compatible`: v_proj → o_proj only when v_proj's outputs are o_proj's inputs (not with GQA). */
const compatible = (model: ModelInfo, m: ResolvedMapping): boolean => {
  const p = model.architecture.layerPrefix(m.layer);
  const mod = (local: string) => model.linears.find((l) => l.name === p + local);
  const smooth = mod(m.smooth);
  return m.balance.every((b) => {
    const bal = mod(b);
    return smooth === undefined || bal === undefined || !b.endsWith("o_proj") || !m.smooth.endsWith("v_proj") || smooth.outFeatures === bal.inFeatures;
  });
};

const withParent = (model: ModelInfo, m: ResolvedMapping): E.Either<ModifierError, AwqMapping> => {
  const parent = lowestCommonAncestor(m.balance);
  const input = model.submodules.inputOf(parent);
  return input === null
    ? E.left(
        modifierError(
          TYPE,
          model.architecture.layerPrefix(m.layer) + (parent || m.smooth),
          `the balance layers [${m.balance.join(", ")}] have the parent module "${parent}", which llmq cannot run alone (AWQ searches on the output of self_attn, mlp or a single linear)`,
        ),
      )
    : E.right({ ...m, parent, input });
};

const checkGrid = (cfg: AWQModifierConfig): E.Either<ModifierError, void> => {
  const least = cfg.duo_scaling === "both" ? 4 : cfg.duo_scaling ? 3 : 2;
  return cfg.n_grid < least ? E.left(modifierError(TYPE, null, `n_grid = ${cfg.n_grid} is too small for duo_scaling = ${cfg.duo_scaling} (at least ${least})`)) : E.right(undefined);
};

const initialize = (cfg: AWQModifierConfig, model: ModelInfo): E.Either<ModifierError, AwqState> => {
  const hook = cfg.mappings?.find((m) => m.activation_hook_target !== null);
  if (hook !== undefined)
    return E.left(modifierError(TYPE, null, `activation_hook_target (${hook.activation_hook_target}) is for parallel attention/MLP blocks, which llmq's architectures do not have; remove it`));
  const specs = cfg.mappings?.map((m) => ({ smooth: m.smooth_layer, balance: m.balance_layers })) ?? defaultMappings(model);
  return pipe(
    checkGrid(cfg),
    E.chain(() => resolveMappings(TYPE, model, specs)),
    E.chain((all) => {
      const kept = all.filter((m) => compatible(model, m));
      const skipped = all.length - kept.length;
      return E.map((mappings: ReadonlyArray<AwqMapping>) => ({
        cfg,
        model,
        mappings,
        schemes: new Map(),
        pending: skipped > 0 ? [`${TYPE}: ${skipped} mappings were skipped due to incompatible shapes (v_proj → o_proj with grouped-query attention)`] : [],
      }))(E.traverseArray((m: ResolvedMapping) => withParent(model, m))(kept));
    }),
  );
};

/** on_calibration_start: mappings none of whose layers is quantized are skipped; duo scaling needs per-channel weights. */
const onCalibrationEpochStart = (s: AwqState, plan: ModelPlan): E.Either<ModifierError, AwqState> => {
  const full = (m: ResolvedMapping, local: string) => s.model.architecture.layerPrefix(m.layer) + local;
  const targeted = s.mappings.filter((m) => [m.smooth, ...m.balance].some((l) => plan.schemes.has(full(m, l))));
  if (s.cfg.duo_scaling !== false)
    for (const m of targeted)
      for (const b of m.balance)
        if (plan.schemes.get(full(m, b))?.weights?.strategy === "tensor")
          return E.left(
            modifierError(
              TYPE,
              full(m, b),
              `duo_scaling is only supported with per-channel quantization strategies (group or channel), but found TENSOR strategy on layer ${full(m, b)}. Please set duo_scaling=False or use a per-channel quantization strategy.`,
            ),
          );
  const skipped = s.mappings.length - targeted.length;
  const note = skipped > 0 ? [`${TYPE}: ${skipped} mappings were skipped because no layer in them is targeted for quantization`] : [];
  return E.right({ ...s, mappings: targeted, schemes: plan.schemes, pending: [...s.pending, ...note] });
};

// ----- calibration -----

const absSum = (x: Tensor<"f32">, dtype: LayerFloatDType): Float32Array => {
  const [rows, cols] = x.shape as [number, number];
  const out = new Float32Array(cols);
  for (let r = 0; r < rows; r++) for (let j = 0; j < cols; j++) out[j] = out[j]! + Math.abs(roundToDType(dtype, x.data[r * cols + j]!));
  return out;
};

/** The dtype of a layer's activations in the model: its linear's weight dtype. */
const modelDType = (layer: LayerState, local: string): LayerFloatDType => {
  const w = layer.tensors.get(`${local}.weight`);
  return w === undefined ? "f32" : floatDTypeOf(w);
};

const cacheStep = (m: AwqMapping, dtype: LayerFloatDType) => (c: AwqCache, t: Tap): AwqCache => {
  if (t._tag !== "LinearInput") return c;
  const inputs = t.modules.includes(m.input) ? [...c.inputs, t.x] : c.inputs;
  if (!t.modules.includes(m.balance[0]!)) return { ...c, inputs };
  const batch = absSum(t.x, dtype);
  const xSum = c.xSum === null ? batch : c.xSum.map((v, j) => v + batch[j]!);
  return { inputs, xSum, count: c.count + t.x.shape[0]! };
};

const calibration = (s: AwqState, layer: LayerState): Calibration<ReadonlyArray<AwqCache>> | null => {
  const ms = mappingsOfLayer(s.mappings, layer.index) as ReadonlyArray<AwqMapping>;
  if (ms.length === 0) return null;
  const steps = ms.map((m) => cacheStep(m, modelDType(layer, m.balance[0]!)));
  return {
    linearInputs: new Set(ms.flatMap((m) => [m.input, m.balance[0]!])),
    attentionKV: false,
    fold: reducer<ReadonlyArray<AwqCache>>(
      () => ms.map(() => ({ inputs: [], xSum: null, count: 0 })),
      (acc, t) => acc.map((c, i) => steps[i]!(c, t)),
    ),
  };
};

// ----- epoch end -----

interface Smoothed {
  readonly layer: LayerState;
  readonly record: TransformRecord | null;
  readonly warnings: ReadonlyArray<string>;
}

/** One mapping: search against the parent's output with the layer as it is now, then the edits. */
const smoothMapping = async (s: AwqState, layer: LayerState, m: AwqMapping, cache: AwqCache, opts: AwqOptions, signal?: AbortSignal): Promise<E.Either<ModifierError, Smoothed>> => {
  const t0 = performance.now();
  const name = layer.prefix + m.smooth;
  if (cache.xSum === null || cache.inputs.length === 0) return E.right({ layer, record: null, warnings: [] });
  const missing = m.balance.find((b) => !layer.tensors.has(`${b}.weight`));
  if (missing !== undefined) return E.left(modifierError(TYPE, layer.prefix + missing, `the layer has no ${missing}.weight`));
  const balance: ReadonlyArray<BalanceLayer> = m.balance.map((b) => ({
    local: b,
    name: layer.prefix + b,
    weight: layer.tensors.get(`${b}.weight`)!,
    args: s.schemes.get(layer.prefix + b)?.weights ?? null,
  }));
  const f32 = new Map([...layer.tensors].map(([k, t]) => [k, toFloat32(t)] as const));
  const parent = (over: ReadonlyMap<string, Tensor<"f32">>) => {
    const weights = new Map([...f32, ...[...over].map(([local, w]) => [`${local}.weight`, w] as const)]);
    return (x: Tensor<"f32">) => s.model.submodules.forward(m.parent, weights, x);
  };
  const count = Math.fround(cache.count);
  const search = {
    balance,
    xMean: cache.xSum.map((v) => Math.fround(v / count)),
    duoScaling: s.cfg.duo_scaling,
    nGrid: s.cfg.n_grid,
    fusedGroups: s.model.architecture.fusedGroups,
    inputs: cache.inputs,
    outputDType: modelDType(layer, m.balance[0]!),
    ...(opts.loss !== undefined ? { loss: opts.loss } : {}),
    parent,
    ...(opts.onGridPoint ? { onGridPoint: (d: number, t: number) => opts.onGridPoint!(name, d, t) } : {}),
  };
  if (search.xMean.some((v) => !Number.isFinite(v))) return E.left(modifierError(TYPE, name, `the input of ${layer.prefix + m.balance[0]!} has NaN or Inf values on the calibration data`));
  const reference = referenceOutputs(search, name);
  if (E.isLeft(reference)) return reference;
  if (reference.right === null)
    return E.right({ layer, record: null, warnings: [`${TYPE}: skipped ${name}: NaN or Inf outputs of ${layer.prefix}${m.parent} on the calibration data`] });
  const searched = await awqSearch(search, reference.right, name, signal);
  return E.map((r: AwqResult) => ({
    layer: withTensors(layer, smoothingEdits(layer.tensors, m.smooth, balance.map((b) => [b.local, b.weight] as const), r.scales)),
    record: {
      modifier: TYPE,
      smooth: name,
      balance: balance.map((b) => b.name),
      ratio: r.ratio,
      duoScaling: r.duoScaling,
      loss: r.loss,
      initialLoss: r.initialLoss,
      ...scaleRange(r.scales),
      seconds: (performance.now() - t0) / 1000,
    },
    warnings: [],
  }))(searched);
};

/**
 * llm-compressor's AWQModifier: needs calibration data and a later quantization modifier in the recipe (whose
 * weight scheme drives the fake quantization of the search).
 */
export const AWQModifier = (cfg: AWQModifierConfig, opts: AwqOptions = {}): Modifier<AwqState, ReadonlyArray<AwqCache>> => ({
  type: TYPE,
  requiresCalibrationData: true,
  calibrationDataReason: "AWQ searches its scales on the activations of calibration data",
  initialize: (model) => initialize(cfg, model),
  onCalibrationEpochStart,
  calibration,
  onSequentialEpochEnd: async (s, layer, caches, context) => {
    const ms = mappingsOfLayer(s.mappings, layer.index) as ReadonlyArray<AwqMapping>;
    let current = layer;
    const records: TransformRecord[] = [];
    const warnings: string[] = [...s.pending];
    for (const [i, m] of ms.entries()) {
      const cache = caches?.[i];
      if (cache === undefined) continue;
      const r = await smoothMapping(s, current, m, cache, opts, context?.signal);
      if (E.isLeft(r)) return r;
      current = r.right.layer;
      if (r.right.record !== null) records.push(r.right.record);
      warnings.push(...r.right.warnings);
    }
    return E.right({ state: { ...s, pending: [] }, layer: current, warnings, records });
  },
});
