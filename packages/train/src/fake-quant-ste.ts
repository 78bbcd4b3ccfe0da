import { type QuantizationArgs, type SchemeError, calculateRange, computeDynamicQParams, fakeQuantize } from "@llmq/schemes";
import { Tensor, roundHalfEven, toFloat32, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type Tape, type Var, gradOf, record } from "./tape.js";

// Fake quantization with the clipped straight-through estimator. The forward is compressed-tensors' fake_quantize
// (@llmq/schemes' one implementation, with the module's qparams); the backward passes the gradient unchanged where
// round(x / s + zp) lies inside the quantization range [qmin, qmax] and zeroes it where the forward clamped (QAT's
// clipped STE as torch's fake_quantize defines it: rounding has derivative 1, clamping 0). Scales and zero points are
// not trained.

/** The frozen quantization parameters of one weight (compressed-tensors' weight_scale / weight_zero_point / g_idx). */
export interface FakeQuantParams {
  readonly args: QuantizationArgs;
  readonly scale: Tensor;
  readonly zeroPoint: Tensor | null;
  readonly gIdx: Int32Array | null;
}

/** The scale cell of each column of a [rows, cols] weight, relative to its row's first cell (and cells per row). */
const columnCells = (p: FakeQuantParams, rows: number, cols: number): { readonly perRow: number; readonly col: Int32Array } => {
  const cells = p.scale.size;
  const perRow = cells === 1 ? 0 : cells / rows;
  const g = p.gIdx;
  const gs = perRow === 0 ? cols : cols / perRow;
  const col = Int32Array.from({ length: cols }, (_, c) => (perRow <= 1 ? 0 : g !== null ? g[c]! : Math.floor(c / gs)));
  return { perRow, col };
};

/**
 * Where the clipped STE passes the gradient: 1 where round(x / s + zp) lies in [qmin, qmax], 0 where the forward
 * clamped — torch's fake_quantize backward mask (rounded, half to even, like the forward).
 */
export const steMask = (w: ArrayLike<number>, rows: number, cols: number, p: FakeQuantParams): E.Either<SchemeError, Uint8Array> =>
  E.map(({ qMin, qMax }: { qMin: number; qMax: number }) => {
    const s = toFloat64(p.scale).data;
    const z = p.zeroPoint === null ? null : toFloat64(p.zeroPoint).data;
    const { perRow, col } = columnCells(p, rows, cols);
    // The forward's arithmetic: f32 weights quantize in f32 (every intermediate rounded), f64 ones in f64.
    const r32 = w instanceof Float64Array ? (v: number) => v : Math.fround;
    const mask = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * perRow;
      const o = r * cols;
      for (let c = 0; c < cols; c++) {
        const i = base + col[c]!;
        const y = roundHalfEven(r32(r32(w[o + c]! / s[i]!) + (z === null ? 0 : z[i]!)));
        mask[o + c] = y >= qMin && y <= qMax ? 1 : 0;
      }
    }
    return mask;
  })(calculateRange(p.args));

/** fake_quantize(w) on the forward, the clipped STE on the backward; w is a 2-D [out, in] weight. */
export const fakeQuantSTE = (tape: Tape, w: Var, p: FakeQuantParams): E.Either<SchemeError, Var> => {
  const [rows, cols] = [w.shape[0]!, w.shape[1]!];
  const f64 = w.data instanceof Float64Array;
  const x = f64 ? new Tensor("f64", w.shape, w.data as Float64Array) : new Tensor("f32", w.shape, w.data as Float32Array);
  const opts = p.gIdx === null ? {} : { gIdx: p.gIdx };
  const fq = fakeQuantize(x, p.scale, p.zeroPoint, p.args, opts);
  if (E.isLeft(fq)) return fq;
  const mask = steMask(w.data, rows, cols, p);
  if (E.isLeft(mask)) return mask;
  const y = f64 ? toFloat64(fq.right).data : toFloat32(fq.right).data;
  return E.right(
    record(tape, [w], y, w.shape, (_, g) => passMasked(g, gradOf(w), mask.right)),
  );
};

/**
 * Dynamic input-activation fake quantization of a linear's input x [T, in] (W8A8-style: qparams from x itself, per
 * token / tensor / group, as compressed-tensors computes them on [batch, seq, hidden]), with the clipped STE. The
 * qparams are treated as constants of the backward, as QAT does.
 */
export const fakeQuantInputSTE = (tape: Tape, x: Var, args: QuantizationArgs): E.Either<SchemeError, Var> => {
  const f64 = x.data instanceof Float64Array;
  const shape = args.strategy === "token" ? [1, ...x.shape] : x.shape;
  const t = f64 ? new Tensor("f64", shape, x.data as Float64Array) : new Tensor("f32", shape, x.data as Float32Array);
  const qp = computeDynamicQParams(t, args);
  if (E.isLeft(qp)) return qp;
  const zp = args.symmetric ? null : qp.right.zeroPoint;
  const fq = fakeQuantize(t, qp.right.scale, zp, args);
  if (E.isLeft(fq)) return fq;
  const mask = steMask(x.data, x.shape[0]!, x.shape[1]!, { args, scale: qp.right.scale, zeroPoint: zp, gIdx: null });
  if (E.isLeft(mask)) return mask;
  const y = f64 ? toFloat64(fq.right).data : toFloat32(fq.right).data;
  return E.right(record(tape, [x], y, x.shape, (_, g) => passMasked(g, gradOf(x), mask.right)));
};

const passMasked = (g: ArrayLike<number>, into: Float32Array | Float64Array, m: Uint8Array): void => {
  for (let i = 0; i < m.length; i++) if (m[i] === 1) into[i] = into[i]! + g[i]!;
};
