import { bf16FromNumber, bf16ToNumber, f16FromNumber, f16ToNumber } from "@llmq/tensor";

/** torch's floating dtypes a quantized checkpoint computes in, by their torch names. */
export type TorchFloat = "float32" | "float16" | "bfloat16";

/** Rounds a number to `d` (round half to even) and returns it as a number: one torch op's result rounding. */
export const roundTo = (d: TorchFloat): ((x: number) => number) =>
  d === "float32" ? Math.fround : d === "float16" ? (x) => f16ToNumber(f16FromNumber(x)) : (x) => bf16ToNumber(bf16FromNumber(x));

/** torch's result dtype of a binary op between two floating tensors of these dtypes. */
export const promoteFloat = (a: TorchFloat, b: TorchFloat): TorchFloat => (a === b ? a : "float32");
