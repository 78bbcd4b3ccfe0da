import type { QuantizationArgs } from "@llmq/schemes";
import { kernels, roundToDType } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { ObserverError } from "./errors.js";
import type { CalibrationRows } from "./flatten-for-calibration.js";
import { type Observer, type ObserverOptions, makeObserver } from "./observer.js";
import { mergedKwargs, numberKwarg } from "./observer-kwargs.js";
import { candidateQParams } from "./qparams-from-statistics.js";
import { type MinMaxStatistics, checkFinite, lerpStatistics, rowMinMax } from "./statistics.js";

// ----- model -----

/** LC `mse_quant._grid_search_mse` settings (observer_kwargs). */
export interface MseSettings {
  readonly maxshrink: number;
  readonly patience: number;
  readonly grid: number;
  readonly norm: number;
  readonly expand: number;
}

/** LC 0.14 defaults of `memoryless_mse` / `mse`. */
export const MSE_DEFAULTS: MseSettings = { maxshrink: 0.2, patience: 5, grid: 100, norm: 2.4, expand: 1 };
/** LC 0.14 defaults of `nvfp4_expanded_mse`: searches 1.8× down to ~0.8× of the observed range in 112 steps. */
export const NVFP4_EXPANDED_MSE_DEFAULTS: MseSettings = { maxshrink: 1 - 0.8 / 1.8, patience: 1000, grid: 200, norm: 2.4, expand: 1.8 };

// ----- numerics -----

const fr = Math.fround;
const F32_MAX = 3.4028234663852886e38;

const quantRange = (args: QuantizationArgs): readonly [number, number] =>
  args.type === "int" ? [-(2 ** (args.num_bits - 1)), 2 ** (args.num_bits - 1) - 1] : args.num_bits === 8 ? [-448, 448] : [-6, 6];

/**
 * Σ |fake_quant(x) − x|^norm (· weight, for imatrix) per row, with one scale/zero point per row (LC `_calculate_error`, which fake-quantizes
 * with TOKEN-strategy broadcasting). Quantization follows compressed-tensors in f32: x/s (+zp), clamp, round
 * (half-even for int, RNE cast for fp8, E2M1 for fp4), (q − zp)·s. The sum is accumulated in f64; torch sums in
 * f32, which only matters for candidates whose errors agree to ~1e-7 relative.
 */
export const rowErrors = (
  rows: CalibrationRows,
  scale: Float32Array,
  zp: Float32Array | null,
  args: QuantizationArgs,
  norm: number,
  out: Float64Array,
  weights: Float32Array | null = null,
): void => {
  const { rows: q, cols: k, data } = rows;
  const [qmin, qmax] = quantRange(args);
  const fq = new Float32Array(q * k);
  if (args.type === "int") kernels().quantizeGroups(data, q, k, k, scale, zp, qmin, qmax, true, fq);
  else {
    const dt = args.num_bits === 8 ? "f8_e4m3fn" : "f4_e2m1";
    for (let r = 0; r < q; r++) {
      const s = scale[r]!;
      const z = zp === null ? 0 : zp[r]!;
      for (let j = 0; j < k; j++) {
        let y = fr(data[r * k + j]! / s);
        if (zp !== null) y = fr(y + z);
        y = Math.min(Math.max(y, qmin), qmax);
        fq[r * k + j] = fr(fr(roundToDType(dt, y) - z) * s);
      }
    }
  }
  for (let r = 0; r < q; r++) {
    let acc = 0;
    if (weights === null) for (let j = 0; j < k; j++) acc += Math.abs(fq[r * k + j]! - data[r * k + j]!) ** norm;
    else for (let j = 0; j < k; j++) acc += Math.abs(fq[r * k + j]! - data[r * k + j]!) ** norm * weights[r * k + j]!;
    out[r] = acc;
  }
};

/**
 * LC's eager grid search: start from (amin·expand, amax·expand), try p = 1 − i/grid for i < int(maxshrink·grid)
 * scaling both ends, keep per row the candidate with the strictly smallest error, and stop after `patience`
 * consecutive steps in which no row improved. qparams of each candidate come from calculate_qparams without a
 * global scale (and without scale_dtype rounding for tensor_group).
 */
