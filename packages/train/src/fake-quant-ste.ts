import { type QuantizationArgs, type SchemeError, calculateRange, fakeQuantize } from "@llmq/schemes";
import { Tensor, toFloat32, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type Tape, type Var, gradOf, record } from "./tape.js";

// Fake quantization with the clipped straight-through estimator. The forward is compressed-tensors' fake_quantize
// (@llmq/schemes' one implementation, with the module's qparams); the backward passes the gradient unchanged where
// x / s + zp lies inside the quantization range [qmin, qmax] and zeroes it where the forward clamped (QAT's clipped
// STE: rounding has derivative 1, clamping 0). Scales and zero points are not trained.

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

/** Where the clipped STE passes the gradient: 1 inside the range, 0 where the forward clamped. */
export const steMask = (w: ArrayLike<number>, rows: number, cols: number, p: FakeQuantParams): E.Either<SchemeError, Uint8Array> =>
  E.map(({ qMin, qMax }: { qMin: number; qMax: number }) => {
    const s = toFloat64(p.scale).data;
    const z = p.zeroPoint === null ? null : toFloat64(p.zeroPoint).data;
    const { perRow, col } = columnCells(p, rows, cols);
    const mask = new Uint8Array(rows * cols);
    for (let r = 0; r < rows; r++) {
      const base = r * perRow;
      const o = r * cols;
      for (let c = 0; c < cols; c++) {
        const i = base + col[c]!;
        const y = w[o + c]! / s[i]! + (z === null ? 0 : z[i]!);
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
    record(tape, [w], y, w.shape, (_, g) => {
      const gw = gradOf(w);
      const m = mask.right;
      for (let i = 0; i < g.length; i++) if (m[i] === 1) gw[i] = gw[i]! + g[i]!;
    }),
  );
};
