// ----- model -----

/**
 * Element types. Storage per dtype:
 * - floats wider than 16 bits live in Float32Array/Float64Array;
 * - f16/bf16 keep their raw bit patterns in a Uint16Array, fp8 in a Uint8Array (one code per byte);
 * - the 4-bit types (i4, u4, f4_e2m1) are packed two per byte, low nibble first (element 2i in bits 0..3).
 */
export type DType =
  | "f64"
  | "f32"
  | "f16"
  | "bf16"
  | "f8_e4m3fn"
  | "f8_e5m2"
  | "f4_e2m1"
  | "i64"
  | "i32"
  | "i16"
  | "i8"
  | "u8"
  | "i4"
  | "u4"
  | "bool";

export interface StorageMap {
  f64: Float64Array;
  f32: Float32Array;
  f16: Uint16Array;
  bf16: Uint16Array;
  f8_e4m3fn: Uint8Array;
  f8_e5m2: Uint8Array;
  f4_e2m1: Uint8Array;
  i64: BigInt64Array;
  i32: Int32Array;
  i16: Int16Array;
  i8: Int8Array;
  u8: Uint8Array;
  i4: Uint8Array;
  u4: Uint8Array;
  bool: Uint8Array;
}

export type Storage<D extends DType = DType> = StorageMap[D];

export interface DTypeInfo {
  /** Bits per element (4 for the packed types). */
  readonly bits: number;
  readonly kind: "float" | "int" | "uint" | "bool";
  /** Bytes per storage word (the typed array's BYTES_PER_ELEMENT). */
  readonly wordBytes: number;
}

// ----- constants -----

export const DTYPES: Readonly<Record<DType, DTypeInfo>> = {
  f64: { bits: 64, kind: "float", wordBytes: 8 },
  f32: { bits: 32, kind: "float", wordBytes: 4 },
  f16: { bits: 16, kind: "float", wordBytes: 2 },
  bf16: { bits: 16, kind: "float", wordBytes: 2 },
  f8_e4m3fn: { bits: 8, kind: "float", wordBytes: 1 },
  f8_e5m2: { bits: 8, kind: "float", wordBytes: 1 },
  f4_e2m1: { bits: 4, kind: "float", wordBytes: 1 },
  i64: { bits: 64, kind: "int", wordBytes: 8 },
  i32: { bits: 32, kind: "int", wordBytes: 4 },
  i16: { bits: 16, kind: "int", wordBytes: 2 },
  i8: { bits: 8, kind: "int", wordBytes: 1 },
  u8: { bits: 8, kind: "uint", wordBytes: 1 },
  i4: { bits: 4, kind: "int", wordBytes: 1 },
  u4: { bits: 4, kind: "uint", wordBytes: 1 },
  bool: { bits: 8, kind: "bool", wordBytes: 1 },
};

export const isDType = (s: string): s is DType => Object.hasOwn(DTYPES, s);

/** True for the dtypes stored two elements per byte. */
export const isPacked4 = (d: DType): boolean => DTYPES[d].bits === 4;

/** Number of storage words needed for `n` elements. */
export const storageLength = (d: DType, n: number): number => (isPacked4(d) ? Math.ceil(n / 2) : n);

/** Number of bytes needed for `n` elements. */
export const byteLength = (d: DType, n: number): number => storageLength(d, n) * DTYPES[d].wordBytes;

const CTORS = {
  f64: Float64Array,
  f32: Float32Array,
  f16: Uint16Array,
  bf16: Uint16Array,
  f8_e4m3fn: Uint8Array,
  f8_e5m2: Uint8Array,
  f4_e2m1: Uint8Array,
  i64: BigInt64Array,
  i32: Int32Array,
  i16: Int16Array,
  i8: Int8Array,
  u8: Uint8Array,
  i4: Uint8Array,
  u4: Uint8Array,
  bool: Uint8Array,
} as const;

