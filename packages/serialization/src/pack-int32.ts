// ----- dense int32 packing (compressed-tensors 0.18+ pack_to_int32 / unpack_from_int32) -----
// Element i of a row, offset by 2^(b−1) to be unsigned, occupies bits [i·b, i·b + b) of the row's bit stream; word w
// holds stream bits [32w, 32w + 32), low bits first, and a value that crosses a word boundary continues at bit 0 of
// the next word. Rows are padded with raw zeros and truncated to ceil(cols·b/32) words. For b ∈ {1, 2, 4, 8} this is
// the legacy layout (32/b elements per word).

/** Words per packed row of `cols` elements. */
export const packedWords = (cols: number, bits: number): number => Math.ceil((cols * bits) / 32);

/**
 * Packs `rows × cols` signed codes (row-major, each in [−2^(b−1), 2^(b−1) − 1]) along the rows (packed_dim=1):
 * returns rows × ceil(cols·b/32) int32 words.
 */
export const packRowsToInt32 = (codes: ArrayLike<number>, rows: number, cols: number, bits: number): Int32Array => {
  const words = packedWords(cols, bits);
  const out = new Int32Array(rows * words);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  if (32 % bits === 0) {
    // whole elements per word (1, 2, 4, 8 bits): build each word in a register
    const per = 32 / bits;
    for (let r = 0; r < rows; r++) {
      const src = r * cols;
      for (let w = 0; w < words; w++) {
        const c0 = w * per;
        const n = Math.min(per, cols - c0);
        let word = 0;
        for (let t = 0; t < n; t++) word |= ((codes[src + c0 + t]! + offset) & mask) << (t * bits);
        out[r * words + w] = word;
      }
    }
    return out;
  }
  for (let r = 0; r < rows; r++) {
    const base = r * words;
    for (let c = 0; c < cols; c++) {
      const u = (codes[r * cols + c]! + offset) & mask;
      const bit = c * bits;
      const w = bit >>> 5;
      const sh = bit & 31;
      out[base + w]! |= u << sh;
      if (sh + bits > 32) out[base + w + 1]! |= u >>> (32 - sh);
    }
  }
  return out;
};

/** Inverse of packRowsToInt32: rows × cols signed codes. */
export const unpackRowsFromInt32 = (words: Int32Array, rows: number, cols: number, bits: number): Int8Array => {
  const nw = packedWords(cols, bits);
  const out = new Int8Array(rows * cols);
  const offset = 1 << (bits - 1);
  const mask = (1 << bits) - 1;
  if (32 % bits === 0) {
    const per = 32 / bits;
    for (let r = 0; r < rows; r++) {
      const dst = r * cols;
      for (let w = 0; w < nw; w++) {
        const word = words[r * nw + w]!;
        const c0 = w * per;
        const n = Math.min(per, cols - c0);
        for (let t = 0; t < n; t++) out[dst + c0 + t] = ((word >>> (t * bits)) & mask) - offset;
      }
    }
    return out;
  }
  for (let r = 0; r < rows; r++) {
    const base = r * nw;
    for (let c = 0; c < cols; c++) {
      const bit = c * bits;
      const w = bit >>> 5;
      const sh = bit & 31;
      let u = (words[base + w]! >>> sh) & mask;
      if (sh + bits > 32) u |= (words[base + w + 1]! << (32 - sh)) & mask;
      out[r * cols + c] = u - offset;
    }
  }
  return out;
};

/**
 * packed_dim=0 (zero points): packs each column of a rows × cols matrix → ceil(rows·b/32) × cols words, i.e.
 * transpose, pack rows, transpose back.
 */
export const packColsToInt32 = (codes: ArrayLike<number>, rows: number, cols: number, bits: number): Int32Array => {
  const t = new Int32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = codes[r * cols + c]!;
  const packedT = packRowsToInt32(t, cols, rows, bits);
  const words = packedWords(rows, bits);
  const out = new Int32Array(words * cols);
  for (let c = 0; c < cols; c++) for (let w = 0; w < words; w++) out[w * cols + c] = packedT[c * words + w]!;
  return out;
};

/** Inverse of packColsToInt32: rows × cols signed codes from ceil(rows·b/32) × cols words. */
export const unpackColsFromInt32 = (words: Int32Array, rows: number, cols: number, bits: number): Int8Array => {
  const nw = packedWords(rows, bits);
  const t = new Int32Array(cols * nw);
  for (let w = 0; w < nw; w++) for (let c = 0; c < cols; c++) t[c * nw + w] = words[w * cols + c]!;
  const codesT = unpackRowsFromInt32(t, cols, rows, bits);
  const out = new Int8Array(rows * cols);
  for (let c = 0; c < cols; c++) for (let r = 0; r < rows; r++) out[r * cols + c] = codesT[c * rows + r]!;
  return out;
};
