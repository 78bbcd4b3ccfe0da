import * as E from "fp-ts/lib/Either.js";
import { roundHalfEven } from "../dtype.js";
import { type TensorError, dtypeMismatch, invalidArgument } from "../errors.js";
import { Tensor, sizeOf } from "../tensor.js";
import { type FloatDType, allocFloat, requireFloat } from "./check.js";
import { erf } from "./erf.js";
import { broadcastShapes, broadcastStrides } from "./shape.js";

// Elementwise math on f32/f64. Each op is written once as a formula over a rounding function `r`: identity for
// f64, Math.fround for f32. Rounding after every primitive step follows torch's f32 kernels, which evaluate the
// same formulas in f32 registers (e.g. silu = x / (1 + exp(-x)), gelu = x·0.5·(1 + erf(x·√½))): + − × ÷ and
// min/max/abs/neg/round are bit-identical to torch; sqrt is IEEE (correctly rounded, like numpy). The primitives
// exp/log/tanh/erf come from libm in f64 and are rounded to f32, while torch 2.13 on x86 uses SLEEF (≤ 1 ulp), an
// approximate sqrt (1 ulp off at times) and, for the vectorised f32 erf, Abramowitz–Stegun 7.1.26 (abs. error
// 1.5e-7); the tests state the resulting tolerances.

type Round = (v: number) => number;
const id: Round = (v) => v;
const fr: Round = Math.fround;
const roundOf = (d: FloatDType): Round => (d === "f32" ? fr : id);

// ----- unary -----

type Unary = (x: number, r: Round) => number;

const SQRT1_2 = Math.SQRT1_2;
const GELU_BETA = Math.SQRT2 * (2 / Math.sqrt(Math.PI)) * 0.5;
const GELU_KAPPA = 0.044715;

const UNARY = {
  exp: (x, r) => r(Math.exp(x)),
  log: (x, r) => r(Math.log(x)),
  sqrt: (x, r) => r(Math.sqrt(x)),
  rsqrt: (x, r) => r(1 / Math.sqrt(x)),
  neg: (x) => -x,
  abs: (x) => Math.abs(x),
  tanh: (x, r) => r(Math.tanh(x)),
  sigmoid: (x, r) => r(1 / r(1 + r(Math.exp(-x)))),
  silu: (x, r) => r(x / r(1 + r(Math.exp(-x)))),
  gelu: (x, r) => r(r(x * 0.5) * r(1 + r(erf(r(x * r(SQRT1_2)))))),
  geluTanh: (x, r) => {
    const x3 = r(r(x * x) * x);
    const inner = r(r(GELU_BETA) * r(x + r(r(GELU_KAPPA) * x3)));
    return r(r(0.5 * x) * r(1 + r(Math.tanh(inner))));
  },
  relu: (x) => (x > 0 ? x : Number.isNaN(x) ? x : 0),
  round: (x) => roundHalfEven(x),
} satisfies Record<string, Unary>;

export type UnaryOpName = keyof typeof UNARY;

const mapUnary = (op: string, f: Unary) => (x: Tensor): E.Either<TensorError, Tensor<FloatDType>> => {
  const t = requireFloat(op, x);
  if (E.isLeft(t)) return t;
  const r = roundOf(t.right.dtype);
  const src = t.right.data;
  const out = allocFloat(t.right.dtype, src.length);
  for (let i = 0; i < src.length; i++) out[i] = f(src[i]!, r);
  return E.right(new Tensor(t.right.dtype, x.shape, out));
};

export const exp = mapUnary("exp", UNARY.exp);
export const log = mapUnary("log", UNARY.log);
export const sqrt = mapUnary("sqrt", UNARY.sqrt);
/**
 * 1 / sqrt(x), rounded once (correctly rounded in practice). torch's CPU rsqrt is an approximation that can be
 * 1 ulp off in f32, so results agree with torch within 1 ulp.
 */
export const rsqrt = mapUnary("rsqrt", UNARY.rsqrt);
export const neg = mapUnary("neg", UNARY.neg);
export const abs = mapUnary("abs", UNARY.abs);
export const tanh = mapUnary("tanh", UNARY.tanh);
export const sigmoid = mapUnary("sigmoid", UNARY.sigmoid);
export const silu = mapUnary("silu", UNARY.silu);
export const relu = mapUnary("relu", UNARY.relu);
/** Round half to even (torch.round), elementwise. */
export const round = mapUnary("round", UNARY.round);

const geluExact = mapUnary("gelu", UNARY.gelu);
const geluApprox = mapUnary("gelu", UNARY.geluTanh);
/** GELU: exact (erf, the default) or torch's `approximate="tanh"`. */
export const gelu = (x: Tensor, opts: { readonly approximate?: "none" | "tanh" } = {}): E.Either<TensorError, Tensor<FloatDType>> =>
  opts.approximate === "tanh" ? geluApprox(x) : geluExact(x);

