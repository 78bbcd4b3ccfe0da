import * as E from "fp-ts/lib/Either.js";
import { type DType, type Storage, allocStorage, isPacked4 } from "../dtype.js";
import { type TensorError, dtypeMismatch, invalidArgument, shapeMismatch } from "../errors.js";
import { Tensor, sizeOf, stridesOf } from "../tensor.js";
import { fmtShape, normAxis } from "./check.js";

// Shape ops work on every dtype. Tensors are always contiguous, so reshape is free and the others copy.

// ----- element copy -----

type Copier = (src: Storage, si: number, dst: Storage, di: number) => void;

const nibbleCopy: Copier = (src, si, dst, di) => {
  const v = ((src as Uint8Array)[si >> 1]! >> ((si & 1) * 4)) & 0xf;
  const sh = (di & 1) * 4;
  const d = dst as Uint8Array;
  d[di >> 1] = (d[di >> 1]! & ~(0xf << sh)) | (v << sh);
};

const wordCopy: Copier = (src, si, dst, di) => {
  (dst as Float64Array)[di] = (src as Float64Array)[si]!;
};

/** Copies one element between storages of the same dtype (4-bit dtypes are addressed by nibble). */
export const copierFor = (d: DType): Copier => (isPacked4(d) ? nibbleCopy : wordCopy);

// ----- broadcasting -----

/** numpy broadcasting of shapes: align on the right, each pair of dims equal or one of them 1. */
export const broadcastShapes = (...shapes: ReadonlyArray<ReadonlyArray<number>>): E.Either<TensorError, number[]> => {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const s of shapes) {
    for (let i = 0; i < s.length; i++) {
      const o = rank - s.length + i;
      const d = s[i]!;
      if (d === out[o] || d === 1) continue;
      if (out[o] === 1) out[o] = d;
      else return E.left(shapeMismatch("broadcastShapes", shapes, `dimension ${i} of ${fmtShape(s)} (${d}) cannot broadcast against ${out[o]}`));
    }
  }
  return E.right(out);
};

/** Element strides of `shape` viewed as the broadcast `target` shape (0 along broadcast dims). */
export const broadcastStrides = (shape: ReadonlyArray<number>, target: ReadonlyArray<number>): number[] => {
  const st = stridesOf(shape);
  const off = target.length - shape.length;
  return target.map((_, i) => (i < off || shape[i - off] === 1 ? 0 : st[i - off]!));
};

// ----- reshape -----

/** Same elements, new shape; one dimension may be -1 (inferred). Shares the storage. */
export const reshape = <D extends DType>(x: Tensor<D>, shape: ReadonlyArray<number>): E.Either<TensorError, Tensor<D>> => {
  const inferred = shape.filter((d) => d === -1).length;
  if (inferred > 1) return E.left(invalidArgument("reshape", "shape", `at most one dimension may be -1, got ${fmtShape(shape)}`));
  if (shape.some((d) => !Number.isInteger(d) || d < -1))
    return E.left(invalidArgument("reshape", "shape", `dimensions must be integers ≥ 0 or -1, got ${fmtShape(shape)}`));
  const known = shape.reduce((a, d) => (d === -1 ? a : a * d), 1);
  let out = [...shape];
  if (inferred === 1) {
    if (known === 0 || x.size % known !== 0)
      return E.left(shapeMismatch("reshape", [x.shape, shape], `cannot infer -1: ${x.size} elements are not a multiple of ${known}`));
    out = shape.map((d) => (d === -1 ? x.size / known : d));
  }
  if (sizeOf(out) !== x.size) return E.left(shapeMismatch("reshape", [x.shape, shape], `${x.size} elements cannot take shape ${fmtShape(out)}`));
  return E.right(new Tensor(x.dtype, out, x.data));
};

// ----- permute / transpose -----

/** Reorders the axes: output axis i is input axis `axes[i]` (a copy). */
export const permute = <D extends DType>(x: Tensor<D>, axes: ReadonlyArray<number>): E.Either<TensorError, Tensor<D>> => {
  const r = x.rank;
  if (axes.length !== r) return E.left(invalidArgument("permute", "axes", `${fmtShape(axes)} must list all ${r} axes of a tensor of shape ${fmtShape(x.shape)}`));
  const norm: number[] = [];
  for (const a of axes) {
    const n = normAxis("permute", a, r);
    if (E.isLeft(n)) return n;
    norm.push(n.right);
  }
  if (new Set(norm).size !== r) return E.left(invalidArgument("permute", "axes", `${fmtShape(axes)} repeats an axis`));
  const outShape = norm.map((a) => x.shape[a]!);
  const inStrides = stridesOf(x.shape);
  const st = norm.map((a) => inStrides[a]!);
  const n = x.size;
  const out = allocStorage(x.dtype, n);
  const copy = copierFor(x.dtype);
  const idx = new Array<number>(r).fill(0);
  let src = 0;
  for (let i = 0; i < n; i++) {
    copy(x.data, src, out, i);
    // odometer increment over the output index, tracking the input offset
    for (let k = r - 1; k >= 0; k--) {
      idx[k]!++;
      src += st[k]!;
      if (idx[k]! < outShape[k]!) break;
      src -= st[k]! * outShape[k]!;
      idx[k] = 0;
    }
  }
  return E.right(new Tensor(x.dtype, outShape, out));
};

