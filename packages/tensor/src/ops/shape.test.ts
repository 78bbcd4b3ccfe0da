import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { Tensor, castFromNumbers, f32 } from "../tensor.js";
import { broadcastShapes, concat, contiguous, permute, reshape, slice, transpose } from "./shape.js";
import { err, ok } from "./test-util.js";

const iota = (shape: number[]) => f32(Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => i), shape);

describe("reshape", () => {
  it("infers -1 and shares storage", () => {
    const x = iota([2, 3, 4]);
    const y = ok(reshape(x, [4, -1]));
    expect(y.shape).toEqual([4, 6]);
    expect(y.data).toBe(x.data);
  });
  it("rejects bad shapes", () => {
    err(reshape(iota([2, 3]), [4, -1]), "ShapeMismatch", "reshape", "[2, 3]", "[4, -1]");
    err(reshape(iota([2, 3]), [5]), "ShapeMismatch", "reshape", "[2, 3]");
    err(reshape(iota([2, 3]), [-1, -1]), "InvalidArgument", "reshape", "-1");
  });
  it("round-trips (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { minLength: 1, maxLength: 4 }), (shape) => {
        const x = iota(shape);
        const y = ok(reshape(ok(reshape(x, [-1])), shape));
        expect(Array.from(y.data)).toEqual(Array.from(x.data));
      }),
    );
  });
});

describe("permute / transpose", () => {
  it("transposes a 2-D matrix", () => {
    expect(Array.from(ok(transpose(iota([2, 3]))).data)).toEqual([0, 3, 1, 4, 2, 5]);
  });
  it("permutes 3-D axes like numpy.transpose", () => {
    // x[i][j][k] = 12i + 4j + k; y = x.transpose(2, 0, 1): y[k][i][j] = x[i][j][k]
    const y = ok(permute(iota([2, 3, 4]), [2, 0, -2]));
    expect(y.shape).toEqual([4, 2, 3]);
    expect(y.data[1 * 6 + 1 * 3 + 2]).toBe(12 + 8 + 1);
  });
  it("permutes packed int4", () => {
    const x = castFromNumbers("i4", [1, 2, 3, -4, 5, -6], [2, 3]);
    const y = ok(transpose(x));
    expect(Array.from({ length: 6 }, (_, i) => ((y.data[i >> 1]! >> ((i & 1) * 4)) & 0xf) << 28 >> 28)).toEqual([1, -4, 2, 5, 3, -6]);
  });
  it("transpose∘transpose = id (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 0, max: 6 }), (r, c) => {
        const x = iota([r, c]);
        expect(Array.from(ok(transpose(ok(transpose(x)))).data)).toEqual(Array.from(x.data));
      }),
    );
  });
  it("errors", () => {
    err(transpose(iota([2, 3, 4])), "InvalidArgument", "transpose", "[2, 3, 4]");
    err(permute(iota([2, 3]), [0]), "InvalidArgument", "permute", "[2, 3]");
    err(permute(iota([2, 3]), [0, 0]), "InvalidArgument", "permute", "repeats");
    err(permute(iota([2, 3]), [0, 2]), "AxisOutOfRange", "permute", "axis 2", "rank 2");
  });
});

describe("slice / concat", () => {
  it("slices along an axis with negative indices", () => {
    const y = ok(slice(iota([3, 4]), { axis: 1, start: -3, end: -1 }));
    expect(y.shape).toEqual([3, 2]);
    expect(Array.from(y.data)).toEqual([1, 2, 5, 6, 9, 10]);
  });
  it("slice then concat restores the tensor (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 0, max: 1 }), fc.nat(), (r, c, axis, cut) => {
        const x = iota([r, c]);
        const k = cut % ((axis === 0 ? r : c) + 1);
        const parts = [ok(slice(x, { axis, start: 0, end: k })), ok(slice(x, { axis, start: k }))];
        expect(Array.from(ok(concat(parts, axis)).data)).toEqual(Array.from(x.data));
      }),
    );
  });
  it("concat of packed uint4 along the last axis", () => {
    const a = castFromNumbers("u4", [1, 2, 3], [1, 3]);
    const b = castFromNumbers("u4", [4, 5], [1, 2]);
    const y = ok(concat([a, b], -1));
    expect(Array.from(y.data)).toEqual([0x21, 0x43, 0x05]);
  });
  it("errors", () => {
    err(slice(iota([3, 4]), { axis: 1, start: 2, end: 9 }), "InvalidArgument", "slice", "size 4", "[3, 4]");
    err(slice(iota([3, 4]), { axis: 2, start: 0 }), "AxisOutOfRange", "slice", "axis 2");
    err(concat([iota([2, 3]), iota([3, 3])], 1), "ShapeMismatch", "concat", "[2, 3]", "[3, 3]");
    err(concat([iota([2, 3]), new Tensor("f64", [2, 3], new Float64Array(6))], 0), "DTypeMismatch", "concat", "xs[1]", "f64");
    err(concat([], 0), "InvalidArgument", "concat");
  });
});

describe("contiguous / broadcastShapes", () => {
  it("copies storage", () => {
    const x = iota([2, 2]);
    const y = contiguous(x);
    expect(y.data).not.toBe(x.data);
    expect(Array.from(y.data)).toEqual(Array.from(x.data));
  });
  it("broadcasts like numpy", () => {
    expect(ok(broadcastShapes([3, 1, 5], [4, 1], []))).toEqual([3, 4, 5]);
    expect(ok(broadcastShapes([0, 1], [1, 7]))).toEqual([0, 7]);
    err(broadcastShapes([3, 2], [4, 2]), "ShapeMismatch", "broadcastShapes", "[3, 2]", "[4, 2]");
    expect(E.isRight(broadcastShapes())).toBe(true);
  });
});
