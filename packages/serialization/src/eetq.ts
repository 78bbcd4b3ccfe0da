// EETQ int8 as transformers 5.24 makes it (EetqQuantize → kernels-community/quantization-eetq `quant_weights`, a CPU
// op): symmetric_quantize in cutlass_kernels/cutlass_preprocessors.cc on the [in, out] matrix — per column (output
// channel) scale = amax·(1/128) in f32, code = round(w / scale) (half away from zero) clipped to [-128, 127], the scale
// stored in the weight's dtype — then preprocess_weights_for_mixed_gemm for SM 75–89 (the layout cutlass's Sm75 /
// Sm80 traits give int8: rows permuted per 16 for ldmatrix, transposed to column major, column pairs interleaved in
// tiles of 64 rows, +128 and the middle two bytes of every 4 swapped). Fixtures: tools/gen_eetq_fixtures.py.
import * as E from "fp-ts/lib/Either.js";
import type { DenseWeight } from "./gptq-awq-dequantize.js";

const fr = Math.fround;

/** EETQ's shape rules for int8 on SM 75–89, for the [in, out] matrix it preprocesses. */
export const eetqShapeError = (inFeatures: number, outFeatures: number): string | null => {
  if (outFeatures % 64 !== 0) return `out_features ${outFeatures} is not a multiple of 64 (EETQ's interleave_column_major_tensor: "The number of columns must be a multiple of 64")`;
  // EETQ itself checks in_features against 32 only, but its column interleave assumes whole tiles of 64 rows and
  // writes past the buffer otherwise.
  if (inFeatures % 64 !== 0) return `in_features ${inFeatures} is not a multiple of 64 (EETQ's column interleave works in tiles of 64 rows)`;
  return null;
};

/**
 * Where each preprocessed byte comes from: index k·N + n of the row-major [K, N] codes, for preprocessed byte p.
 * permute_B_rows_for_mixed_gemm, subbyte_transpose, interleave_column_major_tensor and the byte swap of
 * add_bias_and_interleave_int8s_inplace, applied to indices.
 */
const layoutMap = (k: number, n: number): Int32Array => {
  const permuted = new Int32Array(k * n);
  for (let r = 0; r < k; r++) {
    const t = r % 16;
    const read = r - t + 8 * ((t % 4) >> 1) + (t % 2) + 2 * (t >> 2);
    for (let c = 0; c < n; c++) permuted[r * n + c] = read * n + c;
  }
  const colMajor = new Int32Array(k * n);
  for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) colMajor[c * k + r] = permuted[r * n + c]!;
  const vecRows = k / 4;
  const interleaved = new Int32Array(k * n);
  for (let c = 0; c < n; c++)
    for (let vr = 0; vr < vecRows; vr++) {
      const write = (c >> 1) * vecRows * 2 + 2 * (vr - (vr % 16)) + 16 * (c % 2) + (vr % 16);
      for (let j = 0; j < 4; j++) interleaved[4 * write + j] = colMajor[4 * (c * vecRows + vr) + j]!;
    }
  for (let i = 0; i < k * n; i += 4) [interleaved[i + 1], interleaved[i + 2]] = [interleaved[i + 2]!, interleaved[i + 1]!];
  return interleaved;
};

/** The int8 bias EETQ adds (int8(x + 128)), its own inverse. */
const flip = (x: number): number => ((x + 128) << 24) >> 24;

/** preprocess_weights_for_mixed_gemm (int8, SM 75–89) of row-major [k, n] codes. */
export const eetqPreprocess = (codes: Int8Array, k: number, n: number): E.Either<string, Int8Array> => {
  const bad = eetqShapeError(k, n);
  if (bad !== null) return E.left(bad);
  if (codes.length !== k * n) return E.left(`${codes.length} codes for [${k}, ${n}]`);
  const map = layoutMap(k, n);
  return E.right(Int8Array.from(map, (src) => flip(codes[src]!)));
};

/** The row-major [k, n] codes back from preprocessed bytes. */
export const eetqUnpreprocess = (bytes: Int8Array, k: number, n: number): E.Either<string, Int8Array> => {
  const bad = eetqShapeError(k, n);
  if (bad !== null) return E.left(bad);
  if (bytes.length !== k * n) return E.left(`${bytes.length} bytes for [${k}, ${n}]`);
  const map = layoutMap(k, n);
  const codes = new Int8Array(k * n);
  for (let p = 0; p < map.length; p++) codes[map[p]!] = flip(bytes[p]!);
  return E.right(codes);
};

export interface EetqQuantized {
  /** Row-major [in, out] codes before preprocessing (quant_weights' unprocessed tensor). */
  readonly codes: Int8Array;
  /** Per output channel amax·(1/128) in f32, before the cast to the weight's dtype. */
  readonly scales: Float32Array;
}

/** symmetric_quantize (int8) of an nn.Linear weight [out, in] (f32 values, f16 ones exactly). */
export const eetqQuantize = (w: Float32Array, out: number, inFeatures: number): EetqQuantized => {
  const scales = new Float32Array(out);
  const codes = new Int8Array(out * inFeatures);
  for (let o = 0; o < out; o++) {
    let amax = 0;
    for (let i = 0; i < inFeatures; i++) amax = Math.max(amax, Math.abs(w[o * inFeatures + i]!));
    const s = fr(amax * (1 / 128));
    scales[o] = s;
    for (let i = 0; i < inFeatures; i++) {
      const q = fr(w[o * inFeatures + i]! / s);
      // C's round() is half away from zero; 0/0 (an all-zero channel) is NaN, which std::min/std::max clip to 127.
      const r = Number.isNaN(q) ? 127 : Math.sign(q) * Math.round(Math.abs(q));
      codes[i * out + o] = Math.max(-128, Math.min(127, r));
    }
  }
  return { codes, scales };
};

/** The dense [out, in] f32 weight from EETQ's stored [in, out] bytes and per-output scales: code·scale. */
export const dequantizeEetq = (weight: Int8Array, shape: ReadonlyArray<number>, scales: Float32Array): E.Either<string, DenseWeight> => {
  if (shape.length !== 2) return E.left(`weight shape [${shape.join(", ")}] is not [in_features, out_features]`);
  const [k, n] = [shape[0]!, shape[1]!];
  if (scales.length !== n) return E.left(`weight_scales has ${scales.length} values for ${n} output features`);
  return E.map((codes: Int8Array) => {
    const y = new Float32Array(n * k);
    for (let r = 0; r < k; r++) for (let c = 0; c < n; c++) y[c * k + r] = fr(codes[r * n + c]! * scales[c]!);
    return { data: y, shape: [n, k] } as DenseWeight;
  })(eetqUnpreprocess(weight, k, n));
};
