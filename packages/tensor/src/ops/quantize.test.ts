import { describe, expect, it } from "vitest";
import { Tensor, castFromNumbers, f32, f64 } from "../tensor.js";
import { groupMinMax, quantizePerGroup } from "./quantize.js";
import { backends, err, loadFixture, ok, tensorOf } from "./test-util.js";

const Q = loadFixture("ops.json").quantize;
const arr = (t: Tensor) => Array.from(t.data as Float32Array);

describe.each(backends())("quantize helpers on the %s backend", (_name, k) => {
  it("per-group int4 asymmetric quantize and fake-quantize are bit-identical to torch's CT-order formula", () => {
    const x = tensorOf(Q.x);
    const opts = { qmin: Q.qmin, qmax: Q.qmax, groupSize: Q.group_size };
    expect(arr(ok(quantizePerGroup(x, tensorOf(Q.scale), tensorOf(Q.zp), { ...opts, fake: false }, k)))).toEqual(Q.q.data);
    expect(arr(ok(quantizePerGroup(x, tensorOf(Q.scale), tensorOf(Q.zp), { ...opts, fake: true }, k)))).toEqual(Q.fake.data);
  });
  it("hand-checked: ties to even, clamp, per tensor / per channel", () => {
    const x = f32([0.25, 0.75, -0.25, 1.25, 100, -100], [2, 3]);
    // x / 0.5 = [0.5, 1.5, -0.5, 2.5, 200, -200] → round half even → [0, 2, -0, 2], clamp to [-8, 7]
    const perTensor = ok(quantizePerGroup(x, f32([0.5]), null, { qmin: -8, qmax: 7, groupSize: 3, fake: false }, k));
    expect(arr(perTensor)).toEqual([0, 2, -0, 2, 7, -8]);
    const perChannel = ok(quantizePerGroup(x, f32([0.5, 50], [2, 1]), castFromNumbers("i8", [0, 1], [2, 1]), { qmin: -8, qmax: 7, groupSize: 3, fake: true }, k));
    // row 1: x/50 + 1 = [3, -1] → [3, -1] → (q − 1)·50 = [100, -100]; 1.25/50 + 1 = 1.025 → 1 → 0
    expect(arr(perChannel)).toEqual([0, 1, -0, 0, 100, -100]);
  });
  it("groupMinMax per group and per row; NaN propagates", () => {
    const x = f32([3, -1, 4, 1, -5, 9, 2, 6], [2, 4]);
    const g = ok(groupMinMax(x, 2, k));
    expect(g.min.shape).toEqual([2, 2]);
    expect(arr(g.min)).toEqual([-1, 1, -5, 2]);
    expect(arr(g.max)).toEqual([3, 4, 9, 6]);
    const row = ok(groupMinMax(x, 4, k));
    expect([arr(row.min), arr(row.max)]).toEqual([
      [-1, -5],
      [4, 9],
    ]);
    const n = ok(groupMinMax(f32([1, Number.NaN, 2, 3], [1, 4]), 2, k));
    expect([Number.isNaN(n.min.data[0]!), n.max.data[1]]).toEqual([true, 3]);
  });
});

describe("quantize errors", () => {
  const x = f32(new Array(8).fill(1), [2, 4]);
  it("name the op, shapes and argument", () => {
    err(quantizePerGroup(x, f32([1, 1, 1]), null, { qmin: -8, qmax: 7, groupSize: 2, fake: true }), "ShapeMismatch", "quantizePerGroup", "[2, 4]", "[3]", "4 values");
    err(quantizePerGroup(x, f32([1, 1]), f32([0]), { qmin: -8, qmax: 7, groupSize: 4, fake: true }), "ShapeMismatch", "quantizePerGroup", "zeroPoint");
    err(quantizePerGroup(x, f32([1, 1]), null, { qmin: -8, qmax: 7, groupSize: 3, fake: true }), "InvalidArgument", "quantizePerGroup", "groupSize", "3", "[2, 4]");
    err(quantizePerGroup(f64([1]), f32([1]), null, { qmin: -8, qmax: 7, groupSize: 1, fake: true }), "UnsupportedDType", "quantizePerGroup", "f64", "f32");
    err(quantizePerGroup(x, f32([1]), null, { qmin: 7, qmax: -8, groupSize: 4, fake: true }), "InvalidArgument", "quantizePerGroup", "qmin");
    err(groupMinMax(x, 0), "InvalidArgument", "groupMinMax", "groupSize", "0");
    err(groupMinMax(new Tensor("bf16", [2], new Uint16Array(2)), 1), "UnsupportedDType", "groupMinMax", "bf16");
  });
});
