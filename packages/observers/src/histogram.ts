import type { QuantizationArgs } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type ObserverError, unsupportedStrategy } from "./errors.js";
import type { CalibrationRows } from "./flatten-for-calibration.js";
import { type Observer, type ObserverOptions, makeObserver } from "./observer.js";
import { mergedKwargs, numberKwarg } from "./observer-kwargs.js";
import { type MinMaxStatistics, checkFinite, rowMinMax } from "./statistics.js";

// A port of torch.ao.quantization.HistogramObserver (torch 2.13, per-tensor), the observer msModelSlim's
// act_method 2 uses: a running 2048-bin histogram whose range grows with the data (old bins are upsampled ×16 and
// re-binned), then caffe2's L2 "non-linear" search for the range that minimises the quantization error of a
// 2^num_bits-level uniform quantizer. llmq turns the chosen range into qparams with compressed-tensors'
// calculate_qparams (torch's own HistogramObserver would use its quint8 formula).

// ----- model -----

export interface HistogramState {
  readonly hist: Float32Array;
  /** Running range of the histogram (f32). */
  readonly min: number;
  readonly max: number;
}

export interface HistogramSettings {
  readonly bins: number;
  readonly upsampleRate: number;
  /** Levels of the target quantizer (torch: 2^bits of the observer dtype). */
  readonly dstBins: number;
}

// ----- numerics -----

const fr = Math.fround;

/** torch.histc on f32 data with a linear bin layout (CPU kernel: pos = (x − lo)·bins / (hi − lo), truncated). */
const histc = (data: Float32Array, bins: number, lo0: number, hi0: number): Float32Array => {
  let lo = lo0;
  let hi = hi0;
  if (lo === hi) {
    lo = fr(lo - 1);
    hi = fr(hi + 1);
  }
  const out = new Float32Array(bins);
  const width = fr(hi - lo);
  const nb = fr(bins);
  for (let i = 0; i < data.length; i++) {
    const x = data[i]!;
    if (!(x >= lo && x <= hi)) continue;
    let pos = Math.trunc(fr(fr(fr(x - lo) * nb) / width));
    if (pos === bins) pos -= 1;
    out[pos] = out[pos]! + 1;
  }
  return out;
};

/** torch.linspace(start, end, steps) in f32, scalar path: start + step·i below half, end − step·(steps−1−i) above. */
const linspace = (start: number, end: number, steps: number): Float32Array => {
  const out = new Float32Array(steps);
  const step = fr(fr(end - start) / (steps - 1));
  const half = Math.floor(steps / 2);
  for (let i = 0; i < steps; i++) out[i] = i < half ? fr(start + fr(step * i)) : fr(end - fr(step * (steps - i - 1)));
  return out;
};

/** HistogramObserver._upscale_histogram: spread each old bin over `upsampleRate` sub-bins and re-bin by midpoint. */
const upscale = (hist: Float32Array, oMin: number, oMax: number, nMin: number, nMax: number, s: HistogramSettings): Float32Array => {
  const n = s.bins * s.upsampleRate;
  const binSize = fr(fr(oMax - oMin) / n);
  const mids = linspace(oMin, oMax, n + 1);
  const halfBin = fr(0.5 * binSize);
  const bounds = linspace(nMin, nMax, s.bins + 1);
  const out = new Float32Array(s.bins);
  for (let j = 0; j < n; j++) {
    const w = fr(hist[Math.floor(j / s.upsampleRate)]! / s.upsampleRate);
    const m = fr(mids[j]! + halfBin);
    // bucketize(right=True) − 1: index of the last boundary ≤ m
    let a = 0;
    let b = bounds.length;
    while (a < b) {
      const c = (a + b) >>> 1;
      if (bounds[c]! <= m) a = c + 1;
      else b = c;
    }
    const k = Math.min(Math.max(a - 1, 0), s.bins - 1);
    out[k] = fr(out[k]! + w);
  }
  return out;
};

/** One batch into the running histogram (HistogramObserver.forward, finite data). */
export const histogramStep = (prev: HistogramState | undefined, data: Float32Array, xMin: number, xMax: number, s: HistogramSettings): HistogramState => {
  if (prev === undefined) return { hist: histc(data, s.bins, xMin, xMax), min: xMin, max: xMax };
  const nMin = Math.min(prev.min, xMin);
  const nMax = Math.max(prev.max, xMax);
  const update = histc(data, s.bins, nMin, nMax);
  let base: Float32Array;
  if (nMin === prev.min && nMax === prev.max) base = prev.hist;
  else if (prev.min === prev.max) {
    let total = 0;
    for (const v of prev.hist) total = fr(total + v);
    base = histc(Float32Array.of(prev.min), s.bins, nMin, nMax).map((v) => fr(v * total));
  } else base = upscale(prev.hist, prev.min, prev.max, nMin, nMax, s);
  const hist = new Float32Array(s.bins);
  for (let i = 0; i < s.bins; i++) hist[i] = fr(update[i]! + base[i]!);
  return { hist, min: nMin, max: nMax };
};

