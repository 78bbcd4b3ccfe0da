import type { LayerState } from "@llmq/observers";
import { decodeModifier } from "@llmq/schemes";
import { Tensor, castFromNumbers, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { SmoothQuantModifier, foldChannelRange, smoothQuantScales } from "./smooth-quant.js";
import { llamaInfo } from "./test-model.js";

const f32 = (shape: number[], v: number[]) => new Tensor("f32", shape, Float32Array.from(v));

describe("smoothQuantScales (SmoothQuantModifier._calculate_smoothing_scales and the 1e-5 floor)", () => {
  const range = { min: Float32Array.from([-1, -4, 0, -2]), max: Float32Array.from([3, 4, 0, 2]) };
  const w = f32([2, 4], [0.5, -1, 0.25, 0, -0.25, 2, 0.125, 0]);

  it("s = act^α / (2·max|W|)^(1−α), with act = max − min (not absmax)", () => {
    const s = smoothQuantScales(range, [w], 0.5, "smoothquant", "f32");
    expect(s[0]).toBe(Math.fround(Math.fround(Math.sqrt(4)) / Math.fround(Math.sqrt(1))));
    expect(s[1]).toBe(Math.fround(Math.fround(Math.sqrt(8)) / Math.fround(Math.sqrt(4))));
  });

  it("a column of zero weights keeps act; a zero range floors at 1e-5", () => {
    const s = smoothQuantScales(range, [w], 0.5, "smoothquant", "f32");
    expect(s[3]).toBe(4); // weights 0 → act = 2 − (−2)
    expect(s[2]).toBe(Math.fround(1e-5)); // act 0 → 0 / √(2·0.25) = 0 → floored
  });

  it("log_equalization: act / log2(2 + act), weights unused", () => {
    const s = smoothQuantScales(range, [w], 0.5, "log_equalization", "f32");
    expect(s[0]).toBe(Math.fround(4 / Math.fround(Math.log2(6))));
  });

  it("in bf16 the exponent is cast to bf16 as torch does (0.8 → 0.80078125)", () => {
    const r = { min: Float32Array.from([0]), max: Float32Array.from([3.703125]) };
    const one = castFromNumbers("bf16", [0.5], [1, 1]);
    const s = smoothQuantScales(r, [one], 0.8, "smoothquant", "bf16");
    // torch: bf16(3.703125 ** 0.80078125) / bf16(1 ** 0.19921875) = 2.859375 (0.8 as f32 would give 2.84375)
    expect(s[0]).toBe(2.859375);
  });
});

describe("foldChannelRange", () => {
  it("keeps running min/max over batches and remembers non-finite values", () => {
    const a = foldChannelRange(null, f32([2, 2], [1, -1, 3, 0]));
    const b = foldChannelRange(a, f32([1, 2], [-2, 5]));
    expect([...b.min, ...b.max]).toEqual([-2, -1, 3, 5]);
    expect(b.nonFinite).toBe(false);
    expect(foldChannelRange(b, f32([1, 2], [Number.NaN, 0])).nonFinite).toBe(true);
  });
});

describe("SmoothQuantModifier", () => {
  const cfg = (args: Record<string, unknown> = {}) => {
    const d = decodeModifier("SmoothQuantModifier", args, "s");
    if (E.isLeft(d) || d.right.type !== "SmoothQuantModifier") throw new Error("decode");
    return d.right;
  };
  const model = llamaInfo(1, { hidden: 4 });
  const layer = (): LayerState => {
    const t = new Map<string, Tensor>([["input_layernorm.weight", f32([4], [1, 1, 1, 1])], ["post_attention_layernorm.weight", f32([4], [1, 1, 1, 1])]]);
    for (const m of model.linears) t.set(`${m.name.slice("model.layers.0.".length)}.weight`, f32([m.outFeatures, m.inFeatures], Array.from({ length: m.outFeatures * m.inFeatures }, (_, i) => ((i % 7) - 3) / 4)));
    return { index: 0, prefix: "model.layers.0.", tensors: t, quantized: new Map(), modules: new Map() };
  };

  it("refuses start/end other than −1 as llm-compressor does (one-shot only)", () => {
    const r = SmoothQuantModifier(cfg({ end: 2 })).initialize(model);
    expect(E.isLeft(r) && r.left.detail).toMatch(/can only be applied during one-shot. Expected end to be None or -1, got 2/);
  });

  it("refuses a mapping whose smooth layer is not the norm feeding its balance layers", () => {
    const r = SmoothQuantModifier(cfg({ mappings: [[["re:.*o_proj$"], "re:.*v_proj$"]] })).initialize(model);
    expect(E.isLeft(r) && r.left.detail).toMatch(/v_proj → \[self_attn\.o_proj\] is not one of them/);
  });

  it("skips a mapping only when its smooth layer and all balance layers are ignored", () => {
    const all = SmoothQuantModifier(cfg({ ignore: ["re:.*input_layernorm$", "re:.*(q|k|v)_proj$"] })).initialize(model);
    expect(E.isRight(all) && all.right.mappings.map((m) => m.smooth)).toEqual(["post_attention_layernorm"]);
    const some = SmoothQuantModifier(cfg({ ignore: ["re:.*q_proj$"] })).initialize(model);
    expect(E.isRight(some) && some.right.mappings.length).toBe(2);
  });

  it("NaN in the statistics is a typed error naming the smooth layer", async () => {
    const m = SmoothQuantModifier(cfg());
    const s = m.initialize(model);
    if (E.isLeft(s)) throw new Error("init");
    const bad = foldChannelRange(null, f32([1, 4], [Number.NaN, 1, 2, 3]));
    const r = await m.onSequentialEpochEnd(s.right, layer(), [bad, null]);
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "ModifierError", modifier: "SmoothQuantModifier", module: "model.layers.0.input_layernorm" });
  });

  it("smooths the norm and its linears, output-preserving: norm/s · (W·s)ᵀ = norm · Wᵀ", async () => {
    const m = SmoothQuantModifier(cfg({ smoothing_strength: 0.5 }));
    const s = m.initialize(model);
    if (E.isLeft(s)) throw new Error("init");
    const l = layer();
    const range = foldChannelRange(null, f32([2, 4], [-1, 2, 0.5, 8, 3, -2, 1, -8]));
    const r = await m.onSequentialEpochEnd(s.right, l, [range, null]);
    if (E.isLeft(r)) throw new Error(r.left.detail);
    const norm = toFloat32(r.right.layer.tensors.get("input_layernorm.weight")!).data;
    const q = toFloat32(r.right.layer.tensors.get("self_attn.q_proj.weight")!).data;
    const q0 = toFloat32(l.tensors.get("self_attn.q_proj.weight")!).data;
    for (let j = 0; j < 4; j++) expect(norm[j]! * q[j]!).toBeCloseTo(q0[j]!, 6);
    expect(r.right.records?.[0]).toMatchObject({ modifier: "SmoothQuantModifier", smooth: "model.layers.0.input_layernorm", ratio: null });
    expect(r.right.layer.tensors.get("post_attention_layernorm.weight")).toBe(l.tensors.get("post_attention_layernorm.weight"));
  });
});
