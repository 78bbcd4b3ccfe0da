import {
  type Calibration,
  type LayerState,
  type ModelInfo,
  type Modifier,
  type ModifierError,
  type Tap,
  type TransformRecord,
  modifierError,
  reducer,
  withTensors,
} from "@llmq/observers";
import { type SmoothQuantModifierConfig, isIgnored } from "@llmq/schemes";
import { type Tensor, roundToDType, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LayerFloatDType, floatDTypeOf, scaleRange, smoothingEdits } from "./apply-smoothing.js";
import { torchPow } from "./torch-pow.js";
import { type MappingSpec, type ResolvedMapping, mappingsOfLayer, resolveMappings } from "./resolve-mappings.js";

// llm-compressor 0.14's SmoothQuantModifier (modifiers/transform/smoothquant/base.py). Per mapping, the smooth
// layer's output range over every calibration batch, act_j = max_j − min_j (not absmax), and the balance layers'
// column maxima give s_j = act_j^α / (2·max|W_:,j|)^(1−α) (or act_j / log2(2 + act_j) for log_equalization),
// s = max(s, 1e-5); the norm's weight is divided by s and the balance layers' columns multiplied by it. Every step
// rounds in the model's dtype as torch does (the statistics and the scales are tensors of that dtype).

// ----- model -----

/** Running per-channel min and max of a smooth layer's output (the balance layers' input). */
export interface ChannelRange {
  readonly min: Float32Array;
  readonly max: Float32Array;
  readonly nonFinite: boolean;
}

export interface SmoothQuantState {
  readonly cfg: SmoothQuantModifierConfig;
  readonly mappings: ReadonlyArray<ResolvedMapping>;
  readonly model: ModelInfo;
}

const TYPE = "SmoothQuantModifier";

// ----- algorithms -----

/** One batch folded into the running range (torch.minimum / torch.maximum; a NaN is remembered, not dropped). */
export const foldChannelRange = (acc: ChannelRange | null, x: Tensor<"f32">): ChannelRange => {
  const [rows, cols] = x.shape as [number, number];
  const min = acc?.min ?? new Float32Array(cols).fill(Number.POSITIVE_INFINITY);
  const max = acc?.max ?? new Float32Array(cols).fill(Number.NEGATIVE_INFINITY);
  let nonFinite = acc?.nonFinite ?? false;
  const d = x.data;
  for (let r = 0; r < rows; r++)
    for (let j = 0; j < cols; j++) {
      const v = d[r * cols + j]!;
      if (!Number.isFinite(v)) nonFinite = true;
      if (v < min[j]!) min[j] = v;
      if (v > max[j]!) max[j] = v;
    }
  return { min, max, nonFinite };
};


/**
 * The smoothing scales of one mapping (`_calculate_smoothing_scales` and the 1e-5 floor), in `dtype` arithmetic,
 * returned as the f32 tensor torch.maximum promotes them to.
 */
export const smoothQuantScales = (
  range: Pick<ChannelRange, "min" | "max">,
  balance: ReadonlyArray<Tensor>,
  alpha: number,
  algorithm: "smoothquant" | "log_equalization",
  dtype: LayerFloatDType,
): Float32Array => {
  const r = (v: number) => roundToDType(dtype, v);
  const n = range.min.length;
  const act = Float64Array.from({ length: n }, (_, j) => r(r(range.max[j]!) - r(range.min[j]!)));
  const out = new Float32Array(n);
  const floor = Math.fround(1e-5);
  if (algorithm === "log_equalization") {
    for (let j = 0; j < n; j++) out[j] = Math.max(r(act[j]! / r(Math.log2(r(2 + act[j]!)))), floor);
    return out;
  }
  const wmax = new Float64Array(n);
  for (const w of balance) {
    const x = toFloat32(w).data;
    const cols = w.shape[1]!;
    for (let i = 0; i < x.length; i++) {
      const a = Math.abs(x[i]!);
      if (a > wmax[i % cols]!) wmax[i % cols] = a;
    }
  }
  for (let j = 0; j < n; j++) {
    const ws = r(2 * wmax[j]!);
    const s = ws > 0 ? r(r(torchPow(act[j]!, alpha, dtype)) / r(torchPow(ws, 1 - alpha, dtype))) : act[j]!;
    out[j] = Number.isNaN(s) ? s : Math.max(s, floor);
  }
  return out;
};

// ----- the modifier -----

/** LC's DEFAULT_SMOOTHQUANT_MAPPINGS from the architecture table: [[balance linears], norm] per norm. */
const defaultMappings = (model: ModelInfo): ReadonlyArray<MappingSpec> =>
  model.architecture.normMappings.map((m) => ({ smooth: `re:.*${m.norm}$`, balance: m.linears.map((l) => `re:.*${l}$`) }));

/** llmq observes the smooth layer's output as the balance layers' tapped input: the smooth layer must be the norm feeding them. */
const checkObservable = (model: ModelInfo, m: ResolvedMapping): E.Either<ModifierError, ResolvedMapping> => {
  const feeds = model.architecture.normMappings.find((n) => n.norm === m.smooth);
  return feeds !== undefined && m.balance.every((b) => feeds.linears.includes(b))
    ? E.right(m)
    : E.left(
        modifierError(
          TYPE,
          model.architecture.layerPrefix(m.layer) + m.smooth,
          `llmq smooths a norm into the linears that read its output (${model.architecture.normMappings.map((n) => `${n.norm} → [${n.linears.join(", ")}]`).join("; ")}); ${m.smooth} → [${m.balance.join(", ")}] is not one of them`,
        ),
      );
};

