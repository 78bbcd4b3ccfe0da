import type { DType } from "@llmq/tensor";

// ----- model -----

/** Every dtype name the safetensors format (0.8) defines, in the Rust enum's order (= increasing alignment). */
export const SAFETENSORS_DTYPES = [
  "BOOL",
  "F4",
  "F6_E2M3",
  "F6_E3M2",
  "U8",
  "I8",
  "F8_E5M2",
  "F8_E4M3",
  "F8_E8M0",
  "F8_E4M3FNUZ",
  "F8_E5M2FNUZ",
  "I16",
  "U16",
  "F16",
  "BF16",
  "I32",
  "U32",
  "F32",
  "C64",
  "F64",
  "I64",
  "U64",
] as const;

export type SafetensorsDType = (typeof SAFETENSORS_DTYPES)[number];

const BITS: Readonly<Record<SafetensorsDType, number>> = {
  BOOL: 8,
  F4: 4,
  F6_E2M3: 6,
  F6_E3M2: 6,
  U8: 8,
  I8: 8,
  F8_E5M2: 8,
  F8_E4M3: 8,
  F8_E8M0: 8,
  F8_E4M3FNUZ: 8,
  F8_E5M2FNUZ: 8,
  I16: 16,
  U16: 16,
  F16: 16,
  BF16: 16,
  I32: 32,
  U32: 32,
  F32: 32,
  C64: 64,
  F64: 64,
  I64: 64,
  U64: 64,
};

const RANK: ReadonlyMap<string, number> = new Map(SAFETENSORS_DTYPES.map((d, i) => [d, i]));

/** safetensors dtype ↔ llmq dtype for the dtypes llmq reads and writes. */
const TO_LLMQ: Readonly<Partial<Record<SafetensorsDType, DType>>> = {
  F64: "f64",
  F32: "f32",
  F16: "f16",
  BF16: "bf16",
  F8_E4M3: "f8_e4m3fn",
  F8_E5M2: "f8_e5m2",
  I64: "i64",
  I32: "i32",
  I16: "i16",
  I8: "i8",
  U8: "u8",
  BOOL: "bool",
};

const FROM_LLMQ: Readonly<Partial<Record<DType, SafetensorsDType>>> = Object.fromEntries(
  Object.entries(TO_LLMQ).map(([k, v]) => [v, k]),
) as Partial<Record<DType, SafetensorsDType>>;

export const SUPPORTED_SAFETENSORS_DTYPES: ReadonlyArray<SafetensorsDType> = Object.keys(TO_LLMQ) as SafetensorsDType[];
export const SUPPORTED_LLMQ_DTYPES: ReadonlyArray<DType> = Object.values(TO_LLMQ) as DType[];

// ----- queries -----

export const isSafetensorsDType = (s: string): s is SafetensorsDType => RANK.has(s);

export const safetensorsDTypeBits = (d: SafetensorsDType): number => BITS[d];

/** Position in the alignment order the Python library sorts by (descending) before names. */
export const safetensorsDTypeRank = (d: SafetensorsDType): number => RANK.get(d)!;

export const llmqDTypeOf = (d: SafetensorsDType): DType | undefined => TO_LLMQ[d];

export const safetensorsDTypeOf = (d: DType): SafetensorsDType | undefined => FROM_LLMQ[d];