/** Allocates zeroed storage for `n` elements of `d`. */
export const allocStorage = <D extends DType>(d: D, n: number): Storage<D> =>
  new CTORS[d](storageLength(d, n)) as Storage<D>;

/**
 * Views `byteLen` bytes of `buffer` at `byteOffset` as storage of `d`. Zero-copy when the offset is aligned to the
 * word size; otherwise the bytes are copied into a fresh aligned array (typed arrays cannot be misaligned).
 */
export const storageFromBytes = <D extends DType>(
  d: D,
  buffer: ArrayBufferLike,
  byteOffset: number,
  byteLen: number,
): Storage<D> => {
  const w = DTYPES[d].wordBytes;
  const Ctor = CTORS[d];
  if (byteOffset % w === 0) return new Ctor(buffer as ArrayBuffer, byteOffset, byteLen / w) as Storage<D>;
  const copy = new Uint8Array(byteLen);
  copy.set(new Uint8Array(buffer as ArrayBuffer, byteOffset, byteLen));
  return new Ctor(copy.buffer, 0, byteLen / w) as Storage<D>;
};

// ----- scalar conversions -----
// NOTE: every conversion below rounds to nearest, ties to even, like torch's `.to(dtype)`. Inputs are JS numbers
// (f64); an f32 value converted through f64 rounds once, so results match a direct f32 → narrow cast.

const f64buf = new Float64Array(1);
const f64u32 = new Uint32Array(f64buf.buffer);
const f32buf = new Float32Array(1);
const f32u32 = new Uint32Array(f32buf.buffer);

/** Round half to even (torch.round / numpy.round semantics), keeping the sign of zero. */
export const roundHalfEven = (x: number): number => {
  const f = Math.floor(x);
  const d = x - f;
  let r: number;
  if (d < 0.5) r = f;
  else if (d > 0.5) r = f + 1;
  else r = f % 2 === 0 ? f : f + 1;
  // NOTE: Math.round(-2.5) is -2 and Math.round(2.5) is 3; torch gives -2 and 2. Also -0.4 → -0.
  return r === 0 && (x < 0 || Object.is(x, -0)) ? -0 : r;
};

/** f32 bits of a number (after rounding to f32). */
export const f32Bits = (x: number): number => {
  f32buf[0] = x;
  return f32u32[0]!;
};

export const f32FromBits = (b: number): number => {
  f32u32[0] = b >>> 0;
  return f32buf[0]!;
};

/** number → bf16 bits, RNE; NaN stays a quiet NaN. The input is first rounded to f32 as torch does. */
export const bf16FromNumber = (x: number): number => bf16FromF32Bits(f32Bits(x));

/** f32 bits → bf16 bits, RNE; NaN stays a quiet NaN. */
export const bf16FromF32Bits = (b: number): number =>
  (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x40) & 0xffff : ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;

export const bf16ToNumber = (h: number): number => f32FromBits((h & 0xffff) << 16);

/** number → IEEE binary16 bits, RNE, overflow to ±inf, gradual underflow. */
export const f16FromNumber = (x: number): number => {
  // Round to f32 first (torch casts f32 → f16); then a single rounding f32 → f16 on exact values.
  const v = Math.fround(x);
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (Number.isNaN(v)) return 0x7e00;
  if (a === Infinity) return sign | 0x7c00;
  if (a >= 65520) return sign | 0x7c00; // ≥ max + half ulp rounds to inf
  if (a < 2 ** -14) {
    // subnormal: quantum 2^-24
    const m = roundHalfEven(a * 2 ** 24);
    return sign | m; // m == 1024 naturally becomes the smallest normal
  }
  const e = exponentOf(a);
  const m = roundHalfEven(a * 2 ** (10 - e)); // in [1024, 2048]
  const bits = ((e + 15) << 10) + (m - 1024); // carry into the exponent when m == 2048
  return sign | bits;
};

export const f16ToNumber = (h: number): number => {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Infinity;
  return s * (1024 + m) * 2 ** (e - 25);
};

