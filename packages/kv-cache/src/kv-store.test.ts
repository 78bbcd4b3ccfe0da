import { decodeQuantizationArgs, computeDynamicQParams, fakeQuantize } from "@llmq/schemes";
import { Tensor, f16FromNumber, f16ToNumber, f32, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { headsMajor, transposeHeads } from "./heads-major.js";
import { type KvCacheFormat, createKvCache, kvBytesPerToken } from "./kv-store.js";

// The store's read-back is compressed-tensors' fake quantization of what was appended (static: with the calibrated
// scales, exactly as QuantizedKVCache's forward_quantize; dynamic: per token and KV head), whatever the append sizes.

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

const [KV, D] = [2, 8];
const rand = (n: number, seed: number): Float32Array => {
  let s = seed;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2 ** 31;
    return ((s / 2 ** 31) * 2 - 1) * 3;
  });
};
const args = (o: object) => right(decodeQuantizationArgs({ num_bits: 8, dynamic: false, ...o }));

/** Appends `steps` (token counts) of `x`/`y` [T, KV·D] and returns the final read-back. */
const run = (format: KvCacheFormat, x: Float32Array, y: Float32Array, steps: ReadonlyArray<number>) => {
  const [cache] = createKvCache([format], { layers: 1, kvHeads: KV, headDim: D, capacity: 64 });
  let at = 0;
  let last: { k: Float32Array; v: Float32Array; tokens: number } | null = null;
  for (const n of steps) {
    last = right(cache!.append(x.subarray(at * KV * D, (at + n) * KV * D), y.subarray(at * KV * D, (at + n) * KV * D), n));
    at += n;
  }
  return { ...last!, bytes: cache!.bytes() };
};

/** compressed-tensors' fake quantization of keys [T, KV·D], seen heads-major as [KV, T, D] for per-head scales. */
const ctFake = (x: Float32Array, tokens: number, a: ReturnType<typeof args>, scale: Tensor, zp: Tensor | null): Float32Array => {
  const view = a.strategy === "attn_head" ? headsMajor(new Tensor("f32", [tokens, KV * D], x), KV, D) : new Tensor("f32", [tokens, KV * D], x);
  const q = toFloat32(right(fakeQuantize(view, scale, zp, a))).data;
  return a.strategy === "attn_head" ? transposeHeads(q, tokens, KV, D, false, new Float32Array(q.length)) : q;
};

