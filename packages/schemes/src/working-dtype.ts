import { type DType, roundToDType } from "@llmq/tensor";

// Emulation of torch's elementwise float arithmetic (internal): every op is evaluated exactly (f64 holds the exact
// sum/product of two f32s to within one rounding that cannot flip an f32/bf16/f16 rounding) and then rounded once to
// the result dtype, which is what torch's CPU kernels do (bf16/f16 are computed in f32 and rounded per op).

export type FloatDType = "f64" | "f32" | "bf16" | "f16";

export const isFloatDType = (d: DType): d is FloatDType => d === "f64" || d === "f32" || d === "bf16" || d === "f16";

/** torch.result_type for two float tensors of dims ≥ 1. */
export const promote = (a: FloatDType, b: FloatDType): FloatDType => {
  if (a === b) return a;
  if (a === "f64" || b === "f64") return "f64";
  return "f32"; // f32 with anything narrower, and bf16 with f16
};

export type Rounder = (x: number) => number;

const identity: Rounder = (x) => x;
const bf16: Rounder = (x) => roundToDType("bf16", x);
const f16: Rounder = (x) => roundToDType("f16", x);

export const rounder = (d: FloatDType): Rounder => (d === "f64" ? identity : d === "f32" ? Math.fround : d === "bf16" ? bf16 : f16);

const TORCH_NAME_DTYPES: Readonly<Record<string, DType>> = {
  "torch.float64": "f64",
  "torch.float32": "f32",
  "torch.bfloat16": "bf16",
  "torch.float16": "f16",
  "torch.float8_e4m3fn": "f8_e4m3fn",
  "torch.float8_e5m2": "f8_e5m2",
  "torch.int8": "i8",
  "torch.int16": "i16",
  "torch.int32": "i32",
  "torch.int64": "i64",
  "torch.uint8": "u8",
};

/** torch dtype string (config.json form) → llmq dtype, for the dtypes a scale or zero point can have. */
export const dtypeOfTorchName = (name: string): DType | undefined =>
  Object.hasOwn(TORCH_NAME_DTYPES, name) ? TORCH_NAME_DTYPES[name] : undefined;
