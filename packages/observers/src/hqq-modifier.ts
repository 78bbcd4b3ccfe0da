import { type HqqQuantizeOptions, type HqqQuantized, formatSchemeError, hqqDequantize, hqqQuantize, isIgnored } from "@llmq/schemes";
import { type Tensor, cast, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type ModelInfo, type Modifier, type ModifierError, modifierError, withTensors } from "./modifier.js";

// HQQ as a modifier (msModelSlim's w_method "HQQ", transformers' HqqConfig): calibration-free, so it observes nothing;
// at each layer's epoch end every targeted linear's weight is quantized by @llmq/schemes' hqqQuantize and replaced by
// its dequantization (what propagates to the next layer and what a dense save holds). HQQ's float zero points have no
// compressed-tensors form, so the codes, scales and zeros are handed to `onQuantized` for a writer of a format that
// holds them (msModelSlim's layout, HQQ's own).

export interface HqqModifierOptions extends HqqQuantizeOptions {
  /** compressed-tensors-style ignore list (exact names, class names, `re:` patterns). */
  readonly ignore: ReadonlyArray<string>;
  readonly onQuantized?: (module: string, q: HqqQuantized) => void;
  /**
   * Groups must lie within rows (formats that store scales per [row, group]): a linear whose input width is not a
   * multiple of groupSize is quantized per row instead (hqq's group_size None), with a warning. Without it, hqq's
   * own grouping of the flattened weight applies (groups may straddle rows).
   */
  readonly rowGroups?: boolean;
}

interface HqqState {
  readonly targets: ReadonlySet<string>;
}

const TYPE = "HqqModifier";

const initialize = (o: HqqModifierOptions, model: ModelInfo): E.Either<ModifierError, HqqState> => {
  const targets = new Set<string>();
  for (const m of model.linears) {
    const ign = isIgnored(m.name, [m.className], o.ignore);
    if (E.isLeft(ign)) return E.left(modifierError(TYPE, m.name, formatSchemeError(ign.left), ign.left));
    if (!ign.right && model.hasTensor(`${m.name}.weight`)) targets.add(m.name);
  }
  return E.right({ targets });
};

export const HqqModifier = (o: HqqModifierOptions): Modifier<HqqState, null> => ({
  type: TYPE,
  requiresCalibrationData: false,
  initialize: (model) => initialize(o, model),
  onSequentialEpochEnd: (s, layer) => {
    const edits: Array<readonly [string, Tensor]> = [];
    const warnings: string[] = [];
    for (const local of layer.modules.keys()) {
      const name = layer.prefix + local;
      const w = layer.tensors.get(`${local}.weight`);
      if (!s.targets.has(name) || w === undefined) continue;
      const gs = o.groupSize ?? 64;
      const perRow = o.rowGroups === true && gs !== null && (w.shape[1] ?? 0) % gs !== 0;
      if (perRow) warnings.push(`${name}: ${w.shape[1]} input features are not a multiple of group size ${gs}; quantized per row (HQQ group_size None)`);
      const q = hqqQuantize(toFloat32(w), perRow ? { ...o, groupSize: null } : o);
      if (E.isLeft(q)) return E.left(modifierError(TYPE, name, formatSchemeError(q.left), q.left));
      o.onQuantized?.(name, q.right);
      const d = hqqDequantize(q.right);
      edits.push([`${local}.weight`, w.dtype === "f32" ? d : cast(d, w.dtype)]);
    }
    return E.right({ state: s, layer: withTensors(layer, edits), warnings });
  },
});
