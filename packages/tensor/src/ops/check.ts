import * as E from "fp-ts/lib/Either.js";
import type { DType } from "../dtype.js";
import { type TensorError, axisOutOfRange, unsupportedDType } from "../errors.js";
import type { Tensor } from "../tensor.js";

// Shared argument checks of the Tensor-level ops. Every check returns the error as a value naming the op.

export type FloatDType = "f32" | "f64";
export const FLOAT_DTYPES: ReadonlyArray<FloatDType> = ["f32", "f64"];

export const isFloat = (t: Tensor): t is Tensor<FloatDType> => t.dtype === "f32" || t.dtype === "f64";

/** Requires an f32 or f64 tensor. */
export const requireFloat = (op: string, t: Tensor): E.Either<TensorError, Tensor<FloatDType>> =>
  isFloat(t) ? E.right(t) : E.left(unsupportedDType(op, t.dtype, FLOAT_DTYPES));

/** Requires one of the listed dtypes. */
export const requireDType = <D extends DType>(op: string, t: Tensor, allowed: ReadonlyArray<D>): E.Either<TensorError, Tensor<D>> =>
  (allowed as ReadonlyArray<DType>).includes(t.dtype) ? E.right(t as Tensor<D>) : E.left(unsupportedDType(op, t.dtype, allowed));

/** Normalises a possibly negative axis (numpy style) against `rank`. */
export const normAxis = (op: string, axis: number, rank: number): E.Either<TensorError, number> =>
  Number.isInteger(axis) && axis >= -rank && axis < rank ? E.right(axis < 0 ? axis + rank : axis) : E.left(axisOutOfRange(op, axis, rank));

export const fmtShape = (s: ReadonlyArray<number>): string => `[${s.join(", ")}]`;

/** A fresh float array of the dtype's storage type. */
export const allocFloat = (d: FloatDType, n: number): Float32Array | Float64Array => (d === "f32" ? new Float32Array(n) : new Float64Array(n));

/** (outer, axisLen, inner) of a row-major shape split at `axis`. */
export const splitAt = (shape: ReadonlyArray<number>, axis: number): readonly [number, number, number] => {
  let outer = 1;
  for (let i = 0; i < axis; i++) outer *= shape[i]!;
  let inner = 1;
  for (let i = axis + 1; i < shape.length; i++) inner *= shape[i]!;
  return [outer, shape[axis]!, inner];
};
