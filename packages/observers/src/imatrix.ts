import type { QuantizationArgs } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type ObserverError, invalidObserverKwarg, observedShape } from "./errors.js";
import type { CalibrationRows } from "./flatten-for-calibration.js";
import { rowErrors } from "./mse.js";
import { type Observer, type ObserverOptions, makeObserver } from "./observer.js";
import { mergedKwargs, numberKwarg } from "./observer-kwargs.js";
import { candidateQParams } from "./qparams-from-statistics.js";
import { type MinMaxStatistics, checkFinite, rowMinMax } from "./statistics.js";

// LC 0.14 `imatrix_mse` / `nvfp4_expanded_imatrix`: a weight MSE grid search whose per-element error is weighted by
// the importance E[x²] of the weight's input channel, gathered from the module's inputs during calibration.

// ----- importance (LC's forward-pre hook) -----

/** Running Σx² per input channel (f32, as LC accumulates) and the number of tokens seen. */
export interface ImportanceState {
  readonly sum: Float32Array;
  readonly count: number;
}

const fr = Math.fround;

/**
 * One batch of module inputs [tokens, in_features] (leading dims flattened) into the importance sums: LC adds
 * `x.pow(2).sum(dims except last)` in f32 and counts tokens. NaN/Inf inputs are an error naming the tensor.
 */
export const importanceStep = (prev: ImportanceState | undefined, x: Tensor<"f32">, tensor: string): E.Either<ObserverError, ImportanceState> => {
  const c = x.shape[x.shape.length - 1] ?? 0;
  if (c === 0 || (prev !== undefined && prev.sum.length !== c))
    return E.left(observedShape(tensor, x.shape, `importance inputs need ${prev?.sum.length ?? "a non-zero number of"} features`));
  const tokens = x.size / c;
  const batch = new Float32Array(c);
  for (let t = 0; t < tokens; t++)
    for (let j = 0; j < c; j++) {
      const v = x.data[t * c + j]!;
      if (!Number.isFinite(v)) return E.left({ _tag: "NonFiniteTensor", tensor, index: t * c + j, value: v });
      batch[j] = fr(batch[j]! + fr(v * v));
    }
  const sum = prev === undefined ? batch : prev.sum.map((s, j) => fr(s + batch[j]!));
  return E.right({ sum, count: (prev?.count ?? 0) + tokens });
};

// ----- model -----

export interface IMatrixSettings {
  readonly maxshrink: number;
  readonly patience: number;
  readonly grid: number;
  readonly norm: number;
  readonly expand: number;
  /** Raise instead of falling back to uniform MSE when importance is missing/invalid or the strategy unsupported. */
  readonly strict: boolean;
}

export const IMATRIX_DEFAULTS: IMatrixSettings = { maxshrink: 0.95, patience: 5, grid: 20, norm: 3, expand: 1, strict: false };
export const NVFP4_EXPANDED_IMATRIX_DEFAULTS: IMatrixSettings = { maxshrink: 1 - 0.8 / 1.8, patience: 1000, grid: 200, norm: 2.4, expand: 1.8, strict: false };

// ----- numerics -----

/**
 * Per-element weights for the flattened weight rows, or null for LC's uniform fallback: importance = sum / count,
 * must be finite, non-negative, not all zero, one per input column, and the strategy channel/group/tensor_group;
 * normalised by its mean (+ finfo.tiny).
 */
const importanceWeights = (
  imp: ImportanceState | undefined,
  rows: CalibrationRows,
  args: QuantizationArgs,
  inFeatures: number,
  s: IMatrixSettings,
  name: string,
): E.Either<ObserverError, Float32Array | null> => {
  const fallback = (why: string): E.Either<ObserverError, Float32Array | null> =>
    s.strict ? E.left(invalidObserverKwarg(name, "strict", `importance usable for imatrix (${why})`, true)) : E.right(null);
  if (args.strategy !== "channel" && args.strategy !== "group" && args.strategy !== "tensor_group") return fallback(`strategy ${args.strategy} not supported`);
  if (imp === undefined || imp.count === 0) return fallback("no importance data available");
  if (imp.sum.length !== inFeatures) return fallback(`size mismatch: expected ${inFeatures}, got ${imp.sum.length}`);
  const n = fr(imp.count);
  const v = imp.sum.map((x) => fr(x / n));
  if (v.some((x) => !Number.isFinite(x))) return fallback("contains non-finite values");
  if (v.some((x) => x < 0)) return fallback("contains negative values");
  if (v.every((x) => x === 0)) return fallback("all zeros");
  let mean = 0;
  for (const x of v) mean += x;
  const m = fr(fr(fr(mean) / v.length) + 2 ** -126);
  const norm = v.map((x) => fr(x / m));
  const w = new Float32Array(rows.rows * rows.cols);
  // rows are [out, in] (channel) or [out·groups, group_size] (group): element j of row r reads column
  // (r mod groups)·group_size + j
  const groups = inFeatures / rows.cols;
  for (let r = 0; r < rows.rows; r++) {
    const base = (r % groups) * rows.cols;
    for (let j = 0; j < rows.cols; j++) w[r * rows.cols + j] = norm[base + j]!;
  }
  return E.right(w);
};

