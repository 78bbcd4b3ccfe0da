import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { formatGptqError } from "./errors.js";
import { type GptqArgs, quantizeWeight } from "./quantize-weight.js";

const base = decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: true, strategy: "channel" });
if (E.isLeft(base)) throw new Error("args");
// Overrides bypass the decoder on purpose: quantizeWeight must reject what the decoder would also let through
// (a group size that does not divide the columns) and what a hand-built args object could carry.
const args = (over: Partial<Record<keyof GptqArgs, unknown>> = {}): GptqArgs => ({ ...base.right, ...over }) as GptqArgs;
const eye = (n: number): Tensor<"f32"> => {
  const d = new Float32Array(n * n);
  for (let i = 0; i < n; i++) d[i * n + i] = 1;
  return new Tensor("f32", [n, n], d);
};
const W = new Tensor("f32", [2, 4], Float32Array.from([0.1, -0.2, 0.3, 0.05, 0.7, 0.1, -0.4, 0.2]));
const qparams = { scale: new Tensor("f32", [2, 1], Float32Array.from([0.04, 0.1])), zeroPoint: null };

const tagOf = <A>(r: E.Either<{ _tag: string }, A>): string => (E.isLeft(r) ? r.left._tag : "Right");

describe("quantizeWeight errors are values naming the module", () => {
  it("NaN / Inf in the Hessian", () => {
    const h = eye(4);
    h.data[5] = Number.POSITIVE_INFINITY;
    const r = quantizeWeight(W, h, args(), { qparams, module: "model.layers.1.mlp.up_proj" });
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "NonFiniteHessian", module: "model.layers.1.mlp.up_proj", row: 1, col: 1 });
    if (E.isLeft(r)) expect(formatGptqError(r.left)).toContain("model.layers.1.mlp.up_proj");
  });
  it("NaN in the weight", () => {
    const w = new Tensor("f32", [2, 4], Float32Array.from(W.data));
    w.data[6] = Number.NaN;
    expect(tagOf(quantizeWeight(w, eye(4), args(), { qparams }))).toBe("NonFiniteWeight");
  });
  it("group size not dividing the columns", () => {
    const r = quantizeWeight(W, eye(4), args({ strategy: "group", group_size: 3 }), { qparams, module: "m" });
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "GroupSizeMismatch", columns: 4, groupSize: 3, field: "weights.group_size" });
  });
  it("Hessian / scale shapes", () => {
    expect(tagOf(quantizeWeight(W, eye(3), args(), { qparams }))).toBe("ShapeMismatch");
    const bad = { scale: new Tensor("f32", [1], Float32Array.from([0.1])), zeroPoint: null };
    const r = quantizeWeight(W, eye(4), args(), { qparams: bad });
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "ShapeMismatch", field: "weight_scale", expected: [2, 1], got: [1] });
    expect(tagOf(quantizeWeight(W, eye(4), args({ symmetric: false }), { qparams }))).toBe("ShapeMismatch");
  });
  it("unsupported strategies, types and actorders", () => {
    expect(tagOf(quantizeWeight(W, eye(4), args({ strategy: "token" }), { qparams }))).toBe("UnsupportedArgs");
    expect(tagOf(quantizeWeight(W, eye(4), args({ type: "float", num_bits: 6 }), { qparams }))).toBe("UnsupportedArgs");
    expect(tagOf(quantizeWeight(W, eye(4), args({ actorder: "group" }), { qparams }))).toBe("UnsupportedArgs");
    expect(tagOf(quantizeWeight(W, eye(4), args({ actorder: "sideways" }), { qparams }))).toBe("UnsupportedArgs");
  });
  it("bad options and missing qparams", () => {
    expect(tagOf(quantizeWeight(W, eye(4), args(), { qparams, blockSize: 0 }))).toBe("InvalidOption");
    expect(tagOf(quantizeWeight(W, eye(4), args(), { qparams, dampeningFrac: Number.NaN }))).toBe("InvalidOption");
    expect(tagOf(quantizeWeight(W, eye(4), args(), {}))).toBe("InvalidOption");
    const failing = quantizeWeight(W, eye(4), args(), { observe: () => E.left("observer exploded") });
    expect(E.isLeft(failing) && failing.left).toMatchObject({ _tag: "QParamsFailed", detail: "observer exploded" });
  });
  it("a Hessian that stays indefinite after damping falls back to RTN with a warning, not an error", () => {
    const h = eye(4);
    for (let i = 0; i < 4; i++) h.data[i * 4 + i] = -1;
    const r = quantizeWeight(W, h, args(), { qparams, module: "model.layers.2.self_attn.o_proj" });
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    expect(r.right.usedRtnFallback).toBe(true);
    expect(r.right.warnings[0]).toContain("model.layers.2.self_attn.o_proj");
    // RTN codes: round_half_even(clamp(w / s)).
    expect(Array.from(r.right.quantized.data as Int8Array)).toEqual([2, -5, 7, 1, 7, 1, -4, 2]);
  });
});
