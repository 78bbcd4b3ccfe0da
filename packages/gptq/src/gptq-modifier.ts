import {
  type Calibration,
  type LayerState,
  type Modifier,
  type ModifierError,
  type ObservedInputs,
  type QuantizationMixinState,
  type QuantizedWeight,
  type Tap,
  type WeightQParams,
  emptyFold,
  initializeQuantizationMixin,
  inputCalibration,
  layerModules,
  modifierError,
  noObservedInputs,
  quantizeLayer,
  reducer,
} from "@llmq/observers";
import { type GPTQModifierConfig, type QuantizationArgs, formatSchemeError, rtnQuantizeWeight } from "@llmq/schemes";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { connect, forkJoin } from "rxjs";
import { type GptqError, formatGptqError } from "./errors.js";
import { gptqQuantizeModule } from "./gptq-quantize-module.js";
import { type HessianState, accumulateHessianInPlace, emptyHessian, normalizeHessian } from "./hessian.js";
import { type GptqResult, type ScaleDType, quantizeWeight } from "./quantize-weight.js";

// llm-compressor's GPTQModifier on the modifier contract: the QuantizationMixin of @llmq/observers (plan, static input
// observers) plus a Hessian per distinct linear input, folded over the calibration taps, and GPTQ at the layer's epoch
// end. As in LC, the quantized weight replaces the layer's weight in place (the next layer is calibrated on the output
// of the GPTQ-quantized layer), while modules of other modifiers keep their weights.

// ----- model -----

/** GPTQModifier's knobs that act outside the quantization args. */
export interface GptqOptions {
  readonly blockSize: number;
  readonly dampeningFrac: number;
}

/** One Hessian sum per tapped input: modules fed the same tensor (q/k/v) share it; LC keeps identical copies. */
export interface LayerHessians {
  readonly sums: ReadonlyMap<string, { readonly modules: ReadonlyArray<string>; readonly state: HessianState }>;
  /** The first accumulation failure (NaN input, wrong width), sticky like an observer's. */
  readonly error: GptqError | null;
}

export interface GptqCalibrated {
  readonly inputs: ObservedInputs;
  readonly hessians: LayerHessians;
}

// ----- calibration -----

/** The Hessian fold of one layer: X^T X of each distinct input of the given modules, summed in place over windows. */
export const hessianFold = (layer: LayerState, modules: ReadonlyArray<{ readonly local: string; readonly inFeatures: number }>) =>
  reducer<LayerHessians>(
    () => ({ sums: new Map(), error: null }),
    (acc, tap: Tap) => {
      if (tap._tag !== "LinearInput" || acc.error !== null) return acc;
      const mine = tap.modules.filter((m) => modules.some((p) => p.local === m));
      if (mine.length === 0) return acc;
      const key = tap.modules.join(",");
      const sums = acc.sums as Map<string, { readonly modules: ReadonlyArray<string>; readonly state: HessianState }>;
      const prev = sums.get(key) ?? { modules: tap.modules, state: emptyHessian(modules.find((p) => p.local === mine[0])!.inFeatures) };
      const r = accumulateHessianInPlace(prev.state.h, prev.state.nSamples, tap.x, layer.prefix + mine[0]!);
      if (E.isLeft(r)) return { ...acc, error: r.left };
      sums.set(key, { modules: prev.modules, state: { h: prev.state.h, nSamples: r.right } });
      return acc;
    },
  );

const hessianOf = (h: LayerHessians, local: string): HessianState | undefined => [...h.sums.values()].find((s) => s.modules.includes(local))?.state;

// ----- the weight step -----

/**
 * GPTQ for one module with its accumulated Hessian (GPTQModifier's compress step). With a fused global scale (NVFP4
 * q/k/v, gate/up) the weight qparams are the observer's on the original weight under that shared global scale.
 */
