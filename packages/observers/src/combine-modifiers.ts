import * as E from "fp-ts/lib/Either.js";
import { connect, of, zip } from "rxjs";
import type { QuantizationScheme } from "@llmq/schemes";
import type { Calibration, EpochEnd, LayerState, ModelPlan, Modifier, ModifierError, TransformRecord } from "./modifier.js";

// One recipe entry that llmq runs as several modifier values (QuantizationModifier's weight part and its
// kv_cache_scheme part, each from the package that owns the math) must stay one modifier for the pipeline: one
// calibration pass feeds all parts, and each layer's epoch end edits the layer part after part, in order.

// ----- model -----

type States = ReadonlyArray<unknown>;
type Folded = ReadonlyArray<unknown>;

/** A combined modifier keeps its parts visible (e.g. to find the kv_cache_scheme it calibrates). */
export interface CombinedModifier extends Modifier<States, Folded> {
  readonly parts: ReadonlyArray<Modifier>;
}

// ----- functions -----

/** Applies an optional per-part step to every part's state, in order (absent steps keep the state). */
const eachPart = (
  parts: ReadonlyArray<Modifier>,
  step: (p: Modifier, s: unknown) => E.Either<ModifierError, unknown> | undefined,
): ((s: States) => E.Either<ModifierError, States>) => (s) =>
  E.traverseArrayWithIndex((i, p: Modifier) => step(p, s[i]) ?? E.right(s[i]))(parts);

const calibrationOf = (parts: ReadonlyArray<Modifier>, s: States, layer: LayerState): Calibration<Folded> | null => {
  const cals = parts.map((p, i) => p.calibration?.(s[i], layer) ?? null);
  const active = cals.filter((c): c is Calibration<unknown> => c !== null);
  if (active.length === 0) return null;
  return {
    linearInputs: new Set(active.flatMap((c) => [...c.linearInputs])),
    attentionKV: active.some((c) => c.attentionKV),
    fold: (taps) => taps.pipe(connect((shared) => zip(cals.map((c) => (c === null ? of(null) : shared.pipe(c.fold)))))),
  };
};

const epochEndOf = async (parts: ReadonlyArray<Modifier>, s: States, layer: LayerState, folded: Folded | null, context: Parameters<Modifier["onSequentialEpochEnd"]>[3]): Promise<E.Either<ModifierError, EpochEnd<States>>> => {
  const states: unknown[] = [];
  const warnings: string[] = [];
  const records: TransformRecord[] = [];
  let current = layer;
  for (const [i, p] of parts.entries()) {
    const r = await p.onSequentialEpochEnd(s[i], current, folded?.[i] ?? null, context);
    if (E.isLeft(r)) return r;
    states.push(r.right.state);
    current = r.right.layer;
    warnings.push(...r.right.warnings);
    records.push(...(r.right.records ?? []));
  }
  return E.right({ state: states, layer: current, warnings, records });
};

/**
 * The parts as one modifier of type `type`: initialized, started and finalized in order, one calibration fold per part
 * on the shared taps of one pass, epoch ends in order on the layer each part leaves; needs data when any part does.
 */
export const combineModifiers = (type: string, parts: ReadonlyArray<Modifier>): CombinedModifier => {
  const withData = parts.find((p) => p.requiresCalibrationData);
  return {
    type,
    parts,
    requiresCalibrationData: withData !== undefined,
    ...(withData?.calibrationDataReason !== undefined ? { calibrationDataReason: withData.calibrationDataReason } : {}),
    initialize: (model) => E.traverseArray((p: Modifier) => p.initialize(model))(parts),
    plannedSchemes: (s) => new Map<string, QuantizationScheme>(parts.flatMap((p, i) => [...(p.plannedSchemes?.(s[i]) ?? new Map())])),
    onStart: eachPart(parts, (p, s) => p.onStart?.(s)),
    onCalibrationEpochStart: (s, plan: ModelPlan) => eachPart(parts, (p, x) => p.onCalibrationEpochStart?.(x, plan))(s),
    calibration: (s, layer) => calibrationOf(parts, s, layer),
    onSequentialEpochEnd: (s, layer, folded, context) => epochEndOf(parts, s, layer, folded, context),
    onCalibrationEpochEnd: eachPart(parts, (p, s) => p.onCalibrationEpochEnd?.(s)),
    onEnd: eachPart(parts, (p, s) => p.onEnd?.(s)),
    onFinalize: eachPart(parts, (p, s) => p.onFinalize?.(s)),
  };
};