describe("createKvCache", () => {
  const T = 13;
  const x = rand(T * KV * D, 1);
  const y = rand(T * KV * D, 2);

  it("f32 returns what was appended, in one or many appends; f16 rounds each value to half", () => {
    const a = run({ kind: "f32" }, x, y, [T]);
    expect(Array.from(a.k)).toEqual(Array.from(x));
    expect(Array.from(run({ kind: "f32" }, x, y, [5, 1, 1, 6]).v)).toEqual(Array.from(y));
    const h = run({ kind: "f16" }, x, y, [7, 6]);
    expect(Array.from(h.k)).toEqual(Array.from(x, (v) => f16ToNumber(f16FromNumber(v))));
    expect([a.bytes, h.bytes]).toEqual([2 * T * KV * D * 4, 2 * T * KV * D * 2]);
  });

  for (const [label, a, scale, zp] of [
    ["fp8 tensor", args({ type: "float", strategy: "tensor", symmetric: true }), f32([0.011]), null],
    ["fp8 attn_head", args({ type: "float", strategy: "attn_head", symmetric: true }), f32([0.009, 0.013], [KV, 1, 1]), null],
    ["int8 tensor", args({ type: "int", strategy: "tensor", symmetric: true }), f32([0.025]), null],
    ["int8 asymmetric attn_head", args({ type: "int", strategy: "attn_head", symmetric: false }), f32([0.021, 0.024], [KV, 1, 1]), new Tensor("i8", [KV, 1, 1], Int8Array.from([3, -7]))],
  ] as const) {
    it(`static ${label}: compressed-tensors' fake quantization with the calibrated scales, bit for bit`, () => {
      const qp = { scale, zeroPoint: zp };
      const got = run({ kind: "static", args: a, k: qp, v: qp }, x, y, [4, 1, 8]);
      expect(Array.from(got.k)).toEqual(Array.from(ctFake(x, T, a, scale, zp)));
      expect(Array.from(got.v)).toEqual(Array.from(ctFake(y, T, a, scale, zp)));
      expect(got.bytes).toBe(2 * T * KV * D);
    });
  }

  for (const type of ["fp8", "int8"] as const)
    it(`dynamic ${type}: one symmetric scale per token and KV head, as compressed-tensors' dynamic per-token qparams`, () => {
      const got = run({ kind: "dynamic", type }, x, y, [1, 12]);
      const a = right(decodeQuantizationArgs({ num_bits: 8, type: type === "fp8" ? "float" : "int", symmetric: true, strategy: "token", dynamic: true }));
      const view = new Tensor("f32", [1, T * KV, D], x);
      const qp = right(computeDynamicQParams(view, a));
      expect(Array.from(got.k)).toEqual(Array.from(toFloat32(right(fakeQuantize(view, qp.scale, null, a))).data));
      expect(got.bytes).toBe(2 * T * (KV * D + 4 * KV));
      // the error is bounded by half a step of each row's scale
      const s = toFloat32(qp.scale).data;
      for (let i = 0; i < x.length; i++) expect(Math.abs(got.k[i]! - x[i]!)).toBeLessThanOrEqual(s[Math.floor(i / D)]! * (type === "fp8" ? 16 : 0.5001) + 1e-6);
    });

  it("refuses to grow past its capacity, and says so; bytes per token match the formats", () => {
    const [c] = createKvCache([{ kind: "f32" }], { layers: 1, kvHeads: KV, headDim: D, capacity: 4 });
    right(c!.append(x.subarray(0, 3 * KV * D), y.subarray(0, 3 * KV * D), 3));
    const r = c!.append(x.subarray(0, 2 * KV * D), y.subarray(0, 2 * KV * D), 2);
    expect(E.isLeft(r) && r.left).toMatch(/holds 4 tokens; 5 were requested/);
    expect(c!.length()).toBe(3);
    const shape = { layers: 16, kvHeads: 8, headDim: 64 };
    expect(["f32", "f16"].map((k) => kvBytesPerToken({ kind: k as "f32" }, shape))).toEqual([65536, 32768]);
    expect(kvBytesPerToken({ kind: "dynamic", type: "fp8" }, shape)).toBe(2 * 16 * (512 + 32));
  });
});

describe("createKvCache ms-c8 (msModelSlim C8)", () => {
  it("stores int8 codes per KV channel and reads back (q − offset)·scale, a byte per channel and position", () => {
    const [kvHeads, headDim, tokens] = [2, 3, 4];
    const n = kvHeads * headDim;
    const x = Float32Array.from({ length: tokens * n }, (_, i) => Math.sin(i * 1.7) * (1 + (i % n)));
    const k = { scale: Float32Array.from({ length: n }, (_, j) => 0.01 * (j + 1)), offset: Float32Array.from({ length: n }, (_, j) => j - 3) };
    const v = { scale: Float32Array.from({ length: n }, () => 0.05), offset: new Float32Array(n) };
    const format: KvCacheFormat = { kind: "ms-c8", k, v };
    const [cache] = createKvCache([format], { layers: 1, kvHeads, headDim, capacity: tokens });
    const first = cache!.append(x.subarray(0, n), x.subarray(0, n), 1);
    expect(E.isRight(first)).toBe(true);
    const r = cache!.append(x.subarray(n), x.subarray(n), tokens - 1);
    if (E.isLeft(r)) throw new Error(r.left);
    for (let i = 0; i < x.length; i++) {
      const j = i % n;
      const q = Math.min(127, Math.max(-128, Math.round(x[i]! / k.scale[j]! + k.offset[j]!)));
      expect(r.right.k[i]).toBeCloseTo((q - k.offset[j]!) * k.scale[j]!, 6);
      expect(r.right.v[i]).toBeCloseTo(Math.min(127, Math.max(-128, Math.round(x[i]! / 0.05))) * 0.05, 6);
    }
    expect(cache!.bytes()).toBe(2 * tokens * n);
    expect(kvBytesPerToken(format, { layers: 3, kvHeads, headDim })).toBe(2 * 3 * n);
  });
  it("refuses scales whose channel count is not KV·D", () => {
    const q = { scale: new Float32Array(5).fill(1), offset: new Float32Array(5) };
    const [cache] = createKvCache([{ kind: "ms-c8", k: q, v: q }], { layers: 1, kvHeads: 2, headDim: 3, capacity: 1 });
    expect(E.isLeft(cache!.append(new Float32Array(6), new Float32Array(6), 1))).toBe(true);
  });
});