/** LC skips a mapping only when its smooth layer and every balance layer are ignored. */
const notAllIgnored =
  (model: ModelInfo, ignore: ReadonlyArray<string>) =>
  (m: ResolvedMapping): boolean => {
    const p = model.architecture.layerPrefix(m.layer);
    const ignored = (local: string) => {
      const r = isIgnored(p + local, [], ignore);
      return E.isRight(r) && r.right;
    };
    return !(ignored(m.smooth) && m.balance.every(ignored));
  };

const initialize = (cfg: SmoothQuantModifierConfig, model: ModelInfo): E.Either<ModifierError, SmoothQuantState> => {
  for (const k of ["start", "end"] as const)
    if (cfg[k] !== null && cfg[k] !== -1)
      return E.left(modifierError(TYPE, null, `${TYPE} can only be applied during one-shot. Expected ${k} to be None or -1, got ${cfg[k]}`));
  const specs = cfg.mappings?.map(([balance, smooth]) => ({ smooth, balance })) ?? defaultMappings(model);
  return pipe(
    resolveMappings(TYPE, model, specs),
    E.chain(E.traverseArray((m) => checkObservable(model, m))),
    E.map((ms) => ({ cfg, model, mappings: ms.filter(notAllIgnored(model, cfg.ignore ?? [])) })),
  );
};

/** Per mapping of the layer (by index), the range of the first balance layer's input over the calibration windows. */
const calibration = (s: SmoothQuantState, layer: LayerState): Calibration<ReadonlyArray<ChannelRange | null>> | null => {
  const ms = mappingsOfLayer(s.mappings, layer.index);
  if (ms.length === 0) return null;
  return {
    linearInputs: new Set(ms.map((m) => m.balance[0]!)),
    attentionKV: false,
    fold: reducer<ReadonlyArray<ChannelRange | null>>(
      () => ms.map(() => null),
      (acc, t: Tap) => (t._tag !== "LinearInput" ? acc : acc.map((a, i) => (t.modules.includes(ms[i]!.balance[0]!) ? foldChannelRange(a, t.x) : a))),
    ),
  };
};


/** One mapping applied to the layer: scales from its range, then the edits. */
const smoothMapping = (s: SmoothQuantState, layer: LayerState, m: ResolvedMapping, range: ChannelRange): E.Either<ModifierError, { layer: LayerState; record: TransformRecord }> => {
  const t0 = performance.now();
  const name = layer.prefix + m.smooth;
  if (range.nonFinite) return E.left(modifierError(TYPE, name, `the output of ${name} has NaN or Inf values on the calibration data; its smoothing scales cannot be computed`));
  const balance = m.balance.map((b) => [b, layer.tensors.get(`${b}.weight`)] as const);
  const missing = balance.find(([, w]) => w === undefined);
  if (missing !== undefined) return E.left(modifierError(TYPE, layer.prefix + missing[0], `the layer has no ${missing[0]}.weight`));
  const weights = balance.map(([b, w]) => [b, w!] as const);
  const scales = smoothQuantScales(range, weights.map(([, w]) => w), s.cfg.smoothing_strength, s.cfg.algorithm, floatDTypeOf(weights[0]![1]));
  if (scales.some((v) => !Number.isFinite(v))) return E.left(modifierError(TYPE, name, `the smoothing scales of ${name} are not finite (activation range or weights with NaN/Inf)`));
  return E.right({
    layer: withTensors(layer, smoothingEdits(layer.tensors, m.smooth, weights, scales)),
    record: {
      modifier: TYPE,
      smooth: name,
      balance: m.balance.map((b) => layer.prefix + b),
      ratio: null,
      duoScaling: null,
      loss: null,
      initialLoss: null,
      ...scaleRange(scales),
      seconds: (performance.now() - t0) / 1000,
    },
  });
};

/**
 * llm-compressor's SmoothQuantModifier on the modifier contract: needs calibration data; each layer's mappings are
 * applied at its sequential epoch end, in recipe order, before any later modifier of the pass quantizes the layer.
 */
export const SmoothQuantModifier = (cfg: SmoothQuantModifierConfig): Modifier<SmoothQuantState, ReadonlyArray<ChannelRange | null>> => ({
  type: TYPE,
  requiresCalibrationData: true,
  calibrationDataReason: "SmoothQuant measures the activation range of each smoothed layer on calibration data",
  initialize: (model) => initialize(cfg, model),
  calibration,
  onSequentialEpochEnd: (s, layer, ranges) => {
    const ms = mappingsOfLayer(s.mappings, layer.index);
    let current = layer;
    const records: TransformRecord[] = [];
    for (const [i, m] of ms.entries()) {
      const range = ranges?.[i] ?? null;
      // No window reached the layer (an empty dataset): LC has no statistics and leaves the mapping alone.
      if (range === null) continue;
      const r = smoothMapping(s, current, m, range);
      if (E.isLeft(r)) return r;
      current = r.right.layer;
      records.push(r.right.record);
    }
    return E.right({ state: s, layer: current, warnings: [], records });
  },
});
