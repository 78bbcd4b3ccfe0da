// ggml tensor types as GGUF stores them (LCPP `ggml.h` enum, `ggml.c` type_traits; gguf-py GGML_QUANT_SIZES).

/** One ggml type: its id in the file, name, values per block and bytes per block. */
export interface GgmlType {
  readonly id: number;
  readonly name: string;
  readonly blockSize: number;
  readonly typeSize: number;
}

const T = (id: number, name: string, blockSize: number, typeSize: number): GgmlType => ({ id, name, blockSize, typeSize });

/**
 * Every type llama.cpp can put in a GGUF file. Ids 4, 5 (Q4_2/Q4_3) and 31–33, 36–38 were removed upstream; llama.cpp
 * gives them block size 0 and refuses such files, and so do we.
 */
export const GGML_TYPES: ReadonlyArray<GgmlType> = [
  T(0, "F32", 1, 4),
  T(1, "F16", 1, 2),
  T(2, "Q4_0", 32, 18),
  T(3, "Q4_1", 32, 20),
  T(6, "Q5_0", 32, 22),
  T(7, "Q5_1", 32, 24),
  T(8, "Q8_0", 32, 34),
  T(9, "Q8_1", 32, 40),
  T(10, "Q2_K", 256, 84),
  T(11, "Q3_K", 256, 110),
  T(12, "Q4_K", 256, 144),
  T(13, "Q5_K", 256, 176),
  T(14, "Q6_K", 256, 210),
  T(15, "Q8_K", 256, 292),
  T(16, "IQ2_XXS", 256, 66),
  T(17, "IQ2_XS", 256, 74),
  T(18, "IQ3_XXS", 256, 98),
  T(19, "IQ1_S", 256, 50),
  T(20, "IQ4_NL", 32, 18),
  T(21, "IQ3_S", 256, 110),
  T(22, "IQ2_S", 256, 82),
  T(23, "IQ4_XS", 256, 136),
  T(24, "I8", 1, 1),
  T(25, "I16", 1, 2),
  T(26, "I32", 1, 4),
  T(27, "I64", 1, 8),
  T(28, "F64", 1, 8),
  T(29, "IQ1_M", 256, 56),
  T(30, "BF16", 1, 2),
  T(34, "TQ1_0", 256, 54),
  T(35, "TQ2_0", 256, 66),
  T(39, "MXFP4", 32, 17),
  T(40, "NVFP4", 64, 36),
  T(41, "Q1_0", 128, 18),
];

const BY_ID: ReadonlyMap<number, GgmlType> = new Map(GGML_TYPES.map((t) => [t.id, t]));

export const ggmlTypeById = (id: number): GgmlType | undefined => BY_ID.get(id);

/** Bytes of `elements` values of `type` (elements must be a multiple of the block size). */
export const ggmlByteLength = (type: GgmlType, elements: number): number => (elements / type.blockSize) * type.typeSize;