/** python-style floor division of f32 values (torch.div(..., rounding_mode="floor")). */
const floorDiv = (a: number, b: number): number => {
  const mod = fr(a % b);
  let div = fr(fr(a - mod) / b);
  if (mod !== 0 && b < 0 !== mod < 0) div = fr(div - 1);
  let q: number;
  if (div !== 0) {
    q = Math.floor(div);
    if (fr(div - q) > 0.5) q += 1;
  } else q = b > 0 ? 0 : -0;
  return q;
};

/** HistogramObserver._compute_quantization_error for candidate bins [start, end]. */
const quantizationError = (st: HistogramState, start: number, end: number, s: HistogramSettings): number => {
  const binWidth = (st.max - st.min) / s.bins; // python floats from .item()
  const dstW = (binWidth * (end - start + 1)) / s.dstBins;
  if (dstW === 0) return 0;
  const bw = fr(binWidth);
  const dw = fr(dstW);
  const halfDst = fr(dstW / 2);
  const negHalfDst = fr(-dstW / 2);
  // norm of a full destination bin: density · ((d/2)³ − (−d/2)³) / 3
  const fullCube = fr(fr(fr(fr(halfDst * halfDst) * halfDst) - fr(fr(negHalfDst * negHalfDst) * negHalfDst)) / 3);
  let total = 0;
  for (let i = 0; i < s.bins; i++) {
    const begin = fr(fr(i - start) * bw);
    const endV = fr(begin + bw);
    const dBegin = Math.min(Math.max(floorDiv(begin, dw), 0), s.dstBins - 1);
    const dEnd = Math.min(Math.max(floorDiv(endV, dw), 0), s.dstBins - 1);
    const density = fr(st.hist[i]! / bw);
    const centerBegin = fr(fr(dBegin + 0.5) * dw);
    const db = fr(begin - centerBegin);
    let norm = fr(density * fr(fr(fr(fr(halfDst * halfDst) * halfDst) - fr(fr(db * db) * db)) / 3));
    norm = fr(norm + fr(fr(fr(dEnd - dBegin) - 1) * fr(density * fullCube)));
    const centerEnd = fr(fr(dEnd * dw) + halfDst);
    const de = fr(endV - centerEnd);
    norm = fr(norm + fr(density * fr(fr(fr(fr(de * de) * de) - fr(fr(negHalfDst * negHalfDst) * negHalfDst)) / 3)));
    total += norm;
  }
  return total;
};

/**
 * HistogramObserver._non_linear_param_search: move the lower or upper bin edge inward by 1e-5 of the mass at a
 * time (whichever side drops more bins), stop when the L2 quantization error grows. Returns the chosen range.
 */
export const nonLinearParamSearch = (st: HistogramState, s: HistogramSettings): { readonly min: number; readonly max: number } => {
  const bins = s.bins;
  const binWidth = fr(fr(st.max - st.min) / bins);
  let total = 0;
  const cSum = new Float32Array(bins);
  for (let i = 0; i < bins; i++) {
    total = fr(total + st.hist[i]!);
    cSum[i] = total;
  }
  const stepsize = 1e-5;
  let alpha = 0;
  let beta = 1;
  let startBin = 0;
  let endBin = bins - 1;
  let normMin = Number.POSITIVE_INFINITY;
  while (alpha < beta) {
    const nextAlpha = alpha + stepsize;
    const nextBeta = beta - stepsize;
    let l = startBin;
    let r = endBin;
    // torch compares the f32 cumulative sums against the python bound rounded to f32
    const lo = fr(nextAlpha * total);
    const hi = fr(nextBeta * total);
    while (l < endBin && cSum[l]! < lo) l++;
    while (r > startBin && cSum[r]! > hi) r--;
    let nextStart = startBin;
    let nextEnd = endBin;
    if (l - startBin > endBin - r) {
      nextStart = l;
      alpha = nextAlpha;
    } else {
      nextEnd = r;
      beta = nextBeta;
    }
    if (nextStart === startBin && nextEnd === endBin) continue;
    const norm = quantizationError(st, nextStart, nextEnd, s);
    if (norm > normMin) break;
    normMin = norm;
    startBin = nextStart;
    endBin = nextEnd;
  }
  return { min: fr(st.min + fr(binWidth * startBin)), max: fr(st.min + fr(binWidth * (endBin + 1))) };
};

// ----- constructors -----

