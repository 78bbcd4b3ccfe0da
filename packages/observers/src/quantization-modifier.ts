import {
  type GPTQModifierConfig,
  type QuantizationModifierConfig,
  formatRecipeError,
  hasQuantizationConfig,
  resolveQuantizationConfig,
} from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type Observable, type OperatorFunction, connect, filter, map, merge, of, toArray } from "rxjs";
import type { ObserverError } from "./errors.js";
import {
  type Calibration,
  type LayerState,
  type ModelInfo,
  type Modifier,
  type ModifierError,
  type QuantizedModule,
  type QuantizedWeight,
  type Tap,
  modifierError,
  withQuantized,
  withTensors,
} from "./modifier.js";
import { observe } from "./observe.js";
import type { Observer } from "./observer.js";
import { type PlannedModule, type QuantizationPlan, planQuantization } from "./plan-quantization.js";
import type { QParams } from "./qparams-from-statistics.js";
import { activationQParams, fusedGlobalScales, inputObserver, rtnModule } from "./rtn-module.js";

// llm-compressor's QuantizationMixin (the part QuantizationModifier and GPTQModifier share): the config resolved from
// the recipe fields, the plan of which module gets which scheme, the static input-activation observers folded over the
// calibration taps, and the weight quantization at each layer's epoch end. QuantizationModifier quantizes weights by
// RTN and leaves the layer's weights as they are (LC keeps the fp weight and stores qparams); GPTQModifier, in
// @llmq/gptq, reuses everything here but the weight step.

// ----- model -----

export interface QuantizationMixinState {
  readonly type: string;
  readonly plan: QuantizationPlan;
  readonly model: ModelInfo;
  /** The static input observer of each planned module that has one, by module name (built once, at initialize). */
  readonly inputObservers: ReadonlyMap<string, Observer>;
}

/** Per layer: the observed input qparams of each module with static input activations, by local name. */
export type ObservedInputs = ReadonlyMap<string, E.Either<ObserverError, QParams>>;

type MixinConfig = QuantizationModifierConfig | GPTQModifierConfig;

// ----- initialization -----

/** The recipe fields llmq cannot honour yet: refused here, before any weight or dataset is read. */
const refuseUnsupported = (type: string, cfg: MixinConfig, plan: QuantizationPlan): E.Either<ModifierError, void> => {
  if (cfg.kv_cache_scheme !== null)
    return E.left(modifierError(type, null, "kv_cache_scheme is calibrated by @llmq/kv-cache's KvCacheModifier (llmq's recipe registry adds it); build that modifier beside this one with kv_cache_scheme: null"));
  for (const p of plan.modules.values()) {
    if (p.scheme.output_activations !== null)
      return E.left(modifierError(type, p.module.name, `output_activations (config group ${p.group}) are not supported by llmq yet; remove them from the scheme`));
    if (p.scheme.weights === null)
      return E.left(modifierError(type, p.module.name, `config group ${p.group} has no weights: activation-only quantization is not supported by llmq yet`));
  }
  return E.right(undefined);
};

/** Weights a head module would quantize must be stored: a tied lm_head has no weight of its own to compress. */
const checkStored = (type: string, plan: QuantizationPlan, model: ModelInfo): E.Either<ModifierError, void> => {
  for (const p of plan.modules.values())
    if (!model.hasTensor(`${p.module.name}.weight`))
      return E.left(
        modifierError(type, p.module.name, `${p.module.name}.weight is not stored in the checkpoint (tied to the embedding?); add ${p.module.name} to ignore`),
      );
  return E.right(undefined);
};

/** The static input observers of the planned modules: a bad observer name or kwarg fails here, before any data. */
const inputObservers = (plan: QuantizationPlan, type: string): E.Either<ModifierError, ReadonlyMap<string, Observer>> => {
  const out = new Map<string, Observer>();
  for (const p of plan.modules.values()) {
    const o = inputObserver(p.module.name, p.scheme);
    if (E.isLeft(o)) return E.left({ ...o.left, modifier: type });
    if (o.right !== null) out.set(p.module.name, o.right);
  }
  return E.right(out);
};

