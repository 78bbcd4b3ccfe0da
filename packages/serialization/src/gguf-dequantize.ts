// Dequantization of GGUF tensor data to f32, block by block exactly as ggml defines it (LCPP `ggml-quants.c`
// dequantize_row_*, `ggml-common.h` block structs). Every product and sum is rounded to f32 where ggml's C rounds it
// (Math.fround), so the output is bit for bit what llama.cpp and the `gguf` Python package produce.
import type { GgmlType } from "./ggml-types.js";

const fr = Math.fround;

/** f16 bit pattern → f32 value, as ggml_compute_fp16_to_fp32 (exact; NaN payloads kept in the table's bits). */
const F16: Float32Array = (() => {
  const bits = new Uint32Array(65536);
  const f = new Float32Array(bits.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const e = (h >> 10) & 0x1f;
    const m = h & 0x3ff;
    if (e === 0) f[h] = (h & 0x8000 ? -1 : 1) * m * 2 ** -24;
    else bits[h] = (sign | (e === 31 ? 0x7f800000 | (m << 13) : ((e + 112) << 23) | (m << 13))) >>> 0;
  }
  return f;
})();

const half = (b: Uint8Array, o: number): number => F16[b[o]! | (b[o + 1]! << 8)]!;

type BlockDecoder = (b: Uint8Array, o: number, y: Float32Array, yo: number) => void;

// ----- 32-value blocks -----

const q8_0: BlockDecoder = (b, o, y, yo) => {
  const d = half(b, o);
  for (let j = 0; j < 32; j++) y[yo + j] = ((b[o + 2 + j]! << 24) >> 24) * d;
};

const q4_0: BlockDecoder = (b, o, y, yo) => {
  const d = half(b, o);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 2 + j]!;
    y[yo + j] = ((q & 0xf) - 8) * d;
    y[yo + j + 16] = ((q >> 4) - 8) * d;
  }
};

const q4_1: BlockDecoder = (b, o, y, yo) => {
  const d = half(b, o);
  const m = half(b, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 4 + j]!;
    y[yo + j] = fr((q & 0xf) * d) + m;
    y[yo + j + 16] = fr((q >> 4) * d) + m;
  }
};

const le32 = (b: Uint8Array, o: number): number => (b[o]! | (b[o + 1]! << 8) | (b[o + 2]! << 16) | (b[o + 3]! << 24)) >>> 0;

const q5_0: BlockDecoder = (b, o, y, yo) => {
  const d = half(b, o);
  const qh = le32(b, o + 2);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 6 + j]!;
    y[yo + j] = (((q & 0xf) | (((qh >>> j) & 1) << 4)) - 16) * d;
    y[yo + j + 16] = (((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) - 16) * d;
  }
};

const q5_1: BlockDecoder = (b, o, y, yo) => {
  const d = half(b, o);
  const m = half(b, o + 2);
  const qh = le32(b, o + 4);
  for (let j = 0; j < 16; j++) {
    const q = b[o + 8 + j]!;
    y[yo + j] = fr(((q & 0xf) | (((qh >>> j) & 1) << 4)) * d) + m;
    y[yo + j + 16] = fr(((q >> 4) | (((qh >>> (j + 16)) & 1) << 4)) * d) + m;
  }
};

// ----- 256-value super-blocks (k-quants) -----

const q2_K: BlockDecoder = (b, o, y, yo) => {
  // block_q2_K: scales[16], qs[64], d, dmin
  const d = half(b, o + 80);
  const min = half(b, o + 82);
  let is = 0;
  let out = yo;
  for (let n = 0; n < 2; n++) {
    const q = o + 16 + 32 * n;
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half16 = 0; half16 < 2; half16++) {
        const sc = b[o + is++]!;
        const dl = fr(d * (sc & 0xf));
        const ml = fr(min * (sc >> 4));
        for (let l = 0; l < 16; l++) y[out++] = fr(dl * ((b[q + l + 16 * half16]! >> shift) & 3)) - ml;
      }
    }
  }
};

/** The sixteen 6-bit Q3_K scales (minus 32): low nibbles in bytes 0–7, two high bits in bytes 8–11. */
const q3Scale = (b: Uint8Array, s: number, j: number): number => {
  const lo = j < 8 ? b[s + j]! & 0xf : b[s + j - 8]! >> 4;
  return (lo | (((b[s + 8 + (j % 4)]! >> (2 * (j >> 2))) & 3) << 4)) - 32;
};

const q3_K: BlockDecoder = (b, o, y, yo) => {
  // block_q3_K: hmask[32], qs[64], scales[12], d
  const d = half(b, o + 108);
  let is = 0;
  let m = 1;
  let out = yo;
  for (let n = 0; n < 2; n++) {
    const q = o + 32 + 32 * n;
    for (let shift = 0; shift < 8; shift += 2) {
      for (let half16 = 0; half16 < 2; half16++) {
        const dl = fr(d * q3Scale(b, o + 96, is++));
        for (let l = 0; l < 16; l++) {
          const k = l + 16 * half16;
          y[out++] = dl * (((b[q + k]! >> shift) & 3) - (b[o + k]! & m ? 0 : 4));
        }
      }
      m <<= 1;
    }
  }
};

/** get_scale_min_k4: the j-th 6-bit scale (sm = 0) or min (sm = 1) of Q4_K/Q5_K's 12 packed bytes at `s`. */
const scaleMinK4 = (b: Uint8Array, s: number, j: number, sm: 0 | 1): number =>
  j < 4
    ? b[s + j + 4 * sm]! & 63
    : sm === 0
      ? (b[s + j + 4]! & 0xf) | ((b[s + j - 4]! >> 6) << 4)
      : (b[s + j + 4]! >> 4) | ((b[s + j]! >> 6) << 4);

