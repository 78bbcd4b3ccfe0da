import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type Modifier, type Tap, reducer } from "./modifier.js";

// msModelSlim's sensitivity measure of a linear (the Calibrator's `disable_level` auto-rollback and act_method 3):
// range_param = max(|t_max|, |t_min|) / std of the layer's input, gathered on the float model by forward hooks
// (msModelSlim `quant_funcs.get_features`, compiled; its pure-Python twin is `layer_select.StdMethod`, whose hook has
// the same variable names: comming_max / comming_min, shift, t_max, t_min, tensor_std). Per calibration sample x
// ([tokens, hidden] after flattening the batch): shift = max_c + min_c per input channel (the sum, as the code has
// it, not the midpoint), t_max / t_min the running global extremes, std = max over samples of torch.std(x − shift)
// (unbiased, over every element). Numbers are f32 as torch's; the std's sum runs in f64.

export interface MsRangeStats {
  readonly tMax: number;
  readonly tMin: number;
  readonly std: number;
}

/** One sample's contribution: `x` row-major [rows, hidden]. */
export const msRangeStatsStep = (acc: MsRangeStats | null, x: Float32Array, hidden: number): MsRangeStats => {
  const rows = x.length / hidden;
  const cMax = new Float32Array(hidden).fill(Number.NEGATIVE_INFINITY);
  const cMin = new Float32Array(hidden).fill(Number.POSITIVE_INFINITY);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < hidden; c++) {
      const v = x[r * hidden + c]!;
      if (v > cMax[c]!) cMax[c] = v;
      if (v < cMin[c]!) cMin[c] = v;
    }
  const shift = cMax.map((m, c) => m + cMin[c]!);
  let tMax = Number.NEGATIVE_INFINITY;
  let tMin = Number.POSITIVE_INFINITY;
  let sum = 0;
  for (let i = 0; i < x.length; i++) {
    tMax = Math.max(tMax, x[i]!);
    tMin = Math.min(tMin, x[i]!);
    sum += Math.fround(x[i]! - shift[i % hidden]!);
  }
  const mean = sum / x.length;
  let ss = 0;
  for (let i = 0; i < x.length; i++) {
    const d = Math.fround(x[i]! - shift[i % hidden]!) - mean;
    ss += d * d;
  }
  const std = Math.fround(Math.sqrt(ss / (x.length - 1)));
  return acc === null ? { tMax, tMin, std } : { tMax: Math.max(acc.tMax, tMax), tMin: Math.min(acc.tMin, tMin), std: Math.max(acc.std, std) };
};

/** max(|t_max|, |t_min|) / std as f32; a constant input (std 0) ranks first unless it is all zeros (0). */
export const msRangeParam = (s: MsRangeStats): number => {
  const absMax = Math.max(Math.abs(s.tMax), Math.abs(s.tMin));
  if (s.std === 0) return absMax === 0 ? 0 : Number.POSITIVE_INFINITY;
  return Math.fround(absMax / s.std);
};

/**
 * The names msModelSlim rolls back for `disable_level` "L<n>": the n largest range_params among linears not already
 * rolled back (`rollback`: disable_names and the last linear), ties in the order the stats were gathered (Python's
 * stable sort with reverse=True).
 */
export const msAutoDisableNames = (params: ReadonlyMap<string, number>, n: number, rollback: ReadonlyArray<string>): ReadonlyArray<string> => {
  const skip = new Set(rollback);
  return [...params.entries()]
    .map(([name, p], i) => ({ name, p, i }))
    .sort((a, b) => (a.p === b.p ? a.i - b.i : b.p > a.p || Number.isNaN(a.p) ? 1 : -1))
    .map((e) => e.name)
    .filter((name) => !skip.has(name))
    .slice(0, n);
};

const TYPE = "MsRangeParamModifier";

const rowsOf = (x: Tensor<"f32">): number => x.shape[x.rank - 1]!;

/**
 * Observes every linear's input (nothing is edited) and hands each linear's range statistics to `onStats` at its
 * layer's end, in forward order: msModelSlim's feature pass, run on the float model before anything is quantized.
 */
export const MsRangeParamModifier = (onStats: (module: string, s: MsRangeStats) => void): Modifier<null, ReadonlyMap<string, MsRangeStats>> => ({
  type: TYPE,
  requiresCalibrationData: true,
  calibrationDataReason: "msModelSlim's disable_level ranks linears by range statistics of their calibration inputs",
  initialize: () => E.right(null),
  calibration: (_s, layer) => ({
    linearInputs: new Set(layer.modules.keys()),
    attentionKV: false,
    fold: reducer(
      () => new Map<string, MsRangeStats>(),
      (acc: Map<string, MsRangeStats>, t: Tap) => {
        if (t._tag !== "LinearInput") return acc;
        for (const m of t.modules) acc.set(m, msRangeStatsStep(acc.get(m) ?? null, t.x.data, rowsOf(t.x)));
        return acc;
      },
    ),
  }),
  onSequentialEpochEnd: (s, layer, folded) => {
    for (const local of layer.modules.keys()) {
      const st = folded?.get(local);
      if (st !== undefined) onStats(layer.prefix + local, st);
    }
    return E.right({ state: s, layer, warnings: [] });
  },
});
