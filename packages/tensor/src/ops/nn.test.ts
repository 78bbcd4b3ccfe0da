import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Tensor, f32, f64 } from "../tensor.js";
import { embedding, logSoftmax, rmsnorm, rope, ropeInvFreq, softmax } from "./nn.js";
import { permute } from "./shape.js";
import { err, expectClose, expectUlps, loadFixture, ok, tensorOf } from "./test-util.js";

const fx = loadFixture("ops.json");
const vals = (t: Tensor) => Array.from(t.data as Float32Array);

describe("softmax / logSoftmax vs torch", () => {
  const S = fx.softmax;
  const x = tensorOf(S.x);
  it("softmax within 2 ulps, logSoftmax within 2.4e-7, along the last axis and axis 0 (a logit of 80 does not overflow)", () => {
    expectUlps(vals(ok(softmax(x, -1))), S.softmax_last.data, 2);
    expectUlps(vals(ok(softmax(x, 0))), S.softmax_0.data, 2);
    // torch rounds Σexp to f32 before the log: near the max that is ~1.2e-7 absolute (hundreds of ulps of a tiny result)
    expectClose(vals(ok(logSoftmax(x, -1))), S.log_softmax_last.data, 2.4e-7, 2.4e-7);
    expectClose(vals(ok(logSoftmax(x, 0))), S.log_softmax_0.data, 2.4e-7, 2.4e-7);
  });
  it("rows sum to 1 and exp(logSoftmax) = softmax (property)", () => {
    fc.assert(
      fc.property(fc.array(fc.double({ min: -1e3, max: 1e3, noNaN: true }), { minLength: 1, maxLength: 16 }), (xs) => {
        const t = f64(xs);
        const s = Array.from(ok(softmax(t, 0)).data);
        expect(Math.abs(s.reduce((a, b) => a + b, 0) - 1)).toBeLessThan(1e-12);
        expectClose(Array.from(ok(logSoftmax(t, 0)).data, Math.exp), s, 1e-12, 1e-300);
      }),
    );
  });
  it("errors", () => {
    err(softmax(x, 2), "AxisOutOfRange", "softmax", "axis 2", "rank 2");
    err(logSoftmax(new Tensor("i32", [1], new Int32Array(1)), 0), "UnsupportedDType", "logSoftmax", "i32");
  });
});

describe("rmsnorm vs HF LlamaRMSNorm", () => {
  const N = fx.rmsnorm;
  it("within 2 ulps (variance summed in f64 vs torch's f32 mean, then 3 roundings; torch.rsqrt is ≤ 1 ulp off)", () => {
    expectUlps(vals(ok(rmsnorm(tensorOf(N.x), tensorOf(N.weight), { eps: N.eps }))), N.y.data, 2);
  });
  it("f64 input is normalised in f32 like HF (cast down, back up) and then scaled in f64", () => {
    const y = ok(rmsnorm(f64([3, 4]), f64([0.1, 1]), { eps: 0 }));
    expect(y.dtype).toBe("f64");
    expect(Array.from(y.data)).toEqual([0.1 * Math.fround(3 * Math.fround(1 / Math.sqrt(12.5))), Math.fround(4 * Math.fround(1 / Math.sqrt(12.5)))]);
  });
  it("hand-checked: x = [3, 4], w = 1, eps = 0 → x / sqrt(12.5)", () => {
    expect(vals(ok(rmsnorm(f32([3, 4]), f32([1, 1]), { eps: 0 })))).toEqual([Math.fround(3 * Math.fround(1 / Math.sqrt(12.5))), Math.fround(4 * Math.fround(1 / Math.sqrt(12.5)))]);
  });
  it("errors", () => {
    err(rmsnorm(f32([1, 2, 3, 4], [2, 2]), f32([1, 1, 1]), { eps: 1e-6 }), "ShapeMismatch", "rmsnorm", "[2, 2]", "[3]");
    err(rmsnorm(f32([1, 2]), f64([1, 1]), { eps: 1e-6 }), "DTypeMismatch", "rmsnorm", "weight", "f64");
    err(rmsnorm(f32([1, 2]), f32([1, 1]), { eps: -1 }), "InvalidArgument", "rmsnorm", "eps");
  });
});

