import type { LayerState, ModelInfo } from "@llmq/observers";
import { decodeModifier, decodeQuantizationArgs, decodeQuantizationScheme } from "@llmq/schemes";
import { Tensor, rand as uniform } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { AWQModifier } from "./awq-modifier.js";
import { awqGrid, awqScales, awqSearch, referenceOutputs } from "./awq-search.js";
import { llamaInfo } from "./test-model.js";

const rand = (n: number, seed: number, scale = 1): Float32Array => Float32Array.from(uniform([n], seed).data, (u) => (u * 2 - 1) * scale);

const linear = (x: Tensor<"f32">, w: Tensor<"f32">): Tensor<"f32"> => {
  const [t, k] = x.shape as [number, number];
  const n = w.shape[0]!;
  const y = new Float32Array(t * n);
  for (let i = 0; i < t; i++) for (let o = 0; o < n; o++) {
    let s = 0;
    for (let j = 0; j < k; j++) s += x.data[i * k + j]! * w.data[o * k + j]!;
    y[i * n + o] = s;
  }
  return new Tensor("f32", [t, n], y);
};

const args4 = E.getOrElseW(() => { throw new Error("args"); })(decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: 8 }));

describe("awqGrid (AWQModifier._get_grid_search_params)", () => {
  it("duo false: k/(n−1); both: half the points each, no-duo first at every ratio", () => {
    expect(awqGrid(false, 3)).toEqual([[0, false], [0.5, false], [1, false]]);
    expect(awqGrid("both", 6)).toEqual([[0, false], [0, true], [0.5, false], [0.5, true], [1, false], [1, true]]);
    expect(awqGrid(true, 20).length).toBe(20);
  });
});

describe("awqScales", () => {
  it("normalises by √(max·min) and replaces non-finite entries by 1", () => {
    const x = Float32Array.from([1, 4, 16]);
    const s = awqScales(x, null, 1, false);
    expect(Array.from(s)).toEqual([0.25, 1, 4].map(Math.fround));
    expect(Array.from(awqScales(x, null, 0, false))).toEqual([1, 1, 1]);
    const inf = awqScales(Float32Array.from([0, 1]), Float64Array.from([0, 1]), 0.5, true);
    expect(inf.every(Number.isFinite)).toBe(true);
  });
});

