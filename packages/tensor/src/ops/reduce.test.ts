import { describe, expect, it } from "vitest";
import { Tensor, f32 } from "../tensor.js";
import type * as E from "fp-ts/lib/Either.js";
import type { TensorError } from "../errors.js";
import { type ReduceSpec, amax, amin, argmax, argmin, max, mean, min, sum } from "./reduce.js";
import { err, expectClose, loadFixture, ok, tensorOf } from "./test-util.js";

const R = loadFixture("ops.json").reduce;
const x = tensorOf(R.x);
const vals = (t: Tensor) => Array.from(t.data as Float32Array);

describe("reductions vs torch (fixtures/ops.json)", () => {
  // Sums accumulate in f64 and round once; torch's f32 cascade rounds per step: |Δ| ≤ n·ε·Σ|x| ≈ 1e-6 here.
  it("amax/amin are exact, sums/means within 1e-6 absolute", () => {
    const s = ok(sum(x, { axis: 1 }));
    expect(s.shape).toEqual(R.sum1.shape);
    expectClose(vals(s), R.sum1.data, 0, 1e-6);
    const m = ok(mean(x, { axis: 2, keepdims: true }));
    expect(m.shape).toEqual([4, 6, 1]);
    expectClose(vals(m), R.mean2.data, 0, 1e-6);
    expect(vals(ok(amax(x, { axis: 0 })))).toEqual(R.amax0.data);
    expect(vals(ok(amin(x, { axis: -2 })))).toEqual(R.amin1.data);
  });
  it("argmax / min indices", () => {
    expect(Array.from(ok(argmax(x, { axis: 2 })).data)).toEqual(R.argmax2);
    const mi = ok(min(x, { axis: 1 }));
    expect(Array.from(mi.indices.data)).toEqual(R.argmin1);
    expect(vals(mi.values)).toEqual(R.amin1.data);
  });
  it("per group of the last axis", () => {
    const g = ok(sum(x, { groupSize: 4 }));
    expect(g.shape).toEqual([4, 6, 2]);
    expectClose(vals(g), R.group_sum_4.data, 0, 1e-6);
    expect(vals(ok(amax(x, { groupSize: 4 })))).toEqual(R.group_amax_4.data);
  });
});

describe("hand-checked", () => {
  const t = f32([3, -1, 7, 7, 2, 0], [2, 3]);
  it("small cases", () => {
    expect(vals(ok(sum(t, { axis: 0 })))).toEqual([10, 1, 7]);
    expect(vals(ok(mean(t, { axis: 1 })))).toEqual([3, 3]);
    expect(Array.from(ok(argmax(t, { axis: 1 })).data)).toEqual([2, 0]); // first of the tied 7s in row 1
    expect(Array.from(ok(argmin(t, { groupSize: 3 })).data)).toEqual([1, 2]);
    const m = ok(max(t, { axis: 0, keepdims: true }));
    expect(m.values.shape).toEqual([1, 3]);
    expect(Array.from(m.indices.data)).toEqual([1, 1, 0]);
  });
  it("NaN propagates like torch", () => {
    const n = f32([1, Number.NaN, 5, 2, 9, Number.NaN], [2, 3]);
    expect(vals(ok(amax(n, { axis: 1 }))).every(Number.isNaN)).toBe(true);
    expect(Number.isNaN(ok(sum(n, { axis: 1 })).data[0]!)).toBe(true);
    expect(Array.from(ok(argmax(n, { axis: 1 })).data)).toEqual([1, 2]);
  });
  it("sum over an empty axis is 0; max over one is an error", () => {
    const e = new Tensor("f32", [2, 0], new Float32Array(0));
    expect(vals(ok(sum(e, { axis: 1 })))).toEqual([0, 0]);
    err(amax(e, { axis: 1 }), "ShapeMismatch", "amax", "[2, 0]", "empty");
  });
  it("every reduction rejects bad axes, group sizes and dtypes naming itself", () => {
    const i8 = new Tensor("i8", [2], new Int8Array(2));
    const all: Record<string, (x: Tensor, s: ReduceSpec) => E.Either<TensorError, unknown>> = { sum, mean, amax, amin, argmax, argmin, min, max };
    for (const [name, f] of Object.entries(all)) {
      err(f(t, { axis: 3 }), "AxisOutOfRange", name, "axis 3", "rank 2");
      err(f(t, { groupSize: 4 }), "InvalidArgument", name, "groupSize", "[2, 3]");
      err(f(i8, { axis: 0 }), "UnsupportedDType", name, "i8");
    }
  });
  it("errors name the op and argument", () => {
    err(sum(t, { axis: 2 }), "AxisOutOfRange", "sum", "axis 2", "rank 2");
    err(mean(t, { groupSize: 2 }), "InvalidArgument", "mean", "groupSize", "[2, 3]");
    err(argmax(new Tensor("i8", [2], new Int8Array(2)), { axis: 0 }), "UnsupportedDType", "argmax", "i8");
    err(min(t, { axis: -3 }), "AxisOutOfRange", "min", "axis -3");
  });
});
