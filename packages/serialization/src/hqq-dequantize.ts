// HQQ (mobiusml/hqq 0.2.8) linears as transformers saves them (HQQLinear.state_dict: W_q, scale, zero and the meta
// encoded as tensors), dequantized as hqq's Quantizer.dequantize does: unpack along dim 0 (4bit_u8 halves, 2bit_u8
// quarters, 3bit_32 ten slices of an int32, 1bit_u8 eighths, 8bit_u8 plain), W = ((W_q − zero)·scale) in the compute
// dtype with torch's type promotion and one rounding per operation, reshaped to `shape`.
import * as E from "fp-ts/lib/Either.js";
import { type TorchFloat, promoteFloat, roundTo } from "./float-rounding.js";
import type { DenseWeight } from "./gptq-awq-dequantize.js";

export type HqqFloat = TorchFloat;

/** A float tensor's values with the dtype they are stored in (the arithmetic rounds to it). */
export interface HqqFloatTensor {
  readonly data: Float32Array;
  readonly shape: ReadonlyArray<number>;
  readonly dtype: HqqFloat;
}

export interface HqqParts {
  /** W_q's raw bytes (after any view_as_float reinterpretation) and its stored 2-D shape in units of `unpackWord`. */
  readonly wq: Uint8Array;
  readonly wqShape: ReadonlyArray<number>;
  readonly packing: string;
  readonly nbits: number;
  readonly axis: number;
  readonly groupSize: number;
  /** [out, in] */
  readonly shape: ReadonlyArray<number>;
  readonly zero: HqqFloatTensor;
  readonly scale: HqqFloatTensor;
  readonly computeDtype: HqqFloat;
}

/** Rows produced per packed row, the bits per value and the word size of each packing (hqq core/bitpack.py). */
const PACKINGS: Readonly<Record<string, { readonly rows: number; readonly bits: number; readonly word: 1 | 4 }>> = {
  "8bit_u8": { rows: 1, bits: 8, word: 1 },
  "4bit_u8": { rows: 2, bits: 4, word: 1 },
  "2bit_u8": { rows: 4, bits: 2, word: 1 },
  "3bit_32": { rows: 10, bits: 3, word: 4 },
  "1bit_u8": { rows: 8, bits: 1, word: 1 },
};
export const HQQ_PACKINGS: ReadonlyArray<string> = Object.keys(PACKINGS);


/** Rows produced per packed row, bits per value and word bytes of an hqq packing; undefined for an unknown name. */
export const hqqPacking = (packing: string): { readonly rows: number; readonly bits: number; readonly word: 1 | 4 } | undefined => PACKINGS[packing];

/**
 * hqq's BitPack unpacking of a packed W_q ([rows, cols] words, little-endian bytes) into codes [rows·slices, cols]:
 * packed slice i (0 = first block of rows) sits at the i-th shift from the top of each word.
 */
export const hqqUnpack = (wq: Uint8Array, packing: string, rows: number, cols: number): Uint8Array => {
  const k = PACKINGS[packing]!;
  const out = new Uint8Array(rows * k.rows * cols);
  const mask = (1 << k.bits) - 1;
  const word =
    k.word === 4 ? (i: number): number => (wq[4 * i]! | (wq[4 * i + 1]! << 8) | (wq[4 * i + 2]! << 16) | (wq[4 * i + 3]! << 24)) >>> 0 : (i: number): number => wq[i]!;
  const top = k.word === 4 ? 27 : 8 - k.bits;
  for (let s = 0; s < k.rows; s++) {
    const shift = top - s * k.bits;
    for (let i = 0; i < rows * cols; i++) out[s * rows * cols + i] = (word(i) >>> shift) & mask;
  }
  return out;
};

const broadcastIndex = (t: HqqFloatTensor, rows: number, cols: number): E.Either<string, (r: number, c: number) => number> => {
  const [a, b] = t.shape.length === 2 ? [t.shape[0]!, t.shape[1]!] : [-1, -1];
  if (a === rows && b === 1) return E.right((r) => r);
  if (a === 1 && b === cols) return E.right((_, c) => c);
  if (a === rows && b === cols) return E.right((r, c) => r * cols + c);
  return E.left(`zero/scale of shape [${t.shape.join(", ")}] do not broadcast over [${rows}, ${cols}]`);
};

/** The [out, in] weight of one HQQ linear, values rounded to hqq's result dtype and widened to f32. */
export const dequantizeHqq = (p: HqqParts): E.Either<string, DenseWeight> => {
  const k = PACKINGS[p.packing];
  if (k === undefined) return E.left(`packing ${JSON.stringify(p.packing)} (hqq has ${HQQ_PACKINGS.join(", ")})`);
  if (k.bits !== p.nbits) return E.left(`packing ${p.packing} holds ${k.bits}-bit values, nbits is ${p.nbits}`);
  if (p.wqShape.length !== 2 || p.wqShape[0]! * p.wqShape[1]! * k.word !== p.wq.length) return E.left(`W_q shape [${p.wqShape.join(", ")}] does not match its ${p.wq.length} bytes`);
  if (p.shape.length !== 2 || !p.shape.every((d) => Number.isSafeInteger(d) && d > 0)) return E.left(`shape [${p.shape.join(", ")}] is not a 2-D weight shape`);
  if (p.axis !== 0 && p.axis !== 1) return E.left(`axis ${p.axis} (hqq groups along 0 or 1)`);
  const [packedRows, cols] = [p.wqShape[0]!, p.wqShape[1]!];
  const n = p.shape[0]! * p.shape[1]!;
  // 3-bit pads the rows to a multiple of 10; Quantizer.dequantize cuts them back.
  const rows = p.nbits === 3 ? (p.axis === 0 ? p.groupSize : n / p.groupSize) : packedRows * k.rows;
  if (rows * cols !== n || rows > packedRows * k.rows) return E.left(`W_q unpacks to [${packedRows * k.rows}, ${cols}], which does not hold shape [${p.shape.join(", ")}]`);
  const zi = broadcastIndex(p.zero, rows, cols);
  const si = broadcastIndex(p.scale, rows, cols);
  if (E.isLeft(zi)) return zi;
  if (E.isLeft(si)) return si;
  const q = hqqUnpack(p.wq, p.packing, packedRows, cols);
  const d1 = promoteFloat(p.computeDtype, p.zero.dtype);
  const d2 = promoteFloat(d1, p.scale.dtype);
  const r1 = roundTo(d1);
  const r2 = roundTo(d2);
  const y = new Float32Array(n);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) y[r * cols + c] = r2(r1(q[r * cols + c]! - p.zero.data[zi.right(r, c)]!) * p.scale.data[si.right(r, c)]!);
  return E.right({ data: y, shape: [p.shape[0]!, p.shape[1]!] });
};