export const gptqModule = (
  name: string,
  weight: Tensor,
  hessian: HessianState,
  args: QuantizationArgs,
  opts: GptqOptions,
  fused: { readonly globalScale?: Tensor<"f32"> | undefined } = {},
): E.Either<GptqError, GptqResult> => {
  const w32 = toFloat32(weight);
  if (fused.globalScale === undefined) {
    // The module observes its weight in the stored dtype (bf16 scales for a bf16 model), as llm-compressor does.
    const w = weight.dtype === "bf16" || weight.dtype === "f16" ? (weight as Tensor<"bf16" | "f16">) : w32;
    return gptqQuantizeModule(name, w, hessian.h, hessian.nSamples, args, { blockSize: opts.blockSize, dampeningFrac: opts.dampeningFrac });
  }
  const globalScale = fused.globalScale;
  const observe = (w: Tensor<"f32" | "f16" | "bf16">): E.Either<string, WeightQParams> =>
    pipe(
      rtnQuantizeWeight(w.dtype === "f32" ? (w as Tensor<"f32">) : toFloat32(w), args, { name, globalScale }),
      E.bimap(formatSchemeError, (q) => ({ scale: q.scale as Tensor<ScaleDType>, zeroPoint: args.symmetric ? null : q.zeroPoint, globalScale })),
    );
  const qp = observe(w32);
  return pipe(
    normalizeHessian(hessian, name),
    E.chain((H) =>
      quantizeWeight(w32, H, args, {
        module: name,
        observe,
        blockSize: opts.blockSize,
        dampeningFrac: opts.dampeningFrac,
        ...(E.isRight(qp) && args.actorder !== "group" ? { qparams: qp.right } : {}),
      }),
    ),
  );
};

const asQuantizedWeight = (name: string, args: QuantizationArgs, g: GptqResult): QuantizedWeight => ({
  name,
  quantized: g.quantized,
  scale: g.scale,
  zeroPoint: args.symmetric ? null : g.zeroPoint,
  globalScale: g.globalScale,
  gIdx: g.gIdx,
  fakeQuantized: g.fakeQuantized,
  loss: g.loss,
  method: "gptq",
  warnings: g.warnings,
});

const gptqError = (module: string, e: GptqError): ModifierError => modifierError("GPTQModifier", module, formatGptqError(e), e);

// ----- the modifier -----

/** llm-compressor's GPTQModifier (fields as decoded by @llmq/schemes: block_size, dampening_frac, actorder…). */
export const GPTQModifier = (cfg: GPTQModifierConfig): Modifier<QuantizationMixinState, GptqCalibrated> => {
  const opts: GptqOptions = { blockSize: cfg.block_size, dampeningFrac: cfg.dampening_frac ?? 0.01 };
  const calibration = (s: QuantizationMixinState, layer: LayerState): Calibration<GptqCalibrated> => {
    const modules = layerModules(s, layer).map((p) => ({ local: p.local, inFeatures: p.module.inFeatures }));
    const inputsCal = inputCalibration(s, layer);
    return {
      linearInputs: new Set([...modules.map((m) => m.local), ...(inputsCal?.linearInputs ?? [])]),
      attentionKV: false,
      fold: (taps) =>
        taps.pipe(
          connect((shared) =>
            forkJoin({ inputs: shared.pipe(inputsCal?.fold ?? emptyFold(noObservedInputs)), hessians: shared.pipe(hessianFold(layer, modules)) }),
          ),
        ),
    };
  };
  return {
    type: "GPTQModifier",
    requiresCalibrationData: true,
    calibrationDataReason: "GPTQ needs calibration data",
    initialize: (model) => initializeQuantizationMixin("GPTQModifier", cfg, model),
    plannedSchemes: (s) => new Map([...s.plan.modules].map(([name, p]) => [name, p.scheme])),
    calibration,
    onSequentialEpochEnd: (s, layer, calibrated) => {
      const planned = layerModules(s, layer);
      if (planned.length === 0) return E.right({ state: s, layer, warnings: [] });
      if (calibrated === null) return E.left(modifierError(s.type, null, "GPTQ needs calibration data: pass a dataset (text, JSONL or token ids)"));
      if (calibrated.hessians.error !== null) return E.left(gptqError(layer.prefix, calibrated.hessians.error));
      return pipe(
        quantizeLayer(s, layer, calibrated.inputs, (p, w, globalScale) => {
          const h = hessianOf(calibrated.hessians, p.local);
          if (h === undefined) return E.left(modifierError(s.type, p.module.name, "no calibration input reached this module"));
          return pipe(
            gptqModule(p.module.name, w, h, p.scheme.weights!, opts, { globalScale }),
            E.bimap(
              (e) => gptqError(p.module.name, e),
              (g) => ({ weight: asQuantizedWeight(p.module.name, p.scheme.weights!, g), layerTensor: g.fakeQuantized as Tensor }),
            ),
          );
        }),
        E.map(({ layer: l, warnings }) => ({ state: s, layer: l, warnings })),
      );
    },
  };
};