export const gridSearchMse = (rows: CalibrationRows, args: QuantizationArgs, s: MseSettings, tensor: string): E.Either<ObserverError, MinMaxStatistics> =>
  E.flatMap(checkFinite(rowMinMax(rows), rows.data, tensor), (base) => {
    const searchArgs = args.strategy === "tensor_group" && args.scale_dtype !== null ? { ...args, scale_dtype: null } : args;
    const n = base.min.length;
    const ex = fr(s.expand);
    const min0 = base.min.map((v) => fr(v * ex));
    const max0 = base.max.map((v) => fr(v * ex));
    const bestErr = new Float64Array(n).fill(F32_MAX);
    const bestMin = Float32Array.from(min0);
    const bestMax = Float32Array.from(max0);
    const err = new Float64Array(n);
    const steps = Math.trunc(s.maxshrink * s.grid);
    let stale = 0;
    for (let i = 0; i < steps; i++) {
      const p = fr(1 - i / s.grid);
      const cmin = min0.map((v) => fr(v * p));
      const cmax = max0.map((v) => fr(v * p));
      const qp = candidateQParams(cmin, cmax, base.shape, searchArgs, tensor);
      if (E.isLeft(qp)) return qp;
      rowErrors(rows, qp.right.scale, qp.right.zeroPoint, searchArgs, s.norm, err);
      let improved = false;
      for (let r = 0; r < n; r++) {
        if (err[r]! < bestErr[r]!) {
          bestErr[r] = err[r]!;
          bestMin[r] = cmin[r]!;
          bestMax[r] = cmax[r]!;
          improved = true;
        }
      }
      if (improved) stale = 0;
      else if (++stale >= s.patience) break;
    }
    return E.right({ min: bestMin, max: bestMax, shape: base.shape });
  });

// ----- constructors -----

const settingsFrom = (name: string, kw: Readonly<Record<string, unknown>>, d: MseSettings): E.Either<ObserverError, MseSettings> =>
  pipe(
    E.Do,
    E.apS("maxshrink", numberKwarg(name, kw, "maxshrink", d.maxshrink)),
    E.apS("patience", numberKwarg(name, kw, "patience", d.patience)),
    E.apS("grid", numberKwarg(name, kw, "grid", d.grid, (v) => Number.isFinite(v) && v > 0, "a positive number")),
    E.apS("norm", numberKwarg(name, kw, "norm", d.norm)),
    E.apS("expand", numberKwarg(name, kw, "expand", d.expand, (v) => Number.isFinite(v) && v >= 1, "a number >= 1.0")),
  );

const mseObserver =
  (name: string, defaults: MseSettings, averaged: boolean) =>
  (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<MinMaxStatistics>> => {
    const kw = mergedKwargs(args.observer_kwargs, options.kwargs);
    return pipe(
      E.Do,
      E.apS("settings", settingsFrom(name, kw, defaults)),
      E.apS("c", averaged ? numberKwarg(name, kw, "averaging_constant", 0.01) : E.right(1)),
      E.map(({ settings, c }) =>
        makeObserver<MinMaxStatistics>(
          {
            name,
            update: (prev, rows) =>
              pipe(
                gridSearchMse(rows, args, settings, options.tensor),
                E.map((cur) => (prev === undefined || c === 1 ? cur : lerpStatistics(prev, cur, c))),
              ),
            toStatistics: E.right,
          },
          args,
          options,
        ),
      ),
    );
  };

/** LC `memoryless_mse`: grid search on the latest batch only. */
export const memorylessMse = mseObserver("memoryless_mse", MSE_DEFAULTS, false);
/** LC `mse`: grid search per batch, then the EMA (averaging_constant 0.01) of the chosen min/max. */
export const movingAverageMse = mseObserver("mse", MSE_DEFAULTS, true);
/** LC `nvfp4_expanded_mse` (alias `fouroversix`): memoryless MSE with NVFP4 range-expansion defaults. */
export const nvfp4ExpandedMse = mseObserver("nvfp4_expanded_mse", NVFP4_EXPANDED_MSE_DEFAULTS, false);