describe("rope vs transformers (LlamaRotaryEmbedding + apply_rotary_pos_emb; GPT-J interleaved)", () => {
  for (const c of fx.rope) {
    const scaling = c.scaling
      ? {
          factor: c.scaling.factor,
          lowFreqFactor: c.scaling.low_freq_factor,
          highFreqFactor: c.scaling.high_freq_factor,
          originalMaxPositionEmbeddings: c.scaling.original_max_position_embeddings,
        }
      : undefined;
    const label = `head_dim ${c.head_dim}, theta ${c.theta}${scaling ? `, llama3 factor ${scaling.factor}` : ""}`;
    it(`inv_freq is bit-identical (${label})`, () => {
      expect(Array.from(ok(ropeInvFreq(c.head_dim, c.theta, scaling)))).toEqual(c.inv_freq);
    });
    // cos/sin come from libm (f64, rounded) vs torch's SLEEF f32 (≤ 1 ulp), and x0·c − x1·s can cancel: the bound
    // is 2 f32 ulps of the unit-scale inputs, absolute.
    it(`both layouts within 2.4e-7 (${label})`, () => {
      const x = tensorOf(c.x);
      const opts = { theta: c.theta, ...(scaling ? { scaling } : {}) };
      expectClose(vals(ok(rope(x, c.positions, { ...opts, layout: "rotate-half" }))), c.rotate_half.data, 2.4e-7, 2.4e-7);
      expectClose(vals(ok(rope(x, c.positions, { ...opts, layout: "interleaved" }))), c.interleaved.data, 2.4e-7, 2.4e-7);
    });
  }
  it("seqAxis: llama2.c layout [seq, heads, headDim] equals the HF layout permuted", () => {
    const c = fx.rope[0];
    const x = tensorOf(c.x); // [1, heads, seq, hd]
    const seqFirst = ok(permute(x, [2, 1, 0, 3])); // [seq, heads, 1, hd]
    const a = ok(rope(seqFirst, c.positions, { theta: c.theta, layout: "interleaved", seqAxis: 0 }));
    const b = ok(rope(x, c.positions, { theta: c.theta, layout: "interleaved" }));
    expect(vals(ok(permute(a, [2, 1, 0, 3])))).toEqual(vals(b));
  });
  it("f64 inputs use the same f32 cos/sin and combine in f64", () => {
    const c = fx.rope[1];
    const x64 = f64(c.x.data, c.x.shape);
    const opts = { theta: c.theta, layout: "rotate-half" as const, scaling: { factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } };
    const y = ok(rope(x64, c.positions, opts));
    expect(y.dtype).toBe("f64");
    expectClose(Array.from(y.data), c.rotate_half.data, 2.4e-7, 2.4e-7);
  });
  it("position 0 is the identity", () => {
    const x = f32([1, 2, 3, 4], [1, 4]);
    expect(vals(ok(rope(x, [0], { theta: 10000, layout: "rotate-half" })))).toEqual([1, 2, 3, 4]);
  });
  it("errors", () => {
    const x = f32(new Array(12).fill(1), [3, 4]);
    err(rope(x, [0, 1], { theta: 1e4, layout: "rotate-half" }), "ShapeMismatch", "rope", "[3, 4]", "2 positions");
    err(rope(f32([1, 2, 3], [1, 3]), [0], { theta: 1e4, layout: "rotate-half" }), "InvalidArgument", "rope", "headDim");
    err(rope(x, [0, 1, 2], { theta: 1e4, layout: "rotate-half", seqAxis: 5 }), "AxisOutOfRange", "rope", "axis 5");
    err(rope(x, [0, 1.5, 2], { theta: 1e4, layout: "rotate-half" }), "InvalidArgument", "rope", "positions[1]");
    err(rope(f32([1, 2]), [0], { theta: 1e4, layout: "rotate-half" }), "InvalidArgument", "rope", "rank ≥ 2");
    err(ropeInvFreq(8, 1e4, { factor: 8, lowFreqFactor: 4, highFreqFactor: 1, originalMaxPositionEmbeddings: 8192 }), "InvalidArgument", "ropeInvFreq", "scaling");
  });
});

describe("embedding", () => {
  const table = f32([0, 1, 10, 11, 20, 21], [3, 2]);
  it("gathers rows by i32 / i64 / number ids", () => {
    const y = ok(embedding(table, new Tensor("i32", [2, 2], Int32Array.of(2, 0, 1, 1))));
    expect(y.shape).toEqual([2, 2, 2]);
    expect(vals(y)).toEqual([20, 21, 0, 1, 10, 11, 10, 11]);
    expect(vals(ok(embedding(table, new Tensor("i64", [1], BigInt64Array.of(1n)))))).toEqual([10, 11]);
    expect(ok(embedding(table, [2])).shape).toEqual([1, 2]);
  });
  it("errors on out-of-range ids and bad tables", () => {
    err(embedding(table, [0, 3]), "InvalidArgument", "embedding", "ids[1]", "3", "[3, 2]");
    err(embedding(table, [-1]), "InvalidArgument", "embedding", "ids[0]");
    err(embedding(f32([1, 2]), [0]), "InvalidArgument", "embedding", "[2]");
    err(embedding(table, f32([0])), "UnsupportedDType", "embedding", "f32");
  });
});
