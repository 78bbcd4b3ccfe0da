import { type DType, type Tensor, roundToDType, sizeOf } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type { CompressorArgs } from "../compression-format.js";
import { roundBf16, rowsCols } from "./compressor-support.js";

// ----- dequantization (CT _dequantize in the scale's dtype) -----

export type ComputeDType = "f64" | "f32" | "f16" | "bf16";

/** Rounds an f64 result the way a torch op in `d` does on CPU: computed in f32 (opmath), then rounded to `d`. */
export const rnd = (d: ComputeDType, x: number): number =>
  d === "f64" ? x : d === "f32" ? Math.fround(x) : d === "bf16" ? roundBf16(x) : roundToDType(d, Math.fround(x));

/** Scale index of element (r, c) = rowPart[r] + colPart[c] for every weight strategy. */
interface QParamIndex {
  readonly row: Int32Array;
  readonly col: Int32Array;
}

const indexOf = (rows: number, cols: number, rowOf: (r: number) => number, colOf: (c: number) => number): QParamIndex => ({
  row: Int32Array.from({ length: rows }, (_, r) => rowOf(r)),
  col: Int32Array.from({ length: cols }, (_, c) => colOf(c)),
});

/** Where element (r, c) finds its scale/zero point for the strategy (tensor, channel, group, tensor_group, block). */
const qparamIndex = (
  w: CompressorArgs,
  rows: number,
  cols: number,
  qshape: ReadonlyArray<number>,
  weightShape: ReadonlyArray<number>,
): E.Either<string, QParamIndex> => {
  const n = sizeOf(qshape);
  switch (w.strategy) {
    case "tensor":
      return n === 1 ? E.right(indexOf(rows, cols, () => 0, () => 0)) : E.left(`tensor strategy needs one scale, got shape [${qshape.join(", ")}]`);
    case "channel":
    case "token":
      return n === rows ? E.right(indexOf(rows, cols, (r) => r, () => 0)) : E.left(`channel strategy needs ${rows} scales, got shape [${qshape.join(", ")}]`);
    case "group":
    case "tensor_group": {
      const gs = w.group_size ?? 0;
      if (!(gs > 0)) return E.left("group strategy needs a positive group_size");
      if (cols % gs !== 0) return E.left(`tensor column shape must be divisible by the given group_size ${gs} but got ${cols}`);
      const g = cols / gs;
      return n === rows * g
        ? E.right(indexOf(rows, cols, (r) => r * g, (c) => Math.floor(c / gs)))
        : E.left(`group strategy needs [${rows}, ${g}] scales, got [${qshape.join(", ")}]`);
    }
    case "block": {
      const bs = w.block_structure ?? null;
      if (bs === null || bs.length !== 2 || weightShape.length !== 2) return E.left("block strategy needs block_structure [h, w] and a 2-D weight");
      const [bh, bw] = bs as [number, number];
      const br = Math.ceil(rows / bh);
      const bc = Math.ceil(cols / bw);
      return n === br * bc
        ? E.right(indexOf(rows, cols, (r) => Math.floor(r / bh) * bc, (c) => Math.floor(c / bw)))
        : E.left(`block strategy needs [${br}, ${bc}] scales, got [${qshape.join(", ")}]`);
    }
    default:
      return E.left(`strategy ${w.strategy} is not supported for weights`);
  }
};

/**
 * x_q → (x_q − zp)·s evaluated as compressed-tensors does: every op in the scale's dtype `d` (f32 opmath on CPU);
 * with a global scale, scale/global_scale and the product are float32 and the result is cast to `outDType`.
 */
export const dequantize = (
  q: ArrayLike<number>,
  weightShape: ReadonlyArray<number>,
  scale: Float64Array,
  scaleShape: ReadonlyArray<number>,
  zp: Float64Array | null,
  w: CompressorArgs,
  d: ComputeDType,
  globalScale: number | null,
  outDType: ComputeDType,
  exactCodes: boolean,
  codeRange: readonly [number, number] | null = null,
): E.Either<string, Float32Array> => {
  const [rows, cols] = rowsCols(weightShape);
  const idx = qparamIndex(w, rows, cols, scaleShape, weightShape);
  if (E.isLeft(idx)) return idx;
  const { row, col } = idx.right;
  if (zp !== null && zp.length !== scale.length) return E.left(`zero point has ${zp.length} values but scale has ${scale.length}`);
  const out = new Float32Array(rows * cols);
  if (exactCodes && globalScale === null && codeRange !== null) {
    // Integer codes from a small range: every element of a run sharing one scale/zero point maps through a table of
    // the 2^b possible results, so the rounding runs once per code value rather than once per element.
    const [lo, hi] = codeRange;
    const lut = new Float32Array(hi - lo + 1);
    for (let r = 0; r < rows; r++) {
      const rk = row[r]!;
      const base = r * cols;
      let c = 0;
      while (c < cols) {
        const ck = col[c]!;
        let end = c + 1;
        while (end < cols && col[end] === ck) end++;
        const k = rk + ck;
        const s = scale[k]!;
        const z = zp === null ? 0 : zp[k]!;
        if (end - c >= lut.length) {
          for (let v = lo; v <= hi; v++) lut[v - lo] = rnd(d, (v - z) * s);
          for (let j = c; j < end; j++) out[base + j] = lut[q[base + j]! - lo]!;
        } else for (let j = c; j < end; j++) out[base + j] = rnd(d, (q[base + j]! - z) * s);
        c = end;
      }
    }
    return E.right(out);
  }
  for (let r = 0; r < rows; r++) {
    const rk = row[r]!;
    for (let c = 0; c < cols; c++) {
      const k = rk + col[c]!;
      let x: number;
      if (globalScale !== null) {
        const s = Math.fround(scale[k]! / globalScale);
        x = Math.fround(q[r * cols + c]! * s);
        x = rnd(outDType, x);
      } else if (exactCodes) {
        // codes (and code differences) are exact in d, so only the product rounds
        x = rnd(d, (zp === null ? q[r * cols + c]! : q[r * cols + c]! - zp[k]!) * scale[k]!);
      } else {
        x = rnd(d, q[r * cols + c]!);
        if (zp !== null) x = rnd(d, x - rnd(d, zp[k]!));
        x = rnd(d, x * scale[k]!);
      }
      out[r * cols + c] = x;
    }
  }
  return E.right(out);
};

/** Code dtypes whose values (and int8 differences) every compute dtype (bf16 and wider) holds exactly. */
export const SMALL_CODE_DTYPES: ReadonlyArray<DType> = ["i8", "u8", "f8_e4m3fn", "f8_e5m2"];

export const computeDType = (t: Tensor): ComputeDType | null =>
  t.dtype === "f64" || t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16" ? t.dtype : null;