/** Clamps into [min, max] like torch.clamp (NaN stays NaN; min > max gives max). Bounds round to the dtype. */
export const clamp = (x: Tensor, bounds: { readonly min?: number; readonly max?: number }): E.Either<TensorError, Tensor<FloatDType>> => {
  const t = requireFloat("clamp", x);
  if (E.isLeft(t)) return t;
  if (bounds.min === undefined && bounds.max === undefined) return E.left(invalidArgument("clamp", "bounds", "give at least one of min and max"));
  const r = roundOf(t.right.dtype);
  const lo = bounds.min === undefined ? -Infinity : r(bounds.min);
  const hi = bounds.max === undefined ? Infinity : r(bounds.max);
  const src = t.right.data;
  const out = allocFloat(t.right.dtype, src.length);
  for (let i = 0; i < src.length; i++) out[i] = Math.min(Math.max(src[i]!, lo), hi);
  return E.right(new Tensor(t.right.dtype, x.shape, out));
};

// ----- binary with broadcasting -----

type Binary = (a: number, b: number, r: Round) => number;

const BINARY = {
  add: (a, b, r) => r(a + b),
  sub: (a, b, r) => r(a - b),
  mul: (a, b, r) => r(a * b),
  div: (a, b, r) => r(a / b),
  maximum: (a, b) => Math.max(a, b),
  minimum: (a, b) => Math.min(a, b),
  pow: (a, b, r) => r(a ** b),
} satisfies Record<string, Binary>;

/** True when `shape`, without leading 1s, equals the trailing dimensions of `target`. */
const isSuffix = (shape: ReadonlyArray<number>, target: ReadonlyArray<number>): boolean => {
  let i = 0;
  while (i < shape.length && shape[i] === 1) i++;
  const rest = shape.slice(i);
  const off = target.length - rest.length;
  return rest.every((d, j) => d === target[off + j]);
};

/** Calls f(outIndex, aIndex, bIndex) over the broadcast shape, odometer style. */
export const forEachBroadcast = (
  shape: ReadonlyArray<number>,
  sa: ReadonlyArray<number>,
  sb: ReadonlyArray<number>,
  f: (i: number, ia: number, ib: number) => void,
): void => {
  const n = sizeOf(shape);
  const r = shape.length;
  const idx = new Array<number>(r).fill(0);
  let ia = 0;
  let ib = 0;
  for (let i = 0; i < n; i++) {
    f(i, ia, ib);
    for (let k = r - 1; k >= 0; k--) {
      idx[k]!++;
      ia += sa[k]!;
      ib += sb[k]!;
      if (idx[k]! < shape[k]!) break;
      ia -= sa[k]! * shape[k]!;
      ib -= sb[k]! * shape[k]!;
      idx[k] = 0;
    }
  }
};

const mapBinary =
  (op: string, f: Binary) =>
  (a: Tensor, b: Tensor | number): E.Either<TensorError, Tensor<FloatDType>> => {
    const ta = requireFloat(op, a);
    if (E.isLeft(ta)) return ta;
    const d = ta.right.dtype;
    const bt: Tensor = typeof b === "number" ? new Tensor(d, [], d === "f32" ? Float32Array.of(b) : Float64Array.of(b)) : b;
    const tb = requireFloat(op, bt);
    if (E.isLeft(tb)) return tb;
    if (tb.right.dtype !== d) return E.left(dtypeMismatch(op, "b", d, tb.right.dtype));
    const shape = broadcastShapes(a.shape, bt.shape);
    if (E.isLeft(shape)) return E.left({ ...shape.left, op } as TensorError);
    const r = roundOf(d);
    const xa = ta.right.data;
    const xb = tb.right.data;
    const out = allocFloat(d, sizeOf(shape.right));
    if (xa.length === out.length && xb.length === out.length) {
      for (let i = 0; i < out.length; i++) out[i] = f(xa[i]!, xb[i]!, r);
    } else if (xb.length === 1 && xa.length === out.length) {
      const s = xb[0]!;
      for (let i = 0; i < out.length; i++) out[i] = f(xa[i]!, s, r);
    } else if (xa.length === out.length && xb.length > 0 && isSuffix(bt.shape, shape.right)) {
      // b repeats along the leading axes (a bias or a norm weight): walk it in blocks.
      const m = xb.length;
      for (let o = 0; o < out.length; o += m) for (let j = 0; j < m; j++) out[o + j] = f(xa[o + j]!, xb[j]!, r);
    } else {
      forEachBroadcast(shape.right, broadcastStrides(a.shape, shape.right), broadcastStrides(bt.shape, shape.right), (i, ia, ib) => {
        out[i] = f(xa[ia]!, xb[ib]!, r);
      });
    }
    return E.right(new Tensor(d, shape.right, out));
  };

export const add = mapBinary("add", BINARY.add);
export const sub = mapBinary("sub", BINARY.sub);
export const mul = mapBinary("mul", BINARY.mul);
export const div = mapBinary("div", BINARY.div);
/** Elementwise max; NaN wins (torch.maximum). */
export const maximum = mapBinary("maximum", BINARY.maximum);
/** Elementwise min; NaN wins (torch.minimum). */
export const minimum = mapBinary("minimum", BINARY.minimum);
export const pow = mapBinary("pow", BINARY.pow);

