import { readFileSync } from "node:fs";
import { deserializeSafetensors } from "@llmq/serialization";
import { Tensor, f16ToNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type ModelFacts, autoQuantizer, configFromUserDict, quantizeOnLoad, toDict } from "../index.js";

// @llmq/serialization's EETQ fixtures (tools/gen_eetq_fixtures.py): EETQ's own quant_weights (kernels-community
// quantization-eetq, compiled with g++, SM 75-89 layout) on the transposed weight, as transformers' EetqQuantize calls it.
const file = deserializeSafetensors("cases", new Uint8Array(readFileSync(new URL("../../../serialization/fixtures/eetq/cases.safetensors", import.meta.url))));
if (E.isLeft(file)) throw new Error(JSON.stringify(file.left));
const fx = file.right.tensors;
const get = (k: string) => fx.get(k) as Tensor;
const hex = (t: Tensor) => Buffer.from(t.bytes()).toString("hex");
const f32Of = (t: Tensor) => (t.dtype === "f16" ? new Tensor("f32", t.shape, Float32Array.from(t.data as Uint16Array, f16ToNumber)) : t);

const L = "model.layers.0";
const FACTS: ModelFacts = {
  linears: [`${L}.self_attn.q_proj`, `${L}.self_attn.k_proj`, `${L}.mlp.up_proj`, "lm_head"],
  tiedKeys: [],
  lastParameter: "lm_head.weight",
  outputEmbedding: "lm_head",
};

const run = (dict: Record<string, unknown>, sources: Record<string, string>, dtype: "float32" | "float16" | "bfloat16", kProj: Tensor) => {
  const c = configFromUserDict({ quant_method: "eetq", ...dict } as never);
  if (E.isLeft(c)) throw new Error(c.left.message);
  const q = autoQuantizer(c.right);
  if (E.isLeft(q)) throw new Error(q.left.message);
  const tensors = new Map<string, Tensor>([...Object.entries(sources).map(([m, k]) => [`${m}.weight`, f32Of(get(`${k}/source`))] as const), [`${L}.self_attn.k_proj.weight`, kProj]]);
  return { config: c.right, quantizer: q.right, result: quantizeOnLoad(q.right, c.right, tensors, FACTS, dtype) };
};

const KPROJ = new Tensor("f32", [32, 64], new Float32Array(32 * 64).fill(0.5));

describe("EETQ quantize on load = transformers' EetqQuantize with EETQ's quant_weights (SM 75-89 layout)", () => {
  it("writes EETQ's bytes under EetqLinear's names (weight int8 [in, out], weight_scales [out]); a list of skips replaces the default ones", () => {
    const { config, quantizer, result } = run({ modules_to_not_convert: ["k_proj"] }, { [`${L}.self_attn.q_proj`]: "f32-64x64", [`${L}.mlp.up_proj`]: "f32-192x128", lm_head: "f32-edges-64x64" }, "float32", KPROJ);
    if (E.isLeft(result)) throw new Error(result.left.message);
    const r = result.right;
    expect(r.quantizationConfig).toEqual(toDict(config));
    expect(r.kept).toEqual([`${L}.self_attn.k_proj`]);
    expect(r.tensors.get(`${L}.self_attn.k_proj.weight`)).toBe(KPROJ);
    for (const [m, k] of [[`${L}.self_attn.q_proj`, "f32-64x64"], [`${L}.mlp.up_proj`, "f32-192x128"], ["lm_head", "f32-edges-64x64"]] as const) {
      for (const part of ["weight", "weight_scales"]) {
        const [ours, ref] = [r.tensors.get(`${m}.${part}`)!, get(`${k}/${part}`)];
        expect([m, part, ours.dtype, ours.shape]).toEqual([m, part, ref.dtype, ref.shape]);
        expect(hex(ours), `${m}.${part}`).toBe(hex(ref));
      }
      // Read back: the codes EETQ made, times the stored scales.
      const parts = new Map([["weight", r.tensors.get(`${m}.weight`)!], ["weight_scales", r.tensors.get(`${m}.weight_scales`)!]]);
      const dense = quantizer.dequantizeLinear!(config, parts);
      if (E.isLeft(dense)) throw new Error(dense.left.message);
      const [codes, scales] = [get(`${k}/codes`).data as Int8Array, get(`${k}/weight_scales`).data as Float32Array];
      const [inF, out] = get(`${k}/codes`).shape as [number, number];
      expect(dense.right.shape).toEqual([out, inF]);
      expect(Array.from(dense.right.data as Float32Array)).toEqual(Array.from({ length: out * inF }, (_, j) => Math.fround(codes[(j % inF) * out + Math.floor(j / inF)]! * scales[Math.floor(j / inF)]!)));
    }
  });

  it("float16: scales in float16 (quant_weights returns the weight's dtype), codes from the unrounded float scale", () => {
    const { result } = run({ modules_to_not_convert: ["k_proj", "up_proj"] }, { [`${L}.self_attn.q_proj`]: "f16-edges-128x64", lm_head: "f16-64x128" }, "float16", KPROJ);
    if (E.isLeft(result)) throw new Error(result.left.message);
    for (const [m, k] of [[`${L}.self_attn.q_proj`, "f16-edges-128x64"], ["lm_head", "f16-64x128"]] as const)
      for (const part of ["weight", "weight_scales"]) {
        const [ours, ref] = [result.right.tensors.get(`${m}.${part}`)!, get(`${k}/${part}`)];
        expect([ours.dtype, ours.shape, hex(ours)]).toEqual([ref.dtype, ref.shape, hex(ref)]);
      }
  });

  it("without a skip list transformers' defaults apply (the output head stays dense)", () => {
    const { result } = run({}, { [`${L}.self_attn.q_proj`]: "f32-64x64", [`${L}.mlp.up_proj`]: "f32-192x128", lm_head: "f32-64x64" }, "float32", KPROJ);
    expect(E.isLeft(result) && result.left.message).toMatch(/\[32, 64\] linear: out_features 32 is not a multiple of 64.*modules_to_not_convert/);
    const ok = run({}, { [`${L}.self_attn.q_proj`]: "f32-64x64", [`${L}.mlp.up_proj`]: "f32-192x128", lm_head: "f32-64x64" }, "float32", new Tensor("f32", [64, 64], new Float32Array(4096)));
    if (E.isLeft(ok.result)) throw new Error(ok.result.left.message);
    expect(ok.result.right.kept).toEqual(["lm_head"]);
    expect(ok.result.right.warnings.join(" ")).toMatch(/CUDA GPU of SM 75-89/);
  });

  it("bfloat16 is refused as EETQ's quant_weights refuses it", () => {
    const { result } = run({ modules_to_not_convert: ["k_proj"] }, { [`${L}.self_attn.q_proj`]: "f32-64x64" }, "bfloat16", KPROJ);
    expect(E.isLeft(result) && result.left.message).toMatch(/float16 or float32 weights.*not bfloat16/);
  });
});
