import { Tensor, castFromNumbers, getNumber, roundToDType } from "@llmq/tensor";

// ----- E8M0 (MX) scales -----

/** compress_mx_scale: 127 + floor(log2(scale)) as uint8 (log2 evaluated in the scale's dtype, like torch). */
export const mxScaleFromFloat = (scale: Tensor): Tensor<"u8"> => {
  const d = scale.dtype;
  const n = scale.size;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const l = Math.log2(getNumber(scale, i));
    const lr = d === "f64" ? l : d === "f32" ? Math.fround(l) : d === "bf16" || d === "f16" ? roundToDType(d, Math.fround(l)) : Math.fround(l);
    const f = Math.floor(lr);
    // torch's float → int32 cast of ±inf/NaN gives INT_MIN on x86; the uint8 cast keeps the low byte.
    const e = Number.isFinite(f) ? f : -2147483648;
    out[i] = (127 + e) & 0xff;
  }
  return new Tensor("u8", scale.shape, out);
};

/** decompress_mx_scale: 2^(e − 127) in bfloat16. */
export const mxScaleToBf16 = (scale: Tensor): Tensor<"bf16"> => {
  const n = scale.size;
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = 2 ** (getNumber(scale, i) - 127);
  return castFromNumbers("bf16", v, scale.shape);
};

// ----- FP6 E2M3 (MXFP6) -----

/** Magnitudes of the 32 non-negative E2M3 codes, in code order (kE2M3ToFloat). */
export const FP6_E2M3_MAGNITUDES: ReadonlyArray<number> = [
  ...Array.from({ length: 8 }, (_, m) => m / 8),
  ...[0, 1, 2].flatMap((e) => Array.from({ length: 8 }, (_, m) => (1 + m / 8) * 2 ** e)),
];
