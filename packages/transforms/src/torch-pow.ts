import { roundToDType } from "@llmq/tensor";

/**
 * torch's `tensor.pow(python_float)` before the result is rounded: the exponent is cast to the tensor's dtype (0.8 is
 * 0.80078125 for a bf16 tensor, stays f64 for an f64 one), 0 fills ones, 0.5 is sqrt and 1 copies. The caller rounds
 * the result into the tensor's dtype.
 */
export const torchPow = (x: number, e: number, dtype: "f64" | "f32" | "bf16" | "f16"): number => {
  const ef = roundToDType(dtype, e);
  return ef === 0 ? 1 : ef === 0.5 ? Math.sqrt(x) : ef === 1 ? x : x ** ef;
};
