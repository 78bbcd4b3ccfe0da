import type { LayerState, ModelInfo } from "@llmq/observers";
import { type Tensor, f32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { from, lastValueFrom } from "rxjs";
import { describe, expect, it } from "vitest";
import { MsKvCacheModifier } from "./ms-kv-cache-modifier.js";

// The k / v projections' outputs on the tapped inputs, per output channel, into msModelSlim's C8 qparams.

const mod = (name: string, out: number) => ({ name, layer: 0, className: "Linear", inFeatures: 3, outFeatures: out });
const wk = f32([1, 0, 0, 0, 1, -1], [2, 3]);
const wv = f32([0.5, 0.5, 0.5], [1, 3]);
const layer: LayerState = {
  index: 0,
  prefix: "model.layers.0.",
  tensors: new Map<string, Tensor>([
    ["self_attn.k_proj.weight", wk],
    ["self_attn.v_proj.weight", wv],
  ]),
  quantized: new Map(),
  modules: new Map([
    ["self_attn.k_proj", mod("model.layers.0.self_attn.k_proj", 2)],
    ["self_attn.v_proj", mod("model.layers.0.self_attn.v_proj", 1)],
  ]),
};
const x1 = f32([1, 2, 3, -4, 0.5, 2], [2, 3]);
const x2 = f32([0, -1, 1], [1, 3]);

const run = async (sym: boolean) => {
  const m = MsKvCacheModifier(sym);
  const s = m.initialize({ numLayers: 1 } as ModelInfo);
  if (E.isLeft(s)) throw new Error("init");
  const cal = m.calibration!(s.right, layer)!;
  expect([...cal.linearInputs].sort()).toEqual(["self_attn.k_proj", "self_attn.v_proj"]);
  const taps = [x1, x2].map((x) => ({ _tag: "LinearInput" as const, modules: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], x }));
  const folded = await lastValueFrom(from(taps).pipe(cal.fold));
  const r = await m.onSequentialEpochEnd(s.right, layer, folded);
  if (E.isLeft(r)) throw new Error(r.left.detail);
  return r.right.layer.tensors;
};

describe("MsKvCacheModifier", () => {
  it("symmetric: scale = max |x·Wᵀ| per channel / 127 (range widened to 0), offset 0", async () => {
    const t = await run(true);
    // k outputs: token rows [1, -1], [-4, -1.5], [0, -2] → channel 0 in [−4, 1], channel 1 in [−2, 0]; v: [3, −0.75, 0]
    expect(Array.from(t.get("self_attn.k_proj.kv_cache_scale")!.data as Float32Array)).toEqual([Math.fround(4 / 127), Math.fround(2 / 127)]);
    expect(Array.from(t.get("self_attn.v_proj.kv_cache_scale")!.data as Float32Array)).toEqual([Math.fround(3 / 127)]);
    expect(Array.from(t.get("self_attn.k_proj.kv_cache_offset")!.data as Float32Array)).toEqual([0, 0]);
  });
  it("asymmetric: scale = max/255 − min/255, offset = round(−min/scale) − 128", async () => {
    const t = await run(false);
    const s0 = Math.fround(Math.fround(1 / 255) - Math.fround(-4 / 255));
    expect(t.get("self_attn.k_proj.kv_cache_scale")!.data[0]).toBe(s0);
    expect(t.get("self_attn.k_proj.kv_cache_offset")!.data[0]).toBe(Math.round(Math.fround(4 / s0)) - 128);
  });
});
