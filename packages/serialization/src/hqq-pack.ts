import { hqqPacking } from "./hqq-dequantize.js";

/**
 * hqq's BitPack packing (core/bitpack.py) of codes [rows, cols] along dim 0: the rows are split into `slices` equal
 * blocks (3bit_32 first pads them with zero rows to a multiple of 10) and block i goes to the i-th shift from the top
 * of each word. Returns the little-endian bytes and the packed [rows/slices, cols] shape (in words of 1 or 4 bytes);
 * undefined for an unknown packing or rows that do not split (hqq's own assertion).
 */
export const hqqPack = (
  codes: Uint8Array,
  packing: string,
  rows: number,
  cols: number,
): { readonly bytes: Uint8Array; readonly shape: readonly [number, number] } | undefined => {
  const k = hqqPacking(packing);
  if (k === undefined || codes.length !== rows * cols) return undefined;
  const padded = k.word === 4 ? Math.ceil(rows / k.rows) * k.rows : rows;
  if (padded % k.rows !== 0) return undefined;
  const step = padded / k.rows;
  const words = new Uint32Array(step * cols);
  const top = k.word === 4 ? 27 : 8 - k.bits;
  for (let s = 0; s < k.rows; s++) {
    const shift = top - s * k.bits;
    for (let i = 0; i < step * cols; i++) {
      const src = s * step * cols + i;
      if (src < codes.length) words[i] = (words[i]! | (codes[src]! << shift)) >>> 0;
    }
  }
  const bytes = k.word === 4 ? new Uint8Array(words.buffer) : Uint8Array.from(words);
  return { bytes, shape: [step, cols] };
};