describe("awqSearch on a linear parent", () => {
  const cols = 16;
  const w = new Tensor("f32", [8, cols], rand(8 * cols, 1));
  // Salient input channels (large activations) are what AWQ protects.
  const inputs = [0, 1, 2].map((b) => {
    const x = rand(32 * cols, 10 + b);
    for (let i = 0; i < 32; i++) for (const j of [3, 11]) x[i * cols + j] = x[i * cols + j]! * 40;
    return new Tensor("f32", [32, cols], x);
  });
  const xMean = new Float32Array(cols);
  for (const x of inputs) for (let i = 0; i < x.data.length; i++) xMean[i % cols] = xMean[i % cols]! + Math.abs(x.data[i]!);
  for (let j = 0; j < cols; j++) xMean[j] = Math.fround(xMean[j]! / 96);
  const search = {
    balance: [{ local: "down_proj", name: "m.down_proj", weight: w, args: args4 }],
    xMean,
    duoScaling: true as const,
    nGrid: 20,
    fusedGroups: [],
    inputs,
    outputDType: "f32" as const,
    parent: (over: ReadonlyMap<string, Tensor<"f32">>) => (x: Tensor<"f32">) => E.right(linear(x, over.get("down_proj")!)),
  };

  it("finds a ratio whose loss is at most the first grid point's (identity scaling), and records every point", async () => {
    const ref = referenceOutputs(search, "m");
    if (E.isLeft(ref) || ref.right === null) throw new Error("ref");
    const r = await awqSearch(search, ref.right, "m");
    if (E.isLeft(r)) throw new Error(r.left.detail);
    expect(r.right.history.length).toBe(20);
    expect(r.right.loss).toBeLessThan(r.right.initialLoss);
    expect(r.right.loss).toBe(Math.min(...r.right.history.map((h) => h.loss)));
    expect(r.right.ratio).toBeGreaterThan(0);
  });

  it("stops between grid points once the signal is aborted", async () => {
    const ref = referenceOutputs(search, "m");
    if (E.isLeft(ref) || ref.right === null) throw new Error("ref");
    const c = new AbortController();
    let points = 0;
    const r = await awqSearch({ ...search, onGridPoint: () => (++points === 3 ? c.abort() : undefined) }, ref.right, "m", c.signal);
    expect(E.isLeft(r) && r.left.detail).toBe("interrupted");
    expect(points).toBe(3);
  });

  it("float16 outputs: llm-compressor's per-batch sums overflow past 65504 and say so; AutoAWQ's float32 sums do not", async () => {
    const big = { ...search, inputs: search.inputs.map((x) => new Tensor("f32", x.shape, x.data.map((v) => v * 60))) };
    const ref = referenceOutputs(big, "m");
    if (E.isLeft(ref) || ref.right === null) throw new Error("ref");
    const lc = await awqSearch({ ...big, outputDType: "f16" }, ref.right, "m");
    expect(E.isLeft(lc) && lc.left.detail).toMatch(/every grid point's loss is inf, because some batch's summed squared error passed float16's range \(65504\)/);
    const f32 = await awqSearch(big, ref.right, "m");
    const auto = await awqSearch({ ...big, outputDType: "f16", loss: "autoawq" }, ref.right, "m");
    if (E.isLeft(auto) || E.isLeft(f32)) throw new Error("search");
    expect(auto.right.initialLoss).toBeGreaterThan(65504 / (32 * 8));
    expect(auto.right.ratio).toBe(f32.right.ratio);
    expect(Math.abs(auto.right.loss / f32.right.loss - 1)).toBeLessThan(1e-6);
  });

  it("a forward that always gives NaN is a typed error (no finite loss)", async () => {
    const nan = { ...search, parent: () => (x: Tensor<"f32">) => E.right(new Tensor("f32", [x.shape[0]!, 8], new Float32Array(x.shape[0]! * 8).fill(Number.NaN))) };
    const r = await awqSearch(nan, search.inputs.map((x) => linear(x, w)), "m");
    expect(E.isLeft(r) && r.left.detail).toMatch(/no finite loss/);
  });
});

describe("AWQModifier", () => {
  const cfg = (a: Record<string, unknown> = {}) => {
    const d = decodeModifier("AWQModifier", a, "s");
    if (E.isLeft(d) || d.right.type !== "AWQModifier") throw new Error("decode");
    return d.right;
  };
  const scheme = (strategy: string) =>
    E.getOrElseW(() => { throw new Error("scheme"); })(
      decodeQuantizationScheme({ targets: ["Linear"], weights: { num_bits: 4, type: "int", symmetric: true, strategy, ...(strategy === "group" ? { group_size: 8 } : {}) } }),
    );

  it("skips v_proj → o_proj under grouped-query attention, with a warning at the first layer", () => {
    const s = AWQModifier(cfg()).initialize(llamaInfo(2, { hidden: 8, kv: 4 }));
    expect(E.isRight(s) && s.right.mappings.map((m) => m.smooth)).toEqual(["input_layernorm", "post_attention_layernorm", "mlp.up_proj", "input_layernorm", "post_attention_layernorm", "mlp.up_proj"]);
    expect(E.isRight(s) && s.right.pending[0]).toMatch(/2 mappings were skipped due to incompatible shapes/);
  });

  it("duo scaling with a TENSOR weight strategy is llm-compressor's error; mappings nothing quantizes are skipped", () => {
    const model: ModelInfo = llamaInfo(1);
    const m = AWQModifier(cfg());
    const s = m.initialize(model);
    if (E.isLeft(s)) throw new Error(s.left.detail);
    const tensor = m.onCalibrationEpochStart!(s.right, { schemes: new Map([["model.layers.0.self_attn.q_proj", scheme("tensor")]]) });
    expect(E.isLeft(tensor) && tensor.left.detail).toMatch(/^duo_scaling is only supported with per-channel quantization strategies/);
    const some = m.onCalibrationEpochStart!(s.right, { schemes: new Map([["model.layers.0.mlp.down_proj", scheme("group")]]) });
    expect(E.isRight(some) && some.right.mappings.map((x) => x.smooth)).toEqual(["mlp.up_proj"]);
    expect(E.isRight(some) && some.right.pending.join()).toMatch(/3 mappings were skipped because no layer in them is targeted for quantization/);
  });

  it("refuses activation_hook_target and an n_grid too small for the grid", () => {
    const hook = AWQModifier(cfg({ mappings: [{ smooth_layer: "re:.*up_proj$", balance_layers: ["re:.*down_proj$"], activation_hook_target: "mlp" }] })).initialize(llamaInfo(1));
    expect(E.isLeft(hook) && hook.left.detail).toMatch(/activation_hook_target/);
    const grid = AWQModifier(cfg({ n_grid: 2 })).initialize(llamaInfo(1));
    expect(E.isLeft(grid) && grid.left.detail).toMatch(/n_grid = 2 is too small for duo_scaling = true/);
  });

  it("a parent llmq cannot run alone is refused at initialize", () => {
    const r = AWQModifier(cfg({ mappings: [{ smooth_layer: "re:.*input_layernorm$", balance_layers: ["re:.*q_proj$", "re:.*gate_proj$"] }] })).initialize(llamaInfo(1));
    expect(E.isLeft(r) && r.left.detail).toMatch(/parent module "", which llmq cannot run alone/);
  });

  it("NaN activations are a typed error naming the mapping", async () => {
    const model = llamaInfo(1);
    const m = AWQModifier(cfg({ mappings: [{ smooth_layer: "re:.*up_proj$", balance_layers: ["re:.*down_proj$"] }] }));
    const s0 = m.initialize(model);
    if (E.isLeft(s0)) throw new Error(s0.left.detail);
    const s = m.onCalibrationEpochStart!(s0.right, { schemes: new Map([["model.layers.0.mlp.down_proj", scheme("group")]]) });
    if (E.isLeft(s)) throw new Error(s.left.detail);
    const tensors = new Map<string, Tensor>([
      ["mlp.up_proj.weight", new Tensor("f32", [16, 8], rand(128, 3))],
      ["mlp.down_proj.weight", new Tensor("f32", [8, 16], rand(128, 4))],
    ]);
    const layer: LayerState = { index: 0, prefix: "model.layers.0.", tensors, quantized: new Map(), modules: new Map() };
    const x = new Tensor("f32", [2, 16], rand(32, 5));
    x.data[3] = Number.NaN;
    const r = await m.onSequentialEpochEnd(s.right, layer, [{ inputs: [x], xSum: Float32Array.from({ length: 16 }, (_, j) => (j === 3 ? Number.NaN : 1)), count: 2 }]);
    expect(E.isLeft(r) && r.left).toMatchObject({ modifier: "AWQModifier", module: "model.layers.0.mlp.up_proj" });
  });
});