/** floor(log2(a)) for a finite positive number, exact (reads the f64 exponent). */
export const exponentOf = (a: number): number => {
  f64buf[0] = a;
  const hi = f64u32[1]!;
  const e = (hi >>> 20) & 0x7ff;
  if (e === 0) {
    // f64 subnormal: never reached for f32-representable values, handled for completeness
    return Math.floor(Math.log2(a));
  }
  return e - 1023;
};

/** A small float format ("minifloat") as in the OCP FP8/FP4 specs. */
export interface MiniFloat {
  readonly expBits: number;
  readonly manBits: number;
  readonly bias: number;
  /** Largest finite magnitude. */
  readonly max: number;
  /** How overflow is encoded: IEEE-like formats (e5m2) round to inf, "fn" formats (e4m3fn) give NaN, fp4 saturates. */
  readonly overflow: "inf" | "nan" | "saturate";
}

export const FP8_E4M3FN: MiniFloat = { expBits: 4, manBits: 3, bias: 7, max: 448, overflow: "nan" };
export const FP8_E5M2: MiniFloat = { expBits: 5, manBits: 2, bias: 15, max: 57344, overflow: "inf" };
export const FP4_E2M1: MiniFloat = { expBits: 2, manBits: 1, bias: 1, max: 6, overflow: "saturate" };

/** Rounds |a| (finite, ≥ 0) to the nearest value of `f` (RNE), without overflow handling. */
const roundMagnitude = (f: MiniFloat, a: number): number => {
  const emin = 1 - f.bias;
  if (a === 0) return 0;
  const e = Math.max(exponentOf(a), emin);
  const q = 2 ** (e - f.manBits);
  return roundHalfEven(a / q) * q;
};

/** Encodes a number into the bits of a minifloat (sign bit = MSB), RNE like torch's cast. */
export const miniFloatFromNumber = (f: MiniFloat, x: number): number => {
  const width = 1 + f.expBits + f.manBits;
  const signBit = 1 << (width - 1);
  const expMask = (1 << f.expBits) - 1;
  const sign = x < 0 || Object.is(x, -0) ? signBit : 0;
  if (Number.isNaN(x)) return f.overflow === "inf" ? (expMask << f.manBits) | (1 << (f.manBits - 1)) | sign : f.overflow === "nan" ? signBit - 1 : 0;
  const a = Math.abs(Math.fround(x));
  let v = a === Infinity ? Infinity : roundMagnitude(f, a);
  if (v > f.max) {
    if (f.overflow === "saturate") v = f.max;
    else if (f.overflow === "inf") return sign | (expMask << f.manBits);
    else return sign | (signBit - 1); // e4m3fn: S.1111.111 is NaN, there is no inf
  }
  if (v === 0) return sign;
  const emin = 1 - f.bias;
  const e = exponentOf(v);
  if (e < emin) return sign | (v / 2 ** (emin - f.manBits)); // subnormal code
  const mant = v / 2 ** (e - f.manBits) - (1 << f.manBits);
  return sign | ((e + f.bias) << f.manBits) | mant;
};

export const miniFloatToNumber = (f: MiniFloat, bits: number): number => {
  const width = 1 + f.expBits + f.manBits;
  const s = bits & (1 << (width - 1)) ? -1 : 1;
  const e = (bits >> f.manBits) & ((1 << f.expBits) - 1);
  const m = bits & ((1 << f.manBits) - 1);
  const expMax = (1 << f.expBits) - 1;
  if (f.overflow === "inf" && e === expMax) return m ? Number.NaN : s * Infinity;
  if (f.overflow === "nan" && e === expMax && m === (1 << f.manBits) - 1) return Number.NaN;
  if (e === 0) return s * m * 2 ** (1 - f.bias - f.manBits);
  return s * ((1 << f.manBits) + m) * 2 ** (e - f.bias - f.manBits);
};