/** QuantizationMixin.initialize_quantization: resolve the config, plan every module, refuse what cannot run. */
export const initializeQuantizationMixin = (type: string, cfg: MixinConfig, model: ModelInfo): E.Either<ModifierError, QuantizationMixinState> =>
  pipe(
    cfg.type === "QuantizationModifier" && !hasQuantizationConfig(cfg)
      ? E.left(modifierError(type, null, "QuantizationModifier requires that quantization fields be specified"))
      : E.right(undefined),
    E.chain(() => E.mapLeft((e: Parameters<typeof formatRecipeError>[0]) => modifierError(type, null, formatRecipeError(e), e))(resolveQuantizationConfig(cfg))),
    E.chain((config) => planQuantization(config, model.linears, type)),
    E.chainFirst((plan) => refuseUnsupported(type, cfg, plan)),
    E.chainFirst((plan) => checkStored(type, plan, model)),
    E.chain((plan) => E.map((obs: ReadonlyMap<string, Observer>) => ({ type, plan, model, inputObservers: obs }))(inputObservers(plan, type))),
  );

// ----- calibration -----

/** The planned modules of one layer (or the head), in the layer's module order, with their local names. */
export const layerModules = (s: QuantizationMixinState, layer: LayerState): ReadonlyArray<PlannedModule & { readonly local: string }> =>
  [...layer.modules].flatMap(([local, m]) => {
    const p = s.plan.modules.get(m.name);
    return p === undefined ? [] : [{ ...p, local }];
  });

const inputOf =
  (local: string) =>
  (t: Tap): t is Extract<Tap, { _tag: "LinearInput" }> =>
    t._tag === "LinearInput" && t.modules.includes(local);

/**
 * The static input observers of a layer's modules, folded over the taps with @llmq/observers' `observe` operator
 * (one fold per module on the shared tap stream); null when no module of the layer has static input activations.
 */
export const inputCalibration = (s: QuantizationMixinState, layer: LayerState): Calibration<ObservedInputs> | null => {
  const folds: Array<readonly [string, OperatorFunction<Tap, readonly [string, E.Either<ObserverError, QParams>]>]> = [];
  for (const p of layerModules(s, layer)) {
    const obs = s.inputObservers.get(p.module.name);
    if (obs === undefined) continue;
    folds.push([
      p.local,
      (taps: Observable<Tap>) =>
        taps.pipe(
          filter(inputOf(p.local)),
          map((t) => t.x),
          observe(obs),
          map((q) => [p.local, q] as const),
        ),
    ]);
  }
  if (folds.length === 0) return null;
  return {
    linearInputs: new Set(folds.map(([l]) => l)),
    attentionKV: false,
    fold: (taps) =>
      taps.pipe(
        connect((shared) => merge(...folds.map(([, f]) => shared.pipe(f)))),
        toArray(),
        map((entries): ObservedInputs => new Map(entries)),
      ),
  };
};

/** No calibration: an empty fold, for modifiers whose layer needs none. */
export const noObservedInputs: ObservedInputs = new Map();
export const emptyFold = <C>(value: C): OperatorFunction<Tap, C> => () => of(value);

// ----- epoch end -----

/** The saved activation parameters of a planned module, from the layer's observed inputs. */
export const moduleActivationParams = (
  p: PlannedModule & { readonly local: string },
  observed: ObservedInputs | null,
  weightDType: Tensor["dtype"],
): E.Either<ModifierError, ReadonlyArray<readonly [string, Tensor]>> => {
  const ia = p.scheme.input_activations;
  const o = observed?.get(p.local);
  if (ia === null || ia.dynamic === true || o === undefined) return E.right([]);
  return activationQParams(p.module.name, ia, o, weightDType);
};

/** The stored weight of a planned module in the in-memory layer (the single source of truth). */
export const layerWeight = (type: string, layer: LayerState, local: string): E.Either<ModifierError, Tensor> => {
  const w = layer.tensors.get(`${local}.weight`);
  return w === undefined ? E.left(modifierError(type, layer.prefix + local, `the layer has no ${local}.weight`)) : E.right(w);
};

