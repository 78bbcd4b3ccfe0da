import { hqqDequantize, hqqQuantize } from "@llmq/schemes";
import { type Tensor, f32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { HqqModifier } from "./hqq-modifier.js";
import type { HqqQuantized } from "@llmq/schemes";
import type { LayerState, ModelInfo } from "./modifier.js";

// HqqModifier: no calibration; at the epoch end each targeted linear becomes hqq's dequantization of itself.

const w = (rows: number, cols: number, seed: number) => f32(Array.from({ length: rows * cols }, (_, i) => Math.sin(i * 0.37 + seed) * 0.05), [rows, cols]);
const info = (name: string, out: number, inF: number) => ({ name, layer: 0, className: "Linear", inFeatures: inF, outFeatures: out });
const model = {
  linears: [info("model.layers.0.q_proj", 4, 128), info("model.layers.0.down_proj", 4, 96), info("model.layers.0.skip", 4, 128)],
  hasTensor: () => true,
} as unknown as ModelInfo;
const tensors = new Map<string, Tensor>([
  ["q_proj.weight", w(4, 128, 1)],
  ["down_proj.weight", w(4, 96, 2)],
  ["skip.weight", w(4, 128, 3)],
]);
const layer: LayerState = {
  index: 0,
  prefix: "model.layers.0.",
  tensors,
  quantized: new Map(),
  modules: new Map(model.linears.map((m) => [m.name.slice("model.layers.0.".length), m] as const)),
};

describe("HqqModifier", () => {
  it("replaces each targeted weight by hqqDequantize(hqqQuantize(w)), reports it, leaves ignored ones, and groups per row where asked", async () => {
    const seen = new Map<string, HqqQuantized>();
    const m = HqqModifier({ nbits: 4, groupSize: 64, axis: 1, roundZero: true, ignore: ["model.layers.0.skip"], rowGroups: true, onQuantized: (n, q) => seen.set(n, q) });
    expect(m.requiresCalibrationData).toBe(false);
    const s = m.initialize(model);
    if (E.isLeft(s)) throw new Error(s.left.detail);
    const r = await m.onSequentialEpochEnd(s.right, layer, null);
    if (E.isLeft(r)) throw new Error(r.left.detail);
    expect([...seen.keys()]).toEqual(["model.layers.0.q_proj", "model.layers.0.down_proj"]);
    const q = hqqQuantize(tensors.get("q_proj.weight")!, { nbits: 4, groupSize: 64, axis: 1, roundZero: true });
    if (E.isLeft(q)) throw new Error("hqq");
    expect(Array.from(r.right.layer.tensors.get("q_proj.weight")!.data as Float32Array)).toEqual(Array.from(hqqDequantize(q.right).data));
    expect(seen.get("model.layers.0.down_proj")!.groupSize).toBeNull(); // 96 inputs: per row
    expect(r.right.warnings).toEqual(["model.layers.0.down_proj: 96 input features are not a multiple of group size 64; quantized per row (HQQ group_size None)"]);
    expect(r.right.layer.tensors.get("skip.weight")).toBe(tensors.get("skip.weight"));
  });
});
