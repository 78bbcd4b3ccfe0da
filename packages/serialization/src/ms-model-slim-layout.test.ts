import { Tensor, f32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type MsLinear, dequantizeMsModelSlim, msModelSlimLayout } from "./ms-model-slim-layout.js";

// msModelSlim's documented layout (reference/formats.md §1.5, docs quantized_weight_format.md).

const lin = (over: Partial<MsLinear> = {}): MsLinear => ({
  name: "model.layers.0.self_attn.q_proj",
  out: 2,
  in: 4,
  codes: Int8Array.of(1, -2, 3, 127, -128, 0, 5, -7),
  scale: Float32Array.of(0.5, 0.25),
  offset: Float32Array.of(0, 0),
  groupSize: null,
  ...over,
});
const floats = new Map([["model.norm.weight", f32([1, 1, 1, 1])]]);
const must = <A>(e: E.Either<string, A>): A => {
  if (E.isLeft(e)) throw new Error(e.left);
  return e.right;
};

describe("msModelSlimLayout", () => {
  it("W8A16 per channel: weight int8 [n,k], weight_scale / weight_offset f32 [n,1], FLOAT for the rest, typed file names", () => {
    const l = must(msModelSlimLayout("W8A16", [lin()], floats, "f32"));
    expect(l.weightFile).toBe("quant_model_weight_w8a16.safetensors");
    expect(l.descriptionFile).toBe("quant_model_description_w8a16.json");
    expect(l.description).toEqual({
      model_quant_type: "W8A16",
      "model.norm.weight": "FLOAT",
      "model.layers.0.self_attn.q_proj.weight": "W8A16",
      "model.layers.0.self_attn.q_proj.weight_scale": "W8A16",
      "model.layers.0.self_attn.q_proj.weight_offset": "W8A16",
    });
    const t = new Map(l.tensors);
    expect([t.get("model.layers.0.self_attn.q_proj.weight")!.dtype, t.get("model.layers.0.self_attn.q_proj.weight_scale")!.shape]).toEqual(["i8", [2, 1]]);
  });
  it("W4A16 per group: scale and offset [n, k/g]; reading back gives (W − offset)·scale per group", () => {
    const l = must(msModelSlimLayout("W4A16", [lin({ codes: Int8Array.of(1, -2, 3, 7, -8, 0, 5, -7), scale: Float32Array.of(0.5, 2, 0.25, 1), offset: Float32Array.of(1, 0, -1, 0.5), groupSize: 2 })], floats, "f32"));
    expect(new Map(l.tensors).get("model.layers.0.self_attn.q_proj.weight_offset")!.shape).toEqual([2, 2]);
    const back = must(dequantizeMsModelSlim(l.description, new Map(l.tensors)));
    expect(Array.from(back.tensors.get("model.layers.0.self_attn.q_proj.weight")!.data as Float32Array)).toEqual([0, -1.5, 6, 14, -1.75, 0.25, 4.5, -7.5]);
    expect([...back.tensors.keys()].sort()).toEqual(["model.layers.0.self_attn.q_proj.weight", "model.norm.weight"]);
    expect(back.dequantized).toEqual(["model.layers.0.self_attn.q_proj"]);
  });
  it("W8A8: input_scale / input_offset [1] in the model dtype, deq_scale = input_scale·weight_scale as int64 f32 bits (f32 model), quant_bias = −input_offset·ΣW", () => {
    const l = must(msModelSlimLayout("W8A8", [lin({ input: { scale: 0.1, offset: -3 } })], floats, "f32"));
    const t = new Map(l.tensors);
    const deq = t.get("model.layers.0.self_attn.q_proj.deq_scale")!;
    expect(deq.dtype).toBe("i64");
    const bits = new Uint32Array(Float32Array.of(Math.fround(0.1 * 0.5), Math.fround(0.1 * 0.25)).buffer);
    expect(Array.from(deq.data as BigInt64Array)).toEqual([BigInt(bits[0]!), BigInt(bits[1]!)]);
    expect(Array.from(t.get("model.layers.0.self_attn.q_proj.quant_bias")!.data as Int32Array)).toEqual([3 * 129, 3 * -130]);
    expect(t.get("model.layers.0.self_attn.q_proj.input_offset")!.data[0]).toBe(-3);
    expect(Object.keys(l.description).filter((k) => k !== "model_quant_type" && l.description[k] === "W8A8")).toHaveLength(7);
  });
  it("W8A8 in a bf16 model keeps deq_scale f32 and stores the input qparams as bf16", () => {
    const t = new Map(must(msModelSlimLayout("W8A8", [lin({ input: { scale: 0.1, offset: -3 } })], floats, "bf16")).tensors);
    expect(t.get("model.layers.0.self_attn.q_proj.deq_scale")!.dtype).toBe("f32");
    expect(t.get("model.layers.0.self_attn.q_proj.input_scale")!.dtype).toBe("bf16");
  });
  it("refuses a W8A8 linear without input qparams and an undescribed tensor on reading", () => {
    expect(E.isLeft(msModelSlimLayout("W8A8", [lin()], floats, "f32"))).toBe(true);
    const l = must(msModelSlimLayout("W8A16", [lin()], floats, "f32"));
    const extra = new Map([...l.tensors, ["stray", new Tensor("f32", [1], Float32Array.of(1))] as const]);
    const r = dequantizeMsModelSlim(l.description, extra);
    expect(E.isLeft(r) && r.left).toContain("stray is not in the description");
  });
});
