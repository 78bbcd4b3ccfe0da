import * as E from "fp-ts/lib/Either.js";
import { type TensorError, invalidArgument, shapeMismatch } from "../errors.js";
import { Tensor } from "../tensor.js";
import { type FloatDType, allocFloat, fmtShape, normAxis, requireFloat, splitAt } from "./check.js";

// Reductions along one axis, or per group of `groupSize` consecutive elements of the last axis (the layout of
// group quantization). Sums accumulate in f64 and round once, so f32 results are at least as accurate as torch's
// f32 cascade sums (they agree to a few ulp, not bit for bit). NaN propagates like torch: amax/amin/sum give NaN,
// argmax/argmin point at the first NaN.

export type ReduceSpec = { readonly axis: number; readonly keepdims?: boolean } | { readonly groupSize: number };

interface Plan {
  readonly x: Tensor<FloatDType>;
  readonly outer: number;
  readonly len: number;
  readonly inner: number;
  readonly outShape: number[];
}

const plan = (op: string, x: Tensor, spec: ReduceSpec, nonEmpty: boolean): E.Either<TensorError, Plan> => {
  const t = requireFloat(op, x);
  if (E.isLeft(t)) return t;
  let p: Plan;
  if ("groupSize" in spec) {
    const g = spec.groupSize;
    const last = x.shape[x.rank - 1];
    if (last === undefined) return E.left(invalidArgument(op, "groupSize", `needs a tensor of rank ≥ 1, got shape ${fmtShape(x.shape)}`));
    if (!Number.isInteger(g) || g <= 0 || last % g !== 0)
      return E.left(invalidArgument(op, "groupSize", `${g} must be a positive divisor of the last dimension ${last} (shape ${fmtShape(x.shape)})`));
    p = { x: t.right, outer: x.size / g, len: g, inner: 1, outShape: [...x.shape.slice(0, -1), last / g] };
  } else {
    const ax = normAxis(op, spec.axis, x.rank);
    if (E.isLeft(ax)) return ax;
    const [outer, len, inner] = splitAt(x.shape, ax.right);
    const outShape = spec.keepdims ? x.shape.map((d, i) => (i === ax.right ? 1 : d)) : x.shape.filter((_, i) => i !== ax.right);
    p = { x: t.right, outer, len, inner, outShape };
  }
  if (nonEmpty && p.len === 0) return E.left(shapeMismatch(op, [x.shape], "cannot reduce an empty axis"));
  return E.right(p);
};

/** Folds each reduced run with `f(values, start, stride, len)`, writing one number per output element. */
const reduceWith =
  (op: string, nonEmpty: boolean, f: (v: ArrayLike<number>, start: number, stride: number, len: number) => number) =>
  (x: Tensor, spec: ReduceSpec): E.Either<TensorError, Tensor<FloatDType>> =>
    E.map((p: Plan) => {
      const out = allocFloat(p.x.dtype, p.outer * p.inner);
      const v = p.x.data;
      for (let o = 0; o < p.outer; o++)
        for (let i = 0; i < p.inner; i++) out[o * p.inner + i] = f(v, o * p.len * p.inner + i, p.inner, p.len);
      return new Tensor(p.x.dtype, p.outShape, out);
    })(plan(op, x, spec, nonEmpty));

const sumRun = (v: ArrayLike<number>, s: number, st: number, n: number): number => {
  let acc = 0;
  for (let j = 0; j < n; j++) acc += v[s + j * st]!;
  return acc;
};

const maxRun = (v: ArrayLike<number>, s: number, st: number, n: number): number => {
  let m = -Infinity;
  for (let j = 0; j < n; j++) {
    const e = v[s + j * st]!;
    if (Number.isNaN(e)) return e;
    if (e > m) m = e;
  }
  return m;
};

const minRun = (v: ArrayLike<number>, s: number, st: number, n: number): number => {
  let m = Infinity;
  for (let j = 0; j < n; j++) {
    const e = v[s + j * st]!;
    if (Number.isNaN(e)) return e;
    if (e < m) m = e;
  }
  return m;
};

const argRun =
  (better: (a: number, b: number) => boolean) =>
  (v: ArrayLike<number>, s: number, st: number, n: number): number => {
    let best = 0;
    let bv = v[s]!;
    if (Number.isNaN(bv)) return 0;
    for (let j = 1; j < n; j++) {
      const e = v[s + j * st]!;
      if (Number.isNaN(e)) return j;
      if (better(e, bv)) {
        bv = e;
        best = j;
      }
    }
    return best;
  };

export const sum = reduceWith("sum", false, sumRun);
export const mean = reduceWith("mean", true, (v, s, st, n) => sumRun(v, s, st, n) / n);
/** Largest value; NaN if the run holds a NaN (torch.amax). */
export const amax = reduceWith("amax", true, maxRun);
/** Smallest value; NaN if the run holds a NaN (torch.amin). */
export const amin = reduceWith("amin", true, minRun);

const argReduce =
  (op: string, run: (v: ArrayLike<number>, s: number, st: number, n: number) => number) =>
  (x: Tensor, spec: ReduceSpec): E.Either<TensorError, Tensor<"i32">> =>
    E.map((p: Plan) => {
      const out = new Int32Array(p.outer * p.inner);
      for (let o = 0; o < p.outer; o++) for (let i = 0; i < p.inner; i++) out[o * p.inner + i] = run(p.x.data, o * p.len * p.inner + i, p.inner, p.len);
      return new Tensor("i32", p.outShape, out);
    })(plan(op, x, spec, true));

/** Index (i32) of the first largest value along the axis / in each group; the first NaN wins (torch.argmax). */
export const argmax = argReduce("argmax", argRun((a, b) => a > b));
/** Index (i32) of the first smallest value; the first NaN wins (torch.argmin). */
export const argmin = argReduce("argmin", argRun((a, b) => a < b));

export interface ValuesIndices {
  readonly values: Tensor<FloatDType>;
  readonly indices: Tensor<"i32">;
}

const valuesIndices =
  (op: string, vals: typeof amax, idx: typeof argmax) =>
  (x: Tensor, spec: ReduceSpec): E.Either<TensorError, ValuesIndices> => {
    const values = vals(x, spec);
    if (E.isLeft(values)) return E.left({ ...values.left, op } as TensorError);
    const indices = idx(x, spec);
    if (E.isLeft(indices)) return E.left({ ...indices.left, op } as TensorError);
    return E.right({ values: values.right, indices: indices.right });
  };

/** torch.max(x, dim): the largest values and their indices. */
export const max = valuesIndices("max", amax, argmax);
/** torch.min(x, dim): the smallest values and their indices. */
export const min = valuesIndices("min", amin, argmin);
