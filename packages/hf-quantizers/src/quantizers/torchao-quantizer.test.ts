import { type PyJson, type PyJsonObject, dumpPythonJson } from "@llmq/serialization";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { hexBytes, loadFixtureCases } from "../test-support/fixture-cases.js";
import { type ModelFacts, type TorchAoActivation, TorchAoQuantizer, autoQuantizer, configFromUserDict, formatHfQuantizerError, preprocessModel, quantizeOnLoad, torchaoFakeQuantizeInput } from "../index.js";

// tools/gen_torchao_fixtures.py: transformers 5.24 + torchao 0.18 quantizing stories260K on load with TorchAoConfig
// and saving it (the safetensors header and metadata of the whole file, layer 0's tensors).
const DIR = new URL("../../fixtures/torchao/", import.meta.url);
const { manifest, cases, stored } = loadFixtureCases(DIR);

const SUBS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];
const LAYER0 = SUBS.map((m) => `model.layers.0.${m}`);
const source = new Map<string, Tensor>(LAYER0.map((m) => [`${m}.weight`, stored.get(`src/${m}.weight`) as Tensor]));
const bytes = hexBytes;

/** The whole stories260K model as transformers sees it: 5 layers, tied head, state dict in module order. */
const stateDictOf = (c: PyJsonObject): ReadonlyArray<string> => JSON.parse((c.metadata as PyJsonObject).tensor_names as string) as string[];
const factsOf = (stateDict: ReadonlyArray<string>): ModelFacts => ({
  linears: stateDict.filter((n) => n.endsWith("_proj.weight")).map((n) => n.slice(0, -".weight".length)),
  tiedKeys: ["lm_head.weight", "model.embed_tokens.weight"],
  lastParameter: "model.norm.weight",
  outputEmbedding: "lm_head",
  stateDict,
});

const configOf = (want: PyJsonObject) => {
  const c = configFromUserDict(want.config as PyJsonObject);
  if (E.isLeft(c)) throw new Error(c.left.message);
  return c.right;
};

