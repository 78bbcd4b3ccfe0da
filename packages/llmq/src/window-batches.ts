import type { LayerHooks } from "@llmq/models";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type Observable, asyncScheduler, concatMap, from, map, observeOn, of, takeWhile } from "rxjs";

// Several calibration windows through one forward: their rows stacked into one [B·T, hidden] matrix, so that every
// linear is one GEMM of B·T rows (a GEMM's efficiency grows with its row count up to a few thousand rows), attention
// still per window. Each row computes exactly what it computes alone (the GEMM's per-element order does not depend on
// the row count, and every other kernel is row-wise), so batching changes no result; taps are handed out per window.

/** Rows per batch: past ~2k rows the GEMMs gain little, and the MLP's intermediates grow with it. */
export const BATCH_ROWS = 2048;

/** A run of consecutive windows [start, start + count) stacked as x (x is the window itself when count = 1). */
export interface WindowBatch {
  readonly x: Tensor<"f32">;
  readonly start: number;
  readonly count: number;
}

/**
 * Consecutive windows of one length, at most `maxRows` rows together, never across `boundary` (the error report's
 * first windows form their own batches) and never for windows of ≤ 4 tokens (a product of ≤ 4 rows takes a different
 * kernel, so its rows would not match the batch's).
 */
export const batchRanges = (lengths: ReadonlyArray<number>, maxRows: number, boundary: number): ReadonlyArray<readonly [number, number]> => {
  const out: [number, number][] = [];
  for (let b = 0; b < lengths.length; ) {
    const t = lengths[b]!;
    let e = b + 1;
    while (t > 4 && e < lengths.length && lengths[e] === t && (e - b + 1) * t <= maxRows && !(b < boundary && e >= boundary)) e++;
    out.push([b, e - b]);
    b = e;
  }
  return out;
};

/** The windows' rows stacked in order (a copy), or the window itself when there is one. */
export const stackRows = (ws: ReadonlyArray<Tensor<"f32">>): Tensor<"f32"> => {
  if (ws.length === 1) return ws[0]!;
  const width = ws[0]!.shape[1]!;
  const rows = ws.reduce((s, w) => s + w.shape[0]!, 0);
  const data = new Float32Array(rows * width);
  let o = 0;
  for (const w of ws) {
    data.set(w.data, o);
    o += w.data.length;
  }
  return new Tensor("f32", [rows, width], data);
};

/** `count` equal row blocks of x, as views (no copy). */
export const splitRows = (x: Tensor<"f32">, count: number): Tensor<"f32">[] => {
  if (count === 1) return [x];
  const [rows, width] = x.shape as [number, number];
  const r = rows / count;
  return Array.from({ length: count }, (_, i) => new Tensor("f32", [r, width], x.data.subarray(i * r * width, (i + 1) * r * width)));
};

/** Whether a forward with these hooks may stack windows: not when a linear's input is quantized (a dynamic per-tensor
 * scale would then span the batch instead of one window, as it does in llm-compressor). */
export const batchable = (hooks: LayerHooks | undefined): boolean => hooks?.transformLinearInput === undefined;

/**
 * Batches of windows, one macrotask apart so that a signal can end the stream between two of them. The windows are
 * looked up when a batch is emitted (from memory or the spill file), so that one replaced by propagation is not held
 * by the stream; a window that cannot be read back ends the stream with its error.
 */
export const windowBatches$ = <L>(
  lengths: ReadonlyArray<number>,
  get: (i: number) => E.Either<L, Tensor<"f32">>,
  signal: AbortSignal | undefined,
  maxRows: number,
  boundary: number,
): Observable<E.Either<L, WindowBatch>> =>
  from(batchRanges(lengths, maxRows, boundary)).pipe(
    concatMap((r) => of(r).pipe(observeOn(asyncScheduler))),
    takeWhile(() => signal?.aborted !== true),
    map(([start, count]) =>
      E.map((ws: ReadonlyArray<Tensor<"f32">>) => ({ x: stackRows(ws), start, count }))(
        E.traverseArray(get)(Array.from({ length: count }, (_, i) => start + i)),
      ),
    ),
    takeWhile(E.isRight, true),
  );