/** LC `imatrix._grid_search`: like the MSE search but i = 0..max(1, int(maxshrink·grid)) inclusive, patience 0 = none. */
const gridSearch = (rows: CalibrationRows, args: QuantizationArgs, s: IMatrixSettings, weights: Float32Array | null, tensor: string): E.Either<ObserverError, MinMaxStatistics> =>
  E.flatMap(checkFinite(rowMinMax(rows), rows.data, tensor), (base) => {
    const searchArgs = args.strategy === "tensor_group" && args.scale_dtype !== null ? { ...args, scale_dtype: null } : args;
    const n = base.min.length;
    const ex = fr(s.expand);
    const min0 = base.min.map((v) => fr(v * ex));
    const max0 = base.max.map((v) => fr(v * ex));
    const bestErr = new Float64Array(n).fill(3.4028234663852886e38);
    const bestMin = Float32Array.from(min0);
    const bestMax = Float32Array.from(max0);
    const err = new Float64Array(n);
    const steps = Math.max(1, Math.trunc(s.maxshrink * s.grid));
    let stale = 0;
    for (let i = 0; i <= steps; i++) {
      const p = fr(1 - i / s.grid);
      const cmin = min0.map((v) => fr(v * p));
      const cmax = max0.map((v) => fr(v * p));
      const qp = candidateQParams(cmin, cmax, base.shape, searchArgs, tensor);
      if (E.isLeft(qp)) return qp;
      rowErrors(rows, qp.right.scale, qp.right.zeroPoint, searchArgs, s.norm, err, weights);
      let improved = false;
      for (let r = 0; r < n; r++)
        if (err[r]! < bestErr[r]!) {
          bestErr[r] = err[r]!;
          bestMin[r] = cmin[r]!;
          bestMax[r] = cmax[r]!;
          improved = true;
        }
      if (improved) stale = 0;
      else if (s.patience > 0 && ++stale >= s.patience) break;
    }
    return E.right({ min: bestMin, max: bestMax, shape: base.shape });
  });

// ----- constructors -----

const settingsFrom = (name: string, kw: Readonly<Record<string, unknown>>, d: IMatrixSettings): E.Either<ObserverError, IMatrixSettings> =>
  pipe(
    E.Do,
    E.apS("maxshrink", numberKwarg(name, kw, "maxshrink", d.maxshrink, (v) => v >= 0 && v <= 1, "a number in [0, 1]")),
    E.apS("patience", numberKwarg(name, kw, "patience", d.patience, (v) => Number.isFinite(v) && v >= 0, "a number >= 0")),
    E.apS("grid", numberKwarg(name, kw, "grid", d.grid, (v) => Number.isFinite(v) && v > 0, "a number > 0")),
    E.apS("norm", numberKwarg(name, kw, "norm", d.norm, (v) => Number.isFinite(v) && v > 0, "a finite positive number")),
    E.apS("expand", numberKwarg(name, kw, "expand", d.expand, (v) => Number.isFinite(v) && v >= 1, "a number >= 1.0")),
    E.apS(
      "strict",
      typeof kw.strict === "boolean" || kw.strict === undefined
        ? E.right<ObserverError, boolean>(kw.strict === true)
        : E.left<ObserverError, boolean>(invalidObserverKwarg(name, "strict", "a boolean", kw.strict)),
    ),
  );

const imatrixObserver =
  (name: string, defaults: IMatrixSettings) =>
  (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<MinMaxStatistics>> =>
    E.map((s: IMatrixSettings) =>
      makeObserver<MinMaxStatistics>(
        {
          name,
          update: (_prev, rows, x) =>
            options.kind !== "weight"
              ? s.strict
                ? E.left(invalidObserverKwarg(name, "strict", "a weight observer (imatrix_mse is only supported for weights)", true))
                : gridSearch(rows, args, s, null, options.tensor)
              : E.flatMap(importanceWeights(options.importance, rows, args, x.shape[1] ?? 0, s, name), (w) => gridSearch(rows, args, s, w, options.tensor)),
          toStatistics: E.right,
        },
        args,
        options,
      ),
    )(settingsFrom(name, mergedKwargs(args.observer_kwargs, options.kwargs), defaults));

/**
 * LC `imatrix_mse`: importance-weighted MSE search for weights (defaults maxshrink 0.95, grid 20, norm 3,
 * patience 5). Pass the module's accumulated inputs as `options.importance` ({@link importanceStep}); without it
 * (or for tensor strategy / activations) it falls back to uniform weights, as LC does, unless observer_kwargs.strict.
 */
export const imatrixMse = imatrixObserver("imatrix_mse", IMATRIX_DEFAULTS);
/** LC `nvfp4_expanded_imatrix`: imatrix_mse with the NVFP4 range-expansion defaults (1.8× → ~0.8×, 112 steps). */
export const nvfp4ExpandedImatrix = imatrixObserver("nvfp4_expanded_imatrix", NVFP4_EXPANDED_IMATRIX_DEFAULTS);
