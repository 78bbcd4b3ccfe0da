// FP8 checkpoints read back to dense f32: transformers' FineGrainedFP8 ("fp8": e4m3 weight, `weight_scale_inv` per
// block, the block size implied by the scale grid as Fp8Dequantize._dequantize_one derives it; uint8 scales are
// UE8M0 exponents 2^(b − 127)) and FBGEMM ("fbgemm_fp8": e4m3 weight, f32 `weight_scale` per output row).
// W = q·s in f32, one rounding, as torch computes `q.to(float32) * s`.
import * as E from "fp-ts/lib/Either.js";
import type { DenseWeight } from "./gptq-awq-dequantize.js";

const fr = Math.fround;

/** Block-scaled e4m3: `q` decoded values [rows, cols], `s` [scaleRows, scaleCols] (f32, or UE8M0 bytes). */
export const dequantizeFp8Blocks = (q: Float32Array, shape: ReadonlyArray<number>, s: Float32Array | Uint8Array, sShape: ReadonlyArray<number>): E.Either<string, DenseWeight> => {
  if (shape.length !== 2 || shape[0]! * shape[1]! !== q.length) return E.left(`weight shape [${shape.join(", ")}] does not hold ${q.length} values`);
  const [rows, cols] = [shape[0]!, shape[1]!];
  const [sr, sc] = sShape.length === 2 ? [sShape[0]!, sShape[1]!] : sShape.length === 0 || (sShape.length === 1 && sShape[0] === 1) ? [1, 1] : [0, 0];
  if (sr <= 0 || sc <= 0 || sr * sc !== s.length) return E.left(`scale grid [${sShape.join(", ")}] is not 2-D (or a single scale)`);
  if (rows % sr !== 0 || cols % sc !== 0) return E.left(`weight shape (${rows}, ${cols}) is not divisible by the scale grid (${sr}, ${sc})`);
  const bm = rows / sr;
  const bn = cols / sc;
  const scale = s instanceof Uint8Array ? Float32Array.from(s, (b) => 2 ** (b - 127)) : s;
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r * cols + c] = q[r * cols + c]! * scale[Math.floor(r / bm) * sc + Math.floor(c / bn)]!;
  return E.right({ data: y, shape: [rows, cols] });
};

/** Per-row e4m3 (FBGEMM): `scale` [rows, 1] or [rows]. */
export const dequantizeFp8Rows = (q: Float32Array, shape: ReadonlyArray<number>, scale: Float32Array): E.Either<string, DenseWeight> => {
  if (shape.length !== 2 || shape[0]! * shape[1]! !== q.length) return E.left(`weight shape [${shape.join(", ")}] does not hold ${q.length} values`);
  if (scale.length !== shape[0]) return E.left(`weight_scale has ${scale.length} values for ${shape[0]} rows`);
  const [rows, cols] = [shape[0]!, shape[1]!];
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r * cols + c] = fr(q[r * cols + c]! * scale[r]!);
  return E.right({ data: y, shape: [rows, cols] });
};