const settingsFrom = (name: string, args: QuantizationArgs, kw: Readonly<Record<string, unknown>>): E.Either<ObserverError, HistogramSettings> =>
  pipe(
    E.Do,
    E.apS("bins", numberKwarg(name, kw, "bins", 2048, (v) => Number.isSafeInteger(v) && v > 0, "a positive integer")),
    E.apS("upsampleRate", numberKwarg(name, kw, "upsample_rate", 16, (v) => Number.isSafeInteger(v) && v > 0, "a positive integer")),
    E.map(({ bins, upsampleRate }) => ({ bins, upsampleRate, dstBins: 2 ** args.num_bits })),
  );

const perTensorOnly = (name: string, args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, void> =>
  args.strategy === "tensor" ? E.right(undefined) : E.left(unsupportedStrategy(name, options.tensor, args.strategy, "histogram observers are per-tensor (strategy \"tensor\")"));

const observeRows = (rows: CalibrationRows, tensor: string) => checkFinite(rowMinMax(rows), rows.data, tensor);

const rangeStatistics = (r: { readonly min: number; readonly max: number }): MinMaxStatistics => ({
  min: Float32Array.of(r.min),
  max: Float32Array.of(r.max),
  shape: [1],
});

/**
 * msModelSlim act_method 2 / torch.ao HistogramObserver: running histogram (observer_kwargs `bins` 2048,
 * `upsample_rate` 16) and the L2 range search over 2^num_bits levels at finalize. Per-tensor only.
 */
export const histogram = (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<HistogramState>> =>
  pipe(
    perTensorOnly("histogram", args, options),
    E.flatMap(() => settingsFrom("histogram", args, mergedKwargs(args.observer_kwargs, options.kwargs))),
    E.map((s) =>
      makeObserver<HistogramState>(
        {
          name: "histogram",
          update: (prev, rows) => pipe(observeRows(rows, options.tensor), E.map((mm) => histogramStep(prev, rows.data, mm.min[0]!, mm.max[0]!, s))),
          toStatistics: (st) => E.right(rangeStatistics(nonLinearParamSearch(st, s))),
        },
        args,
        options,
      ),
    ),
  );

/** State of msModelSlim's act_method 3: the histogram plus running min/max and moments for the range test. */
export interface MixedState {
  readonly histogram: HistogramState;
  readonly min: number;
  readonly max: number;
  readonly count: number;
  readonly sum: number;
  readonly sumSq: number;
}

/** range_param above which msModelSlim's act_method 3 keeps the full min-max range. */
export const MIXED_RANGE_THRESHOLD = 50;

/**
 * msModelSlim act_method 3 (automatic mix): range_param = max(|min|, |max|) / std of everything observed; the
 * histogram range search when range_param ≤ 50 (observer_kwargs `range_threshold`), else the static min-max range
 * (outlier-heavy layers keep their full range). std is the unbiased (N−1) standard deviation, accumulated in f64.
 * Per-tensor only. Source: msModelSlim `Quantizer.init_act_and_observer` as summarised in reference/formats.md §1.3.
 */
export const minMaxOrHistogram = (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<MixedState>> => {
  const kw = mergedKwargs(args.observer_kwargs, options.kwargs);
  return pipe(
    perTensorOnly("minmax_or_histogram", args, options),
    E.flatMap(() => settingsFrom("minmax_or_histogram", args, kw)),
    E.bindTo("s"),
    E.bind("threshold", () => numberKwarg("minmax_or_histogram", kw, "range_threshold", MIXED_RANGE_THRESHOLD)),
    E.map(({ s, threshold }) =>
      makeObserver<MixedState>(
        {
          name: "minmax_or_histogram",
          update: (prev, rows) =>
            pipe(
              observeRows(rows, options.tensor),
              E.map((mm) => {
                let sum = prev?.sum ?? 0;
                let sumSq = prev?.sumSq ?? 0;
                for (const v of rows.data) {
                  sum += v;
                  sumSq += v * v;
                }
                const lo = mm.min[0]!;
                const hi = mm.max[0]!;
                return {
                  histogram: histogramStep(prev?.histogram, rows.data, lo, hi, s),
                  min: prev === undefined ? lo : Math.min(prev.min, lo),
                  max: prev === undefined ? hi : Math.max(prev.max, hi),
                  count: (prev?.count ?? 0) + rows.data.length,
                  sum,
                  sumSq,
                };
              }),
            ),
          toStatistics: (st) => {
            const n = st.count;
            const variance = n > 1 ? Math.max(0, (st.sumSq - (st.sum * st.sum) / n) / (n - 1)) : 0;
            const rangeParam = Math.max(Math.abs(st.min), Math.abs(st.max)) / Math.sqrt(variance);
            return E.right(rangeParam > threshold ? rangeStatistics(st) : rangeStatistics(nonLinearParamSearch(st.histogram, s)));
          },
        },
        args,
        options,
      ),
    ),
  );
};