/** Fused NVFP4 global scales of the layer's planned modules (q/k/v, gate/up), from the current layer weights. */
export const layerFusedScales = (s: QuantizationMixinState, layer: LayerState): E.Either<ModifierError, ReadonlyMap<string, Tensor<"f32">>> => {
  const members = layerModules(s, layer).flatMap((p) => {
    const w = layer.tensors.get(`${p.local}.weight`);
    return w === undefined ? [] : [{ name: p.module.name, local: p.local, weight: w, args: p.scheme.weights }];
  });
  return E.mapLeft((e: ModifierError) => ({ ...e, modifier: s.type }))(fusedGlobalScales(members, s.model.architecture.fusedGroups));
};

/** Quantizes each planned module of the layer with `quantizeWeight` and records the result in the layer. */
export const quantizeLayer = (
  s: QuantizationMixinState,
  layer: LayerState,
  observed: ObservedInputs | null,
  quantizeWeight: (
    p: PlannedModule & { readonly local: string },
    weight: Tensor,
    globalScale: Tensor<"f32"> | undefined,
  ) => E.Either<ModifierError, { readonly weight: QuantizedWeight; readonly layerTensor: Tensor }>,
): E.Either<ModifierError, { readonly layer: LayerState; readonly warnings: ReadonlyArray<string> }> => {
  const fused = layerFusedScales(s, layer);
  if (E.isLeft(fused)) return fused;
  const done: QuantizedModule[] = [];
  const edits: Array<readonly [string, Tensor]> = [];
  const warnings: string[] = [];
  for (const p of layerModules(s, layer)) {
    const args = p.scheme.weights;
    if (args === null) continue;
    const t0 = performance.now();
    const r = pipe(
      layerWeight(s.type, layer, p.local),
      E.chain((w) =>
        pipe(
          moduleActivationParams(p, observed, w.dtype),
          E.chain((activationParams) => E.map((q: { readonly weight: QuantizedWeight; readonly layerTensor: Tensor }) => ({ q, activationParams }))(quantizeWeight(p, w, fused.right.get(p.module.name)))),
        ),
      ),
    );
    if (E.isLeft(r)) return r;
    const { q, activationParams } = r.right;
    warnings.push(...q.weight.warnings);
    if (q.layerTensor !== layer.tensors.get(`${p.local}.weight`)) edits.push([`${p.local}.weight`, q.layerTensor]);
    done.push({ module: p.module, modifier: s.type, scheme: p.scheme, weight: q.weight, activationParams, source: q.layerTensor, seconds: (performance.now() - t0) / 1000 });
  }
  return E.right({ layer: withQuantized(withTensors(layer, edits), done), warnings });
};

// ----- the modifier -----

/**
 * llm-compressor's QuantizationModifier for post-training quantization: static input activations are observed over
 * the calibration taps (so it needs data only then, as LC's `requires_calibration_data` says), weights are quantized
 * by RTN with the recipe's weight observer at each layer's epoch end, with fused NVFP4 global scales.
 */
export const QuantizationModifier = (cfg: QuantizationModifierConfig): Modifier<QuantizationMixinState, ObservedInputs> => ({
  type: "QuantizationModifier",
  requiresCalibrationData: cfg.requires_calibration_data,
  calibrationDataReason: "this scheme has static activation (or kv-cache) quantization, which needs calibration data",
  initialize: (model) => initializeQuantizationMixin("QuantizationModifier", cfg, model),
  plannedSchemes: (s) => new Map([...s.plan.modules].map(([name, p]) => [name, p.scheme])),
  calibration: inputCalibration,
  onSequentialEpochEnd: (s, layer, observed) =>
    pipe(
      quantizeLayer(s, layer, observed, (p, w, globalScale) =>
        E.map((weight: QuantizedWeight) => ({ weight, layerTensor: w }))(
          E.mapLeft((e: ModifierError) => ({ ...e, modifier: s.type }))(rtnModule(p.module.name, w, p.scheme.weights!, { globalScale })),
        ),
      ),
      E.map(({ layer: l, warnings }) => ({ state: s, layer: l, warnings })),
    ),
});