describe("TorchAoConfig quantize on load = transformers 5.24 + torchao 0.18 (Int8Tensor, Int4Tensor)", () => {
  for (const [name, c] of Object.entries(cases)) {
    const want = c as PyJsonObject;
    it(name, () => {
      const config = configOf(want);
      const q = autoQuantizer(config);
      if (E.isLeft(q)) throw new Error(q.left.message);
      expect(q.right).toBe(TorchAoQuantizer);
      const stateDict = stateDictOf(want);
      const facts = factsOf(stateDict);
      // Layer 0 quantized with the whole model's facts (its metadata lists every state-dict entry).
      const shapes = new Map(stateDict.filter((n) => n.endsWith("_proj.weight")).map((n) => [n, source.get(`model.layers.0.${n.split(".").slice(3).join(".")}`)!]));
      const r = quantizeOnLoad(q.right, config, new Map([...source, ...[...shapes].filter(([n]) => !source.has(n))]), facts, want.dtype as "float32");
      if (E.isLeft(r)) throw new Error(formatHfQuantizerError(r.left));
      // Which linears convert, over the whole model: the modules that got an Int8Tensor / Int4Tensor in transformers'
      // file (int4 leaves those whose in_features is not a multiple of group_size dense, as torchao does).
      const entries = want.entries as PyJsonObject;
      const theirs = Object.keys(entries).filter((k) => k.endsWith("._weight_qdata")).map((k) => k.slice(0, -"._weight_qdata".length)).sort();
      expect([...r.right.converted].sort()).toEqual(theirs);
      // what stays dense for its shape (int4) is said once per reason
      const dense = r.right.warnings.filter((w) => w.includes("dense: in_features"));
      expect(dense).toEqual(name === "int4-default" ? [expect.stringContaining("q_proj (+29 more) stay dense: in_features 64 is not a multiple of group_size 128"), expect.stringContaining("down_proj (+4 more) stay dense: in_features 172")] : name === "int4-bf16-g32" || name === "int4-g64-plain-str" ? [expect.stringContaining("(+4 more) stay dense: in_features 172")] : []);
      expect(r.right.converted.length + r.right.kept.length).toBe(preprocessModel(q.right, config, facts).convert.length + preprocessModel(q.right, config, facts).keep.length);
      expect(r.right.dtype).toBe(want.saved_dtype);
      // "mlp.down_proj" converts anyway (transformers matches parameter names): said, not silent.
      expect(r.right.warnings.some((w) => w.includes('"mlp.down_proj" skips nothing'))).toBe(name === "int8wo-skip");
      expect(dumpPythonJson(r.right.quantizationConfig, { sortKeys: true })).toBe(dumpPythonJson(want.quantization_config as PyJson, { sortKeys: true }));
      // __metadata__ as a map (safetensors' Rust HashMap shuffles its order per process).
      expect(Object.fromEntries(Object.entries(r.right.metadata).sort())).toEqual(Object.fromEntries(Object.entries(want.metadata as Record<string, string>).sort()));
      const expected = [...stored.keys()].filter((k) => k.startsWith(`${name}/model.`)).map((k) => k.slice(name.length + 1));
      expect([...r.right.tensors.keys()].filter((k) => k.startsWith("model.layers.0.") && k.includes("_proj.")).sort()).toEqual(expected.sort());
      for (const k of expected) {
        const [t, ref] = [r.right.tensors.get(k)!, stored.get(`${name}/${k}`)!];
        expect([k, t.dtype, t.shape]).toEqual([k, ref.dtype, ref.shape]);
        expect(bytes(t), k).toBe(bytes(ref));
      }
    });
  }

  // Int8Tensor.dequantize(float32) (int8wo-group4); for Int4Tensor, which has no dequantize in torchao 0.18, torchao's
  // _int4_row_dequantize_zp on the stored scale / zero point as f32 (every int4 case: bf16, f32 and f16 scales).
  const dequantized = [...new Set([...stored.keys()].filter((k) => k.includes("/dequantized/")).map((k) => k.split("/")[0]!))];
  it.each(dequantized)("dequantizes %s as torchao does, bit for bit", (name) => {
    const config = configOf(cases[name] as PyJsonObject);
    const mods = LAYER0.filter((l) => stored.has(`${name}/${l}._weight_qdata`));
    expect(mods.length).toBeGreaterThan(0);
    for (const m of mods) {
      const parts = new Map(TorchAoQuantizer.storedParts!.map((p) => [p, stored.get(`${name}/${m}.${p}`)!]));
      const d = TorchAoQuantizer.dequantizeLinear!(config, parts);
      if (E.isLeft(d)) throw new Error(d.left.message);
      expect(d.right.shape).toEqual(TorchAoQuantizer.denseShape!(new Map([...parts].map(([p, t]) => [p, t.shape])), config));
      expect(bytes(d.right), m).toBe(bytes(stored.get(`${name}/dequantized/${m}`)!));
    }
  });

  it("fake-quantizes activations as Int8Tensor.from_hp(x).dequantize() (dynamic int8 activations)", () => {
    const x = stored.get("act/x")!;
    const acts = manifest.activations as PyJsonObject;
    for (const [name, a] of Object.entries(acts)) {
      const p = a as PyJsonObject;
      const act: TorchAoActivation = { perToken: p.per_token === true, symmetric: p.symmetric === true, reduceRange: p.reduce_range === true };
      const got = torchaoFakeQuantizeInput(x.data as Float32Array, 6, 64, act);
      expect(Buffer.from(got.buffer).toString("hex"), name).toBe(bytes(stored.get(`act/${name}`)!));
    }
  });

  it("refuses what it cannot write, before any tensor, naming the reason", () => {
    const refusal = (data: PyJsonObject, type = "Int8WeightOnlyConfig", extra: PyJsonObject = {}) => {
      const c = configFromUserDict({ quant_method: "torchao", quant_type: { default: { _type: type, _version: 2, _data: data } }, ...extra });
      if (E.isLeft(c)) throw new Error(c.left.message);
      const v = TorchAoQuantizer.validateEnvironment(c.right);
      return E.isLeft(v) ? v.left.message : "";
    };
    // Int4WeightOnlyConfig: the plain layout only (manifest.int4_on_cpu: what torchao 0.18 says for the others here)
    const W4 = "Int4WeightOnlyConfig";
    const fmt = (name: string) => ({ group_size: 32, int4_packing_format: { _type: "Int4PackingFormat", _data: name } });
    expect(refusal(fmt("PRESHUFFLED"), W4)).toContain("preshuffle_i4");
    expect(refusal(fmt("PLAIN_INT32"), W4)).toContain("does not support device 'cpu'");
    expect(refusal(fmt("TILE_PACKED_TO_4D"), W4)).toContain("_convert_weight_to_int4pack");
    expect(refusal({ group_size: 32, int4_packing_format: "plain_int32" }, W4)).toContain("plain_int32");
    expect(refusal({ group_size: 32, int4_packing_format: { _type: "Int4PackingFormat", _data: "plain" } }, W4)).toContain("is not an Int4PackingFormat");
    const hqq = refusal({ group_size: 32, int4_choose_qparams_algorithm: { _type: "Int4ChooseQParamsAlgorithm", _data: "HQQ" } }, W4);
    expect(hqq).toContain((manifest.int4_on_cpu as PyJsonObject)["plain/hqq/torch.float32"]!.toString().replace("AssertionError: ", ""));
    expect(refusal({ group_size: 1 }, W4)).toContain("Only groupwise quant");
    expect(refusal({ group_size: 32, int4_tile_packed_ntile: 4 }, W4)).toContain("must be either 8 or 16");
    expect(refusal({ group_size: 32 }, W4)).toBe("");
    const c4 = configOf({ config: { quant_method: "torchao", quant_type: { default: { _type: W4, _version: 2, _data: { group_size: 3, int4_tile_packed_ntile: 16 } } } } });
    expect(E.isRight(TorchAoQuantizer.validateEnvironment(c4)) && TorchAoQuantizer.validateEnvironment(c4)).toEqual(E.right([expect.stringContaining("int4_tile_packed_ntile=16")]));
    // group_size 3 on 63 columns: torchao quantizes (63 % 3 == 0) and pack_int4 fails on the odd row, as torch does
    const odd = quantizeOnLoad(TorchAoQuantizer, c4, new Map([["a.weight", new Tensor("f32", [2, 63], new Float32Array(126))]]), { linears: ["a"], tiedKeys: [], lastParameter: "b", outputEmbedding: null, stateDict: ["a.weight"] }, null);
    expect(E.isLeft(odd) && odd.left.message).toContain("The size of tensor a (32) must match the size of tensor b (31) at non-singleton dimension 1");
    expect(refusal({}, "Int8WeightOnlyConfig", { include_input_output_embeddings: true })).toContain("include_input_output_embeddings");
    expect(refusal({ group_size: 32 })).toContain("only takes group_size=None");
    expect(refusal({ granularity: { _type: "PerGroup", _version: 1, _data: { group_size: 32 } } }, "Int8DynamicActivationInt8WeightConfig")).toContain("PerTensor and PerRow only");
    const c = configOf({ config: { quant_method: "torchao", quant_type: { default: { _type: "Int8WeightOnlyConfig", _version: 2, _data: { granularity: { _type: "PerGroup", _version: 1, _data: { group_size: 32 } } } } } } });
    const w = new Map([["a.weight", source.get("model.layers.0.mlp.down_proj.weight")!]]);
    const r = quantizeOnLoad(TorchAoQuantizer, c, w, { linears: ["a"], tiedKeys: [], lastParameter: "b", outputEmbedding: null, stateDict: ["a.weight"] }, null);
    expect(E.isLeft(r) && r.left.message).toContain("Last dimension of input 172 is not divisible by group size 32");
  });
});