/** Transpose of a 2-D tensor (a copy). */
export const transpose = <D extends DType>(x: Tensor<D>): E.Either<TensorError, Tensor<D>> =>
  x.rank === 2
    ? permute(x, [1, 0])
    : E.left(invalidArgument("transpose", "x", `expects a 2-D tensor, got shape ${fmtShape(x.shape)}; use permute for n-D`));

// ----- slice / concat / contiguous -----

export interface SliceSpec {
  readonly axis: number;
  /** First index (negative counts from the end). */
  readonly start: number;
  /** One past the last index (negative counts from the end); defaults to the dimension. */
  readonly end?: number;
}

/** Elements start..end-1 along one axis (a copy). Indices out of range are an error, not clamped. */
export const slice = <D extends DType>(x: Tensor<D>, spec: SliceSpec): E.Either<TensorError, Tensor<D>> => {
  const ax = normAxis("slice", spec.axis, x.rank);
  if (E.isLeft(ax)) return ax;
  const a = ax.right;
  const dim = x.shape[a]!;
  const start = spec.start < 0 ? spec.start + dim : spec.start;
  const endRaw = spec.end ?? dim;
  const end = endRaw < 0 ? endRaw + dim : endRaw;
  if (!Number.isInteger(start) || !Number.isInteger(end) || start < 0 || end > dim || start > end)
    return E.left(
      invalidArgument("slice", "start/end", `[${spec.start}, ${endRaw}) is not a range inside axis ${spec.axis} of size ${dim} (shape ${fmtShape(x.shape)})`),
    );
  const outShape = x.shape.map((d, i) => (i === a ? end - start : d));
  let outer = 1;
  for (let i = 0; i < a; i++) outer *= x.shape[i]!;
  let inner = 1;
  for (let i = a + 1; i < x.rank; i++) inner *= x.shape[i]!;
  const len = (end - start) * inner;
  const out = allocStorage(x.dtype, sizeOf(outShape));
  if (isPacked4(x.dtype)) {
    const copy = copierFor(x.dtype);
    for (let o = 0; o < outer; o++) for (let j = 0; j < len; j++) copy(x.data, o * dim * inner + start * inner + j, out, o * len + j);
  } else {
    // biome-ignore lint/suspicious/noExplicitAny: same-typed storages
    const src = x.data as any;
    for (let o = 0; o < outer; o++) (out as Float64Array).set(src.subarray(o * dim * inner + start * inner, o * dim * inner + start * inner + len), o * len);
  }
  return E.right(new Tensor(x.dtype, outShape, out));
};

/** Joins tensors of one dtype along an axis; the other dimensions must agree. */
export const concat = <D extends DType>(xs: ReadonlyArray<Tensor<D>>, axis: number): E.Either<TensorError, Tensor<D>> => {
  const first = xs[0];
  if (!first) return E.left(invalidArgument("concat", "xs", "needs at least one tensor"));
  const ax = normAxis("concat", axis, first.rank);
  if (E.isLeft(ax)) return ax;
  const a = ax.right;
  for (let t = 1; t < xs.length; t++) {
    const x = xs[t]!;
    if (x.dtype !== first.dtype) return E.left(dtypeMismatch("concat", `xs[${t}]`, first.dtype, x.dtype));
    if (x.rank !== first.rank || x.shape.some((d, i) => i !== a && d !== first.shape[i]))
      return E.left(shapeMismatch("concat", xs.map((y) => y.shape), `xs[${t}] differs from xs[0] outside axis ${axis}`));
  }
  const total = xs.reduce((s, x) => s + x.shape[a]!, 0);
  const outShape = first.shape.map((d, i) => (i === a ? total : d));
  let outer = 1;
  for (let i = 0; i < a; i++) outer *= first.shape[i]!;
  let inner = 1;
  for (let i = a + 1; i < first.rank; i++) inner *= first.shape[i]!;
  const out = allocStorage(first.dtype, sizeOf(outShape));
  const copy = copierFor(first.dtype);
  const rowOut = total * inner;
  let offset = 0;
  for (const x of xs) {
    const len = x.shape[a]! * inner;
    if (isPacked4(x.dtype)) {
      for (let o = 0; o < outer; o++) for (let j = 0; j < len; j++) copy(x.data, o * len + j, out, o * rowOut + offset + j);
    } else {
      // biome-ignore lint/suspicious/noExplicitAny: same-typed storages
      const src = x.data as any;
      for (let o = 0; o < outer; o++) (out as Float64Array).set(src.subarray(o * len, (o + 1) * len), o * rowOut + offset);
    }
    offset += len;
  }
  return E.right(new Tensor(first.dtype, outShape, out));
};

/** A fresh copy with its own storage (safe to pass to `…InPlace` functions). */
export const contiguous = <D extends DType>(x: Tensor<D>): Tensor<D> => {
  // biome-ignore lint/suspicious/noExplicitAny: slice() keeps the storage type
  return new Tensor(x.dtype, x.shape, (x.data as any).slice(0, x.data.length) as Storage<D>);
};
