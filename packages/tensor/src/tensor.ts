import * as E from "fp-ts/lib/Either.js";
import {
  type DType,
  type Storage,
  allocStorage,
  bf16FromF32Bits,
  bf16ToNumber,
  byteLength,
  f16FromNumber,
  f16ToNumber,
  FP4_E2M1_VALUES,
  FP8_E4M3FN_VALUES,
  FP8_E5M2_VALUES,
  fp4e2m1FromNumber,
  fp8e4m3FromNumber,
  fp8e5m2FromNumber,
  storageFromBytes,
  storageLength,
} from "./dtype.js";
import { type TensorError, invalidArgument, shapeMismatch } from "./errors.js";

// ----- model -----

/**
 * A dense, contiguous, row-major tensor. Immutable by convention: ops return new tensors; functions that write
 * into an existing tensor say so in their name (`…InPlace`) and document who owns the buffer.
 */
export class Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: ReadonlyArray<number>;
  readonly data: Storage<D>;

  constructor(dtype: D, shape: ReadonlyArray<number>, data: Storage<D>) {
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.data = data;
  }

  /** Number of elements. */
  get size(): number {
    return sizeOf(this.shape);
  }

  get rank(): number {
    return this.shape.length;
  }

  /** Number of bytes the elements occupy (packed for 4-bit dtypes). */
  get byteLength(): number {
    return byteLength(this.dtype, this.size);
  }

  /** The raw little-endian bytes of the storage (a view, not a copy). */
  bytes(): Uint8Array {
    return new Uint8Array(this.data.buffer, this.data.byteOffset, this.byteLength);
  }

  toString(): string {
    return `Tensor<${this.dtype}>[${this.shape.join("×")}]`;
  }
}

export type F32Tensor = Tensor<"f32">;
export type F64Tensor = Tensor<"f64">;

// ----- shapes -----

export const sizeOf = (shape: ReadonlyArray<number>): number => shape.reduce((a, b) => a * b, 1);

const validShape = (shape: ReadonlyArray<number>): boolean => shape.every((d) => Number.isSafeInteger(d) && d >= 0);

/** Row-major strides (in elements). */
export const stridesOf = (shape: ReadonlyArray<number>): number[] => {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i]!;
  }
  return s;
};

// ----- constructors -----

/** A tensor of zeros. */
export const zeros = <D extends DType>(dtype: D, shape: ReadonlyArray<number>): Tensor<D> =>
  new Tensor(dtype, shape, allocStorage(dtype, sizeOf(shape)));

/** Wraps existing storage; checks that its length matches the shape. */
export const fromStorage = <D extends DType>(dtype: D, shape: ReadonlyArray<number>, data: Storage<D>): E.Either<TensorError, Tensor<D>> =>
  !validShape(shape)
    ? E.left(invalidArgument("fromStorage", "shape", `dimensions must be non-negative integers, got [${shape.join(", ")}]`))
    : data.length !== storageLength(dtype, sizeOf(shape))
      ? E.left(shapeMismatch("fromStorage", [shape], `${dtype} storage of length ${data.length} cannot hold ${sizeOf(shape)} elements`))
      : E.right(new Tensor(dtype, shape, data));

/** f32 tensor from numbers (copied). */
export const f32 = (values: ArrayLike<number>, shape: ReadonlyArray<number> = [values.length]): Tensor<"f32"> => {
  if (sizeOf(shape) !== values.length) throw new Error(`f32: ${values.length} values do not fill shape [${shape.join(", ")}]`);
  return new Tensor("f32", shape, Float32Array.from(values));
};

/** f64 tensor from numbers (copied). */
export const f64 = (values: ArrayLike<number>, shape: ReadonlyArray<number> = [values.length]): Tensor<"f64"> => {
  if (sizeOf(shape) !== values.length) throw new Error(`f64: ${values.length} values do not fill shape [${shape.join(", ")}]`);
  return new Tensor("f64", shape, Float64Array.from(values));
};

/**
 * A tensor over a region of an external buffer (e.g. a safetensors file region). Zero-copy when the offset is
 * aligned to the element word size, otherwise the region is copied once.
 */
export const fromBytes = <D extends DType>(
  dtype: D,
  shape: ReadonlyArray<number>,
  buffer: ArrayBufferLike,
  byteOffset = 0,
): E.Either<TensorError, Tensor<D>> => {
  if (!validShape(shape)) return E.left(invalidArgument("fromBytes", "shape", `dimensions must be non-negative integers, got [${shape.join(", ")}]`));
  const len = byteLength(dtype, sizeOf(shape));
  if (byteOffset < 0 || byteOffset + len > buffer.byteLength)
    return E.left(invalidArgument("fromBytes", "byteOffset", `${len} bytes at offset ${byteOffset} exceed the buffer of ${buffer.byteLength} bytes`));
  return E.right(new Tensor(dtype, shape, storageFromBytes(dtype, buffer, byteOffset, len)));
};

// ----- conversions -----

