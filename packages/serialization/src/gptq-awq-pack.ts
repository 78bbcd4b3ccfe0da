// The writing side of GPTQ (AutoGPTQ v1 / GPTQModel v2) and AutoAWQ GEMM packed linears, the inverse of
// gptq-awq-dequantize.ts: qweight packed along the input dimension (GPTQModel pack_original, incl. the 3-bit scheme
// whose values straddle words), qzeros along the output dimension — v1 stores z − 1 OR-packed as AutoGPTQ's
// qlinear_cuda_old.pack does (a zero point of 0 becomes −1 and sets every higher bit of its word: the quirk is
// written as AutoGPTQ wrote it, so every GPTQ v1 reader sees what it expects) — and AWQ GEMM's nibble order
// [0, 2, 4, 6, 1, 3, 5, 7] (AutoAWQ packing_utils AWQ_ORDER).
import type { AwqParts, GptqParts } from "./gptq-awq-dequantize.js";

/** Three words from 32 3-bit values (AutoGPTQ / GPTQModel `_pack_rows_3`); `at(j)` is value j of the block. */
const pack3 = (at: (j: number) => number): readonly [number, number, number] => {
  let w0 = 0;
  let w1 = 0;
  let w2 = 0;
  for (let j = 0; j < 10; j++) w0 |= at(j) << (3 * j);
  w0 |= at(10) << 30;
  w1 |= (at(10) >> 2) & 1;
  for (let j = 0; j < 10; j++) w1 |= at(11 + j) << (3 * j + 1);
  w1 |= at(21) << 31;
  w2 |= (at(21) >> 1) & 3;
  for (let j = 0; j < 10; j++) w2 |= at(22 + j) << (3 * j + 2);
  return [w0 | 0, w1 | 0, w2 | 0];
};

/** Values [R, C] (row-major) → words [R·bits/32, C], packed along the rows (qweight). */
export const packRows = (values: ArrayLike<number>, rows: number, cols: number, bits: number): Int32Array => {
  if (bits === 3) {
    const out = new Int32Array((rows / 32) * 3 * cols);
    for (let b = 0; b < rows / 32; b++)
      for (let c = 0; c < cols; c++) {
        const w = pack3((j) => values[(b * 32 + j) * cols + c]!);
        for (let t = 0; t < 3; t++) out[(b * 3 + t) * cols + c] = w[t]!;
      }
    return out;
  }
  const pf = 32 / bits;
  const mask = (1 << bits) - 1;
  const out = new Int32Array((rows / pf) * cols);
  for (let r = 0; r < rows / pf; r++)
    for (let c = 0; c < cols; c++) {
      let w = 0;
      for (let i = 0; i < pf; i++) w |= (values[(r * pf + i) * cols + c]! & mask) << (bits * i);
      out[r * cols + c] = w;
    }
  return out;
};

/**
 * Values [R, C] → words [R, C·bits/32], packed along the columns (qzeros, AWQ GEMV). `orRaw` ORs each value
 * unmasked (AutoGPTQ's uint32 OR: a −1 sets every bit from its field up); otherwise values are masked to `bits`.
 */
export const packCols = (values: ArrayLike<number>, rows: number, cols: number, bits: number, orRaw = false): Int32Array => {
  const n = (cols * bits) / 32;
  const out = new Int32Array(rows * n);
  if (bits === 3) {
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < n; c += 3) {
        const w = pack3((j) => values[r * cols + (c / 3) * 32 + j]! & 7);
        for (let t = 0; t < 3; t++) out[r * n + c + t] = w[t]!;
      }
    return out;
  }
  const pf = 32 / bits;
  const mask = orRaw ? -1 : (1 << bits) - 1;
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < n; c++) {
      let w = 0;
      for (let i = 0; i < pf; i++) w |= (values[r * cols + c * pf + i]! & mask) << (bits * i);
      out[r * n + c] = w;
    }
  return out;
};

