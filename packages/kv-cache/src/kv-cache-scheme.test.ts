import { decodeQuantizationArgs } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { formatKvCacheError } from "./errors.js";
import { ASYMMETRIC_KV_WARNING, checkKvCacheScheme } from "./kv-cache-scheme.js";
import { emptyChannelRange, foldChannelRange, msModelSlimKvFakeQuantize, msModelSlimKvQParams } from "./ms-model-slim-kv.js";

const args = (o: object) => {
  const a = decodeQuantizationArgs({ num_bits: 8, type: "float", strategy: "tensor", dynamic: false, symmetric: true, ...o });
  if (E.isLeft(a)) throw new Error(JSON.stringify(a.left));
  return a.right;
};
const refusal = (o: object): string => {
  const r = checkKvCacheScheme(args(o));
  return E.isLeft(r) ? formatKvCacheError(r.left) : "accepted";
};

describe("checkKvCacheScheme", () => {
  it("accepts fp8 / int per tensor and per head; LC's default observer for k/v is the moving-average minmax", () => {
    const r = checkKvCacheScheme(args({}));
    expect(E.isRight(r) && [r.right.observer, r.right.warnings]).toEqual(["minmax", []]);
    const s = checkKvCacheScheme(args({ strategy: "attn_head", observer: "static_minmax" }));
    expect(E.isRight(s) && s.right.observer).toBe("static_minmax");
  });

  it("warns as compressed-tensors does for asymmetric caches, and that vLLM loads only fp8 ones", () => {
    const r = checkKvCacheScheme(args({ type: "int", symmetric: false }));
    expect(E.isRight(r) && r.right.warnings[0]).toBe(ASYMMETRIC_KV_WARNING);
    expect(E.isRight(r) && r.right.warnings[1]).toMatch(/vLLM loads only fp8 kv caches/);
  });

  it("refuses what cannot be calibrated, naming the field", () => {
    expect(refusal({ dynamic: true, strategy: "token" })).toMatch(/^kv_cache_scheme\.dynamic: true is not supported/);
    expect(refusal({ strategy: "channel" })).toMatch(/^kv_cache_scheme\.strategy: "channel" cannot be applied to the kv cache/);
    expect(refusal({ num_bits: 4, type: "float" })).toMatch(/^kv_cache_scheme\.num_bits: float kv caches are fp8/);
    expect(refusal({ type: "int", strategy: "group", group_size: 16 })).toMatch(/^kv_cache_scheme\.strategy/);
    expect(refusal({ scale_dtype: "torch.float16" })).toMatch(/^kv_cache_scheme\.scale_dtype: torch\.float16 is not supported/);
    expect(refusal({ type: "int", symmetric: false, zp_dtype: "torch.int8" })).toMatch(/^kv_cache_scheme\.zp_dtype/);
  });
});

describe("msModelSlim's int8 KV (C8) qparams", () => {
  // The formula of formats.md §1.3 (MSL int_quantization.py), worked by hand on two channels:
  // channel 0 in [−1, 2], channel 1 in [0.5, 4] (widened to [0, 4]).
  const r0 = emptyChannelRange(2);
  const r = foldChannelRange(r0, Float32Array.from([-1, 0.5, 2, 4, 0, 1]), 3);

  it("symmetric: s = max(−min, max) / 127, offset 0", () => {
    const q = E.isRight(r) ? msModelSlimKvQParams(r.right, true) : r;
    expect(E.isRight(q) && Array.from(q.right.scale)).toEqual([Math.fround(2 / 127), Math.fround(4 / 127)]);
    expect(E.isRight(q) && Array.from(q.right.offset)).toEqual([0, 0]);
  });

  it("asymmetric: s = max/255 − min/255, offset = round(−min/s) − 128; fake quantization round-trips the range ends", () => {
    const q = E.isRight(r) ? msModelSlimKvQParams(r.right, false) : r;
    if (E.isLeft(q)) throw new Error("qparams");
    expect(Array.from(q.right.scale)).toEqual([Math.fround(Math.fround(2 / 255) - Math.fround(-1 / 255)), Math.fround(4 / 255)]);
    expect(Array.from(q.right.offset)).toEqual([85 - 128, -128]);
    const x = Float32Array.from([-1, 0, 2, 4]);
    const y = msModelSlimKvFakeQuantize(x, q.right);
    for (let i = 0; i < 4; i++) expect(Math.abs(y[i]! - x[i]!)).toBeLessThanOrEqual(q.right.scale[i % 2]! / 2 + 1e-7);
  });

  it("refuses non-finite activations and empty calibration", () => {
    expect(E.isLeft(foldChannelRange(r0, Float32Array.from([Number.NaN, 0]), 1))).toBe(true);
    expect(E.isLeft(msModelSlimKvQParams(r0, true))).toBe(true);
  });
});