/** Value of element i of a tensor of any dtype, as a number (i64 as a possibly rounded number). */
export const getNumber = (t: Tensor, i: number): number => {
  const d = t.data;
  switch (t.dtype) {
    case "f16":
      return f16ToNumber((d as Uint16Array)[i]!);
    case "bf16":
      return bf16ToNumber((d as Uint16Array)[i]!);
    case "f8_e4m3fn":
      return FP8_E4M3FN_VALUES[(d as Uint8Array)[i]!]!;
    case "f8_e5m2":
      return FP8_E5M2_VALUES[(d as Uint8Array)[i]!]!;
    case "f4_e2m1":
      return FP4_E2M1_VALUES[nibble(d as Uint8Array, i)]!;
    case "i4": {
      const v = nibble(d as Uint8Array, i);
      return v >= 8 ? v - 16 : v;
    }
    case "u4":
      return nibble(d as Uint8Array, i);
    case "i64":
      return Number((d as BigInt64Array)[i]!);
    default:
      return (d as Float32Array)[i]!;
  }
};

const nibble = (d: Uint8Array, i: number): number => (d[i >> 1]! >> ((i & 1) * 4)) & 0xf;

/** bf16 bits → f32 values, a whole array at once (bf16 is the upper half of an f32). */
const bf16ToF32Array = (d: Uint16Array): Float32Array => {
  const u = new Uint32Array(d.length);
  for (let i = 0; i < d.length; i++) u[i] = d[i]! << 16;
  return new Float32Array(u.buffer);
};

/** Decodes any tensor to f32 values (exact for every dtype narrower than f32; f64/i32/i64 round). */
export const toFloat32 = (t: Tensor): Tensor<"f32"> => {
  if (t.dtype === "f32") return t as Tensor<"f32">;
  if (t.dtype === "bf16") return new Tensor("f32", t.shape, bf16ToF32Array(t.data as Uint16Array));
  const n = t.size;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = getNumber(t, i);
  return new Tensor("f32", t.shape, out);
};

/** Decodes any tensor to f64 values (exact for every dtype except i64 beyond 2^53). */
export const toFloat64 = (t: Tensor): Tensor<"f64"> => {
  if (t.dtype === "f64") return t as Tensor<"f64">;
  if (t.dtype === "bf16") {
    const out = new Float64Array(t.size);
    out.set(bf16ToF32Array(t.data as Uint16Array));
    return new Tensor("f64", t.shape, out);
  }
  const n = t.size;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = getNumber(t, i);
  return new Tensor("f64", t.shape, out);
};

/**
 * Casts numbers into `dtype` like torch's `.to(dtype)`: floats round to nearest even (fp8 e4m3fn: values beyond the
 * rounding range become NaN, e5m2 becomes ±inf; fp4 saturates); integers truncate toward zero and wrap like a C cast.
 */
export const castFromNumbers = <D extends DType>(dtype: D, values: ArrayLike<number>, shape: ReadonlyArray<number>): Tensor<D> => {
  const n = values.length;
  const out = allocStorage(dtype, n);
  switch (dtype) {
    case "f16":
      for (let i = 0; i < n; i++) (out as Uint16Array)[i] = f16FromNumber(values[i]!);
      break;
    case "bf16": {
      // bf16FromNumber over the whole array: round to f32 at once, then RNE on the bits
      const f = values instanceof Float32Array ? values : new Float32Array(n);
      if (f !== values) f.set(values as ArrayLike<number>);
      const u = new Uint32Array(f.buffer, f.byteOffset, n);
      for (let i = 0; i < n; i++) (out as Uint16Array)[i] = bf16FromF32Bits(u[i]!);
      break;
    }
    case "f8_e4m3fn":
      for (let i = 0; i < n; i++) (out as Uint8Array)[i] = fp8e4m3FromNumber(values[i]!);
      break;
    case "f8_e5m2":
      for (let i = 0; i < n; i++) (out as Uint8Array)[i] = fp8e5m2FromNumber(values[i]!);
      break;
    case "f4_e2m1":
      for (let i = 0; i < n; i++) setNibble(out as Uint8Array, i, fp4e2m1FromNumber(values[i]!));
      break;
    case "i4":
    case "u4":
      for (let i = 0; i < n; i++) setNibble(out as Uint8Array, i, Math.trunc(values[i]!) & 0xf);
      break;
    case "i64":
      for (let i = 0; i < n; i++) (out as BigInt64Array)[i] = BigInt(Math.trunc(values[i]!));
      break;
    case "bool":
      for (let i = 0; i < n; i++) (out as Uint8Array)[i] = values[i] ? 1 : 0;
      break;
    default:
      // typed-array assignment: f64/f32 round (RNE), ints take ToInt32-style truncation + wrap.
      for (let i = 0; i < n; i++) (out as Float32Array)[i] = values[i]!;
  }
  return new Tensor(dtype, shape, out);
};

const setNibble = (d: Uint8Array, i: number, v: number): void => {
  const sh = (i & 1) * 4;
  d[i >> 1] = (d[i >> 1]! & ~(0xf << sh)) | ((v & 0xf) << sh);
};

/** Casts a tensor to another dtype (through f64 numbers, so every float → narrower-float cast rounds once). */
export const cast = <D extends DType>(t: Tensor, dtype: D): Tensor<D> => {
  if (t.dtype === dtype) return t as unknown as Tensor<D>;
  if (t.dtype === "i64" && dtype !== "f32" && dtype !== "f64") {
    const vals = Array.from(t.data as BigInt64Array, (b) => Number(BigInt.asIntN(32, b)));
    return castFromNumbers(dtype, vals, t.shape);
  }
  return castFromNumbers(dtype, toFloat64(t).data, t.shape);
};