export interface GptqPackInput {
  /** Codes q[k, n] in [0, 2^bits − 1], [in, out] row-major. */
  readonly q: ArrayLike<number>;
  /** Zero points z[g, n] in [0, 2^bits − 1]. */
  readonly zeros: ArrayLike<number>;
  /** Scales [g, n] (stored fp16 by the writer). */
  readonly scales: Float32Array;
  /** Group of each input column (act order), [in]. */
  readonly gIdx: Int32Array;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly bits: 2 | 3 | 4 | 8;
  /** checkpoint_format "gptq": zeros stored minus one with AutoGPTQ's OR packing; false = "gptq_v2". */
  readonly v1: boolean;
}

/** qweight / qzeros / scales / g_idx as GPTQ checkpoints store them. */
export const packGptq = (p: GptqPackInput): GptqParts => {
  const groups = p.zeros.length / p.outFeatures;
  const z = p.v1 ? Int32Array.from(p.zeros, (v) => v - 1) : Int32Array.from(p.zeros);
  const qw = packRows(p.q, p.inFeatures, p.outFeatures, p.bits);
  const qz = packCols(z, groups, p.outFeatures, p.bits, p.v1 && p.bits !== 3);
  return {
    qweight: { data: qw, shape: [qw.length / p.outFeatures, p.outFeatures] },
    qzeros: { data: qz, shape: [groups, qz.length / groups] },
    scales: { data: p.scales, shape: [groups, p.outFeatures] },
    gIdx: { data: p.gIdx, shape: [p.inFeatures] },
  };
};

/** AutoAWQ AWQ_ORDER: output column j of an 8-column chunk goes to nibble position AWQ_ORDER.indexOf(j). */
const AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7] as const;

/** Values [R, C] (C a multiple of 8) → AWQ GEMM words [R, C/8] in AutoAWQ's nibble order. */
export const packAwqGemmWords = (values: ArrayLike<number>, rows: number, cols: number): Int32Array => {
  const out = new Int32Array((rows * cols) / 8);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols / 8; c++) {
      let w = 0;
      for (let i = 0; i < 8; i++) w |= (values[r * cols + c * 8 + AWQ_ORDER[i]!]! & 15) << (4 * i);
      out[(r * cols) / 8 + c] = w;
    }
  return out;
};

/** AWQ GEMM (4-bit, zero point): q[k, n] and zeros[g, n] in the natural order, scales [g, n]. */
export const packAwqGemm = (q: ArrayLike<number>, zeros: ArrayLike<number>, scales: Float32Array, inFeatures: number, outFeatures: number): AwqParts => {
  const groups = zeros.length / outFeatures;
  return {
    qweight: { data: packAwqGemmWords(q, inFeatures, outFeatures), shape: [inFeatures, outFeatures / 8] },
    qzeros: { data: packAwqGemmWords(zeros, groups, outFeatures), shape: [groups, outFeatures / 8] },
    scales: { data: scales, shape: [groups, outFeatures] },
  };
};

/**
 * AWQ GEMV (4-bit, zero point; AutoAWQ WQLinear_GEMV.from_linear): qweight [out, in/8] and qzeros [out, width] packed
 * along their rows in natural nibble order, scales [out, width·8] — width = awqGemvZerosWidth, the groups padded for
 * the kernel with zero scales and zero points. Inputs as packAwqGemm's: q [in, out], zeros and scales [groups, out].
 */
export const packAwqGemv = (q: ArrayLike<number>, zeros: ArrayLike<number>, scales: Float32Array, inFeatures: number, outFeatures: number, width: number): AwqParts => {
  const groups = zeros.length / outFeatures;
  const qT = new Int32Array(outFeatures * inFeatures);
  for (let k = 0; k < inFeatures; k++) for (let n = 0; n < outFeatures; n++) qT[n * inFeatures + k] = q[k * outFeatures + n]!;
  const zT = new Int32Array(outFeatures * width * 8);
  const sT = new Float32Array(outFeatures * width * 8);
  for (let g = 0; g < groups; g++)
    for (let n = 0; n < outFeatures; n++) {
      zT[n * width * 8 + g] = zeros[g * outFeatures + n]!;
      sT[n * width * 8 + g] = scales[g * outFeatures + n]!;
    }
  return {
    qweight: { data: packCols(qT, outFeatures, inFeatures, 4), shape: [outFeatures, inFeatures / 8] },
    qzeros: { data: packCols(zT, outFeatures, width * 8, 4), shape: [outFeatures, width] },
    scales: { data: sT, shape: [outFeatures, width * 8] },
  };
};
