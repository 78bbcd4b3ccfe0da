import { type DType, type Tensor, f16ToNumber, roundHalfEven, toFloat32 } from "@llmq/tensor";

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

// Bit-level roundings of an f32 (hot loops): the number is first rounded to f32, as torch computes bf16/f16 ops in
// f32, then its mantissa is rounded to nearest-even at the narrow width. Checked against roundToDType in tests.
const F = new Float32Array(1);
const U = new Uint32Array(F.buffer);

export const bf16Round: Rounder = (x) => {
  F[0] = x;
  const b = U[0]!;
  if ((b & 0x7fffffff) > 0x7f800000) return Number.NaN;
  U[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return F[0]!;
};

export const f16Round: Rounder = (x) => {
  F[0] = x;
  const v = F[0]!;
  const a = Math.abs(v);
  if (!(a >= 2 ** -14)) {
    if (Number.isNaN(a)) return a;
    const r = roundHalfEven(a * 2 ** 24) * 2 ** -24; // subnormal grid
    return v < 0 || Object.is(v, -0) ? -r : r;
  }
  const b = U[0]!;
  U[0] = (b + 0xfff + ((b >>> 13) & 1)) & 0xffffe000;
  const r = F[0]!;
  return Math.abs(r) > 65504 ? (r > 0 ? Infinity : -Infinity) : r;
};

/** Nearest fp8 e4m3fn value of a finite f32 value already clamped to ±448 (RNE, subnormals on the 2^-9 grid). */
export const fp8Round: Rounder = (y) => {
  if (Number.isNaN(y)) return y;
  F[0] = y;
  const a = Math.abs(F[0]!);
  if (a < 2 ** -6) {
    const r = roundHalfEven(a * 512) / 512;
    return y < 0 || Object.is(y, -0) ? -r : r;
  }
  const b = U[0]!;
  U[0] = (b + 0x7ffff + ((b >>> 20) & 1)) & 0xfff00000;
  return F[0]!;
};

const bf16: Rounder = bf16Round;
const f16: Rounder = f16Round;

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

let F16_TABLE: Float32Array | undefined;

/**
 * The values of a float tensor as a Float32Array (f32: the data itself, no copy; bf16 by a shift; f16 by a 64K table).
 * Exact for every dtype but f64, which callers keep in f64.
 */
export const floatValues = (t: Tensor): Float32Array => {
  if (t.dtype === "f32") return t.data as Float32Array;
  const n = t.size;
  const out = new Float32Array(n);
  if (t.dtype === "bf16") {
    const h = t.data as Uint16Array;
    const u = new Uint32Array(out.buffer);
    for (let i = 0; i < n; i++) u[i] = h[i]! << 16;
    return out;
  }
  if (t.dtype === "f16") {
    if (F16_TABLE === undefined) {
      F16_TABLE = new Float32Array(65536);
      for (let i = 0; i < 65536; i++) F16_TABLE[i] = f16ToNumber(i);
    }
    const h = t.data as Uint16Array;
    const tab = F16_TABLE;
    for (let i = 0; i < n; i++) out[i] = tab[h[i]!]!;
    return out;
  }
  return toFloat32(t).data;
};