const decodeTable = (f: MiniFloat): Float32Array => {
  const n = 1 << (1 + f.expBits + f.manBits);
  const t = new Float32Array(n);
  for (let i = 0; i < n; i++) t[i] = miniFloatToNumber(f, i);
  return t;
};

/** Decode tables (code → value) for the 8- and 4-bit floats. */
export const FP8_E4M3FN_VALUES: Float32Array = decodeTable(FP8_E4M3FN);
export const FP8_E5M2_VALUES: Float32Array = decodeTable(FP8_E5M2);
export const FP4_E2M1_VALUES: Float32Array = decodeTable(FP4_E2M1);

export const fp8e4m3FromNumber = (x: number): number => miniFloatFromNumber(FP8_E4M3FN, x);
export const fp8e5m2FromNumber = (x: number): number => miniFloatFromNumber(FP8_E5M2, x);
export const fp4e2m1FromNumber = (x: number): number => miniFloatFromNumber(FP4_E2M1, x);

/** Round a number to the nearest value representable in `d` (float dtypes), returned as a number. */
export const roundToDType = (d: "f64" | "f32" | "f16" | "bf16" | "f8_e4m3fn" | "f8_e5m2" | "f4_e2m1", x: number): number => {
  switch (d) {
    case "f64":
      return x;
    case "f32":
      return Math.fround(x);
    case "f16":
      return f16ToNumber(f16FromNumber(x));
    case "bf16":
      return bf16ToNumber(bf16FromNumber(x));
    case "f8_e4m3fn":
      return FP8_E4M3FN_VALUES[fp8e4m3FromNumber(x)]!;
    case "f8_e5m2":
      return FP8_E5M2_VALUES[fp8e5m2FromNumber(x)]!;
    case "f4_e2m1":
      return FP4_E2M1_VALUES[fp4e2m1FromNumber(x)]!;
  }
};

/** Machine epsilon per float dtype (torch.finfo(d).eps). */
export const FLOAT_EPS: Readonly<Record<"f64" | "f32" | "f16" | "bf16" | "f8_e4m3fn" | "f8_e5m2" | "f4_e2m1", number>> = {
  f64: 2 ** -52,
  f32: 2 ** -23,
  f16: 2 ** -10,
  bf16: 2 ** -7,
  f8_e4m3fn: 2 ** -3,
  f8_e5m2: 2 ** -2,
  f4_e2m1: 2 ** -2,
};

/** Largest finite value per float dtype (torch.finfo(d).max). */
export const FLOAT_MAX: Readonly<Record<"f64" | "f32" | "f16" | "bf16" | "f8_e4m3fn" | "f8_e5m2" | "f4_e2m1", number>> = {
  f64: Number.MAX_VALUE,
  f32: 3.4028234663852886e38,
  f16: 65504,
  bf16: 3.3895313892515355e38,
  f8_e4m3fn: 448,
  f8_e5m2: 57344,
  f4_e2m1: 6,
};

/** Smallest positive normal per float dtype (torch.finfo(d).tiny). */
export const FLOAT_TINY: Readonly<Record<"f64" | "f32" | "f16" | "bf16" | "f8_e4m3fn" | "f8_e5m2" | "f4_e2m1", number>> = {
  f64: 2 ** -1022,
  f32: 2 ** -126,
  f16: 2 ** -14,
  bf16: 2 ** -126,
  f8_e4m3fn: 2 ** -6,
  f8_e5m2: 2 ** -14,
  f4_e2m1: 1,
};

/** Integer range of the integer dtypes. */
export const INT_RANGE: Readonly<Record<"i32" | "i16" | "i8" | "u8" | "i4" | "u4", readonly [number, number]>> = {
  i32: [-(2 ** 31), 2 ** 31 - 1],
  i16: [-32768, 32767],
  i8: [-128, 127],
  u8: [0, 255],
  i4: [-8, 7],
  u4: [0, 15],
};
