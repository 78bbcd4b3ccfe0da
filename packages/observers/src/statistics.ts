import { kernels } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type ObserverError, nonFiniteTensor } from "./errors.js";
import type { CalibrationRows } from "./flatten-for-calibration.js";

// ----- model -----

/** Per-qparam running statistics (LC `min_vals` / `max_vals`), f32 like the observed tensor. */
export interface MinMaxStatistics {
  readonly min: Float32Array;
  readonly max: Float32Array;
  /** LC's statistic shape, e.g. [out, 1] for channel, [out, groups] for group, [1] for tensor. */
  readonly shape: ReadonlyArray<number>;
}

// ----- constructors -----

/** amin/amax of every row (LC `torch.amin(observed, dim=(0, -1))`), through the tensor `groupMinMax` kernel. */
export const rowMinMax = (rows: CalibrationRows): MinMaxStatistics => {
  const min = new Float32Array(rows.rows);
  const max = new Float32Array(rows.rows);
  if (rows.cols > 0) kernels().groupMinMax(rows.data, rows.rows, rows.cols, rows.cols, min, max);
  return { min, max, shape: rows.qparamShape };
};

/**
 * Rejects statistics that hold NaN or ±Inf (torch.amin/amax propagate NaN, and an Inf shows up as an extreme).
 * The error names the tensor and the first offending element of the observed data.
 */
export const checkFinite = (stats: MinMaxStatistics, observed: Float32Array, tensor: string): E.Either<ObserverError, MinMaxStatistics> => {
  for (let i = 0; i < stats.min.length; i++) {
    if (!Number.isFinite(stats.min[i]!) || !Number.isFinite(stats.max[i]!)) {
      for (let j = 0; j < observed.length; j++) if (!Number.isFinite(observed[j]!)) return E.left(nonFiniteTensor(tensor, j, observed[j]!));
      return E.left(nonFiniteTensor(tensor, i, Number.isFinite(stats.min[i]!) ? stats.max[i]! : stats.min[i]!));
    }
  }
  return E.right(stats);
};

// ----- combinators -----

/** Elementwise running min of mins and max of maxes (LC `static_minmax`). */
export const widen = (acc: MinMaxStatistics, cur: MinMaxStatistics): MinMaxStatistics => {
  const min = new Float32Array(acc.min.length);
  const max = new Float32Array(acc.max.length);
  for (let i = 0; i < min.length; i++) {
    min[i] = Math.min(cur.min[i]!, acc.min[i]!);
    max[i] = Math.max(cur.max[i]!, acc.max[i]!);
  }
  return { min, max, shape: acc.shape };
};

const fr = Math.fround;

/**
 * LC's `lerp(start, end, c) = start * (1 - c) + end * c`, evaluated like torch on f32 tensors with Python float
 * scalars: each scalar is rounded to f32 and every product and the sum are rounded to f32.
 */
export const lerpStatistics = (acc: MinMaxStatistics, cur: MinMaxStatistics, c: number): MinMaxStatistics => {
  const keep = fr(1 - c);
  const take = fr(c);
  const min = new Float32Array(acc.min.length);
  const max = new Float32Array(acc.max.length);
  for (let i = 0; i < min.length; i++) {
    min[i] = fr(fr(acc.min[i]! * keep) + fr(cur.min[i]! * take));
    max[i] = fr(fr(acc.max[i]! * keep) + fr(cur.max[i]! * take));
  }
  return { min, max, shape: acc.shape };
};

/** True when two statistics describe the same qparam layout (a stream must not change shapes mid-way). */
export const sameLayout = (a: MinMaxStatistics, b: MinMaxStatistics): boolean =>
  a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