/** Q4_K and Q5_K: 8 sub-blocks of 32, x = d·sc·q − dmin·m; `bits5` adds Q5_K's fifth bit from qh. */
const kQuant45 =
  (bits5: boolean): BlockDecoder =>
  (b, o, y, yo) => {
    // block_q4_K: d, dmin, scales[12], qs[128]; block_q5_K: d, dmin, scales[12], qh[32], qs[128]
    const d = half(b, o);
    const min = half(b, o + 2);
    const qh = o + 16;
    let ql = bits5 ? o + 48 : o + 16;
    let out = yo;
    for (let is = 0; is < 8; is += 2) {
      const d1 = fr(d * scaleMinK4(b, o + 4, is, 0));
      const m1 = fr(min * scaleMinK4(b, o + 4, is, 1));
      const d2 = fr(d * scaleMinK4(b, o + 4, is + 1, 0));
      const m2 = fr(min * scaleMinK4(b, o + 4, is + 1, 1));
      if (bits5) {
        const u1 = 1 << is;
        const u2 = 2 << is;
        for (let l = 0; l < 32; l++) y[out++] = fr(d1 * ((b[ql + l]! & 0xf) + (b[qh + l]! & u1 ? 16 : 0))) - m1;
        for (let l = 0; l < 32; l++) y[out++] = fr(d2 * ((b[ql + l]! >> 4) + (b[qh + l]! & u2 ? 16 : 0))) - m2;
      } else {
        for (let l = 0; l < 32; l++) y[out++] = fr(d1 * (b[ql + l]! & 0xf)) - m1;
        for (let l = 0; l < 32; l++) y[out++] = fr(d2 * (b[ql + l]! >> 4)) - m2;
      }
      ql += 32;
    }
  };

const SD = new Float32Array(16);
const q6_K: BlockDecoder = (b, o, y, yo) => {
  // block_q6_K: ql[128], qh[64], scales[16] (int8), d; x = (d·sc)·q as ggml multiplies left to right
  const d = half(b, o + 208);
  const sd = SD;
  for (let i = 0; i < 16; i++) sd[i] = d * ((b[o + 192 + i]! << 24) >> 24);
  for (let n = 0; n < 2; n++) {
    const ql = o + 64 * n;
    const qh = o + 128 + 32 * n;
    const yb = yo + 128 * n;
    for (let l = 0; l < 32; l++) {
      const s = 8 * n + (l >> 4);
      const h = b[qh + l]!;
      const lo = b[ql + l]!;
      const hi = b[ql + l + 32]!;
      y[yb + l] = sd[s]! * (((lo & 0xf) | ((h & 3) << 4)) - 32);
      y[yb + l + 32] = sd[s + 2]! * (((hi & 0xf) | (((h >> 2) & 3) << 4)) - 32);
      y[yb + l + 64] = sd[s + 4]! * (((lo >> 4) | (((h >> 4) & 3) << 4)) - 32);
      y[yb + l + 96] = sd[s + 6]! * (((hi >> 4) | (((h >> 6) & 3) << 4)) - 32);
    }
  }
};

// ----- plain floats (whole tensors at once: no blocks) -----

/** F32, F16 and BF16 widen element-wise; the f32 words are written as bits so NaN payloads survive. */
const plainFloat = (name: string, b: Uint8Array, y: Float32Array): boolean => {
  const n = y.length;
  if (name === "F32") new Uint8Array(y.buffer, y.byteOffset, 4 * n).set(b.subarray(0, 4 * n));
  else if (name === "F16") {
    const u = new Uint32Array(y.buffer, y.byteOffset, n);
    const t = new Uint32Array(F16.buffer);
    for (let i = 0; i < n; i++) u[i] = t[b[2 * i]! | (b[2 * i + 1]! << 8)]!;
  } else if (name === "BF16") {
    const u = new Uint32Array(y.buffer, y.byteOffset, n);
    for (let i = 0; i < n; i++) u[i] = ((b[2 * i]! << 16) | (b[2 * i + 1]! << 24)) >>> 0;
  } else return false;
  return true;
};

const DECODERS: Readonly<Record<string, BlockDecoder>> = {
  Q4_0: q4_0,
  Q4_1: q4_1,
  Q5_0: q5_0,
  Q5_1: q5_1,
  Q8_0: q8_0,
  Q2_K: q2_K,
  Q3_K: q3_K,
  Q4_K: kQuant45(false),
  Q5_K: kQuant45(true),
  Q6_K: q6_K,
};

/** The ggml types llmq dequantizes. */
export const GGUF_DEQUANTIZABLE: ReadonlyArray<string> = ["F32", "F16", "BF16", ...Object.keys(DECODERS)];

export const canDequantizeGguf = (type: GgmlType): boolean => GGUF_DEQUANTIZABLE.includes(type.name);

/**
 * The f32 values of `bytes` (whole blocks of `type`), into `out` when given. Throws only for a type outside
 * GGUF_DEQUANTIZABLE or a length that is not whole blocks — callers check both first.
 */
export const dequantizeGguf = (type: GgmlType, bytes: Uint8Array, out?: Float32Array): Float32Array => {
  if (!canDequantizeGguf(type)) throw new Error(`no dequantization for ggml type ${type.name}`);
  if (bytes.length % type.typeSize !== 0) throw new Error(`${bytes.length} bytes is not whole ${type.name} blocks`);
  const blocks = bytes.length / type.typeSize;
  const y = out ?? new Float32Array(blocks * type.blockSize);
  if (plainFloat(type.name, bytes, y)) return y;
  const decode = DECODERS[type.name]!;
  for (let i = 0; i < blocks; i++) decode(bytes, i * type.typeSize, y, i * type.blockSize);
  return y;
};
