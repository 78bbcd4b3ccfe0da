import { describe, expect, it } from "vitest";
import { Tensor, castFromNumbers, f32, f64 } from "../tensor.js";
import fc from "fast-check";
import { dequantizePerGroup, groupMinMax, quantizePerGroup } from "./quantize.js";
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
  it("dequantizePerGroup(quantize(x)) = fake-quantize(x), bit for bit (property, int8 grid in i8 storage)", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -50, max: 50, noNaN: true }), { minLength: 12, maxLength: 12 }),
        fc.array(fc.float({ min: Math.fround(0.01), max: 2, noNaN: true }), { minLength: 6, maxLength: 6 }),
        fc.array(fc.integer({ min: -20, max: 20 }), { minLength: 6, maxLength: 6 }),
        (xs, ss, zs) => {
          const x = f32(xs, [3, 4]);
          const s = f32(ss, [3, 2]);
          const z = f32(zs, [3, 2]);
          const o = { qmin: -128, qmax: 127, groupSize: 2 };
          const q = ok(quantizePerGroup(x, s, z, { ...o, fake: false }, k));
          const qi8 = castFromNumbers("i8", Array.from(q.data), q.shape);
          const deq = ok(dequantizePerGroup(qi8, s, castFromNumbers("i8", zs, [3, 2]), { groupSize: 2 }));
          // integer storage has no −0, so compare −0 and 0 as equal
          const noNegZero = (t: Tensor) => arr(t).map((v) => v + 0);
          expect(noNegZero(deq)).toEqual(noNegZero(ok(quantizePerGroup(x, s, z, { ...o, fake: true }, k))));
        },
      ),
    );
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
    err(dequantizePerGroup(x, f32([1, 1, 1]), null, { groupSize: 4 }), "ShapeMismatch", "dequantizePerGroup", "[2, 4]", "[3]");
    err(dequantizePerGroup(new Tensor("bool", [1], new Uint8Array(1)), f32([1]), null, { groupSize: 1 }), "UnsupportedDType", "dequantizePerGroup", "bool");
    expect(arr(ok(dequantizePerGroup(castFromNumbers("i4", [-8, 7, 1, 0], [1, 4]), f32([0.5]), null, { groupSize: 4 })))).toEqual([-4, 3.5, 0.5, 0]);
    err(groupMinMax(new Tensor("bf16", [2], new Uint16Array(2)), 1), "UnsupportedDType", "groupMinMax", "bf16");
  });
});
