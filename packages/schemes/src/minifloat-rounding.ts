import { f32Bits, roundHalfEven } from "@llmq/tensor";

/**
 * compressed-tensors 0.20.0 `cast_to_fp4` (CPU path): thresholds on |x| evaluated in the tensor's dtype, then
 * multiplied by torch.sign(x) — so a negative value rounding to 0 gives -0 (packed as code 0x8), while -0 itself
 * gives +0 (torch.sign(-0.0) is +0).
 */
export const castToFp4 = (x: number): number => {
  if (Number.isNaN(x)) return Number.NaN;
  const sign = x > 0 ? 1 : x < 0 ? -1 : 0;
  const a = Math.abs(x);
  let m: number;
  if (a <= 0.25) m = 0;
  else if (a < 0.75) m = 0.5;
  else if (a <= 1.25) m = 1;
  else if (a < 1.75) m = 1.5;
  else if (a <= 2.5) m = 2;
  else if (a < 3.5) m = 3;
  else if (a <= 5) m = 4;
  else m = 6;
  return m * sign;
};

/**
 * compressed-tensors 0.20.0 `cast_to_fp6` (E2M3): in f32, step = 2^(max(e, 0) − 3) from the f32 exponent of |x|,
 * round half to even on |x|/step, clamp to 7.5, copysign. The caller rounds back to the tensor dtype.
 */
export const castToFp6 = (x: number): number => {
  if (Number.isNaN(x)) return Number.NaN;
  const a = Math.abs(Math.fround(x));
  const e = Math.max(((f32Bits(a) >>> 23) & 0xff) - 127, 0);
  const step = 2 ** (e - 3);
  const r = Math.min(roundHalfEven(a / step) * step, 7.5);
  const neg = x < 0 || Object.is(x, -0);
  return neg ? -r : r;
};
