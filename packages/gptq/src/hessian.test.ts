import * as E from "fp-ts/lib/Either.js";
import { Tensor } from "@llmq/tensor";
import { describe, expect, it } from "vitest";
import { loadFixtures } from "./fixtures.js";
import { accumulateHessian, accumulateHessianInPlace, emptyHessian, normalizeHessian } from "./hessian.js";

const fx = loadFixtures();

const maxRelDiff = (a: Float32Array, b: Float32Array): number => {
  let scale = 0;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i]! - b[i]!));
  return d / scale;
};

describe("Hessian accumulation (LC 0.14 accumulate_hessian)", () => {
  it("matches LC's H_sum and sample count over batches of rank 3 and 2", () => {
    let st = emptyHessian(48);
    for (const name of fx.accumulation.inputs) {
      const r = accumulateHessian(st, fx.f32(name), "acc");
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      st = r.right;
    }
    // [2, 8, 48] → 2 samples, [5, 48] → 1, [3, 4, 48] → 3: a sample is a sequence, not a token.
    expect(st.nSamples).toBe(fx.accumulation.num_samples);
    expect(st.nSamples).toBe(6);
    const rel = maxRelDiff(st.h.data, fx.f32("acc.h_sum").data);
    console.log(`H_sum max |Δ| / max|H| = ${rel.toExponential(2)}`);
    expect(rel).toBeLessThan(1e-6);
    const h = normalizeHessian(st, "acc");
    if (E.isLeft(h)) throw new Error(JSON.stringify(h.left));
    expect(maxRelDiff(h.right.data, fx.f32("acc.h").data)).toBeLessThan(1e-6);
  });

  it("the pure variant leaves its input untouched; the in-place one mutates", () => {
    const st = emptyHessian(4);
    const x = new Tensor("f32", [3, 4], Float32Array.from([1, 2, 3, 4, 0, 1, 0, 1, -1, 0, 2, 0]));
    const r = accumulateHessian(st, x);
    expect(E.isRight(r)).toBe(true);
    expect(st.h.data.every((v) => v === 0)).toBe(true);
    const n = accumulateHessianInPlace(st.h, 0, x);
    expect(n).toEqual(E.right(1));
    expect(Array.from(st.h.data)).toEqual(Array.from((r as E.Right<{ h: Tensor<"f32"> }>).right.h.data));
    // H = 2·XᵀX, e.g. H[0][0] = 2·(1 + 0 + 1) = 4, H[0][2] = 2·(3 + 0 − 2) = 2.
    expect(st.h.data[0]).toBeCloseTo(4, 5);
    expect(st.h.data[2]).toBeCloseTo(2, 5);
  });

  it("rejects activations whose last dim is not in_features", () => {
    const r = accumulateHessian(emptyHessian(4), new Tensor("f32", [2, 3], new Float32Array(6)), "m.q_proj");
    expect(E.isLeft(r) && r.left._tag).toBe("ShapeMismatch");
  });

  it("empty calibration and NaN/Inf are typed errors naming the module", () => {
    expect(normalizeHessian(emptyHessian(3), "model.layers.0.mlp.down_proj")).toEqual(
      E.left({ _tag: "EmptyCalibration", module: "model.layers.0.mlp.down_proj" }),
    );
    const st = emptyHessian(2);
    const x = new Tensor("f32", [1, 2], Float32Array.from([Number.NaN, 1]));
    const r = accumulateHessian(st, x);
    if (E.isLeft(r)) throw new Error("accumulation itself does not inspect values");
    const h = normalizeHessian(r.right, "m.k_proj");
    expect(E.isLeft(h) && h.left._tag).toBe("NonFiniteHessian");
    expect(E.isLeft(h) && h.left.module).toBe("m.k_proj");
  });
});
