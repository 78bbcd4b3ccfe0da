import { readFileSync } from "node:fs";
import { Tensor, f32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type MsLinear, dequantizeMsModelSlim, msModelSlimLayout } from "./ms-model-slim-layout.js";
import { MS_ASCEND_V1_DESCRIPTION, msAscendV1, msPackW4A16, msShards, msTensorOrder, msUnpackW4A16 } from "./ms-model-slim-save.js";

// save_type ascendV1 and part_file_size: the int4 packing against msModelSlim's own `_w4a16_pack_int4`
// (tools/gen_ms_ascendv1_fixtures.py runs it from msModelSlim's source), the versioned description, the packed layout
// read back to the same weights, and BufferedSafetensorsWriter's shard cut.

interface Case {
  readonly n: number;
  readonly k: number;
  readonly per_channel: boolean;
  readonly codes: number[];
  readonly packed_shape: number[];
  readonly packed: number[];
}
const FIX = JSON.parse(readFileSync(new URL("../fixtures/ms-ascendv1-pack.json", import.meta.url), "utf8")) as { cases: Case[] };
const must = <A>(e: E.Either<string, A>): A => {
  if (E.isLeft(e)) throw new Error(e.left);
  return e.right;
};

describe("msPackW4A16 (msModelSlim _w4a16_pack_int4)", () => {
  for (const c of FIX.cases)
    it(`${c.per_channel ? "per channel" : "per group"} [${c.n}, ${c.k}] → [${c.packed_shape}]`, () => {
      const p = must(msPackW4A16(Int8Array.from(c.codes), c.n, c.k, c.per_channel));
      expect(p.shape).toEqual(c.packed_shape);
      expect(Array.from(p.data as Int8Array)).toEqual(c.packed);
      expect(Array.from(must(msUnpackW4A16(p, c.n, c.k)))).toEqual(c.codes);
    });
  it("refuses odd packing dimensions", () => {
    expect(E.isLeft(msPackW4A16(new Int8Array(6), 2, 3, true))).toBe(true);
    expect(E.isLeft(msPackW4A16(new Int8Array(6), 3, 2, false))).toBe(true);
  });
});

const lin = (name: string, groupSize: number | null): MsLinear => ({
  name,
  out: 4,
  in: 8,
  codes: Int8Array.from({ length: 32 }, (_, i) => ((i * 5) % 16) - 8),
  scale: Float32Array.from({ length: groupSize === null ? 4 : 8 }, (_, i) => 0.25 + i / 8),
  offset: Float32Array.from({ length: groupSize === null ? 4 : 8 }, (_, i) => (i % 3) - 1),
  groupSize,
});

describe("msAscendV1", () => {
  const floats = new Map([["model.norm.weight", f32([1, 1, 1, 1, 1, 1, 1, 1])]]);
  const safe = must(msModelSlimLayout("W4A16", [lin("model.layers.0.mlp.up_proj", 4), lin("model.layers.0.mlp.down_proj", null)], floats, "f32"));
  const v1 = must(msAscendV1(safe, 4));
  it("packs the W4A16 weights, keeps the file name, writes quant_model_description.json with version and group_size first", () => {
    expect(v1.weightFile).toBe("quant_model_weight_w4a16.safetensors");
    expect(v1.descriptionFile).toBe(MS_ASCEND_V1_DESCRIPTION);
    expect(Object.keys(v1.description).slice(0, 3)).toEqual(["version", "model_quant_type", "group_size"]);
    expect([v1.description.version, v1.description.group_size]).toEqual(["1.0.0", 4]);
    const t = new Map(v1.tensors);
    expect(t.get("model.layers.0.mlp.up_proj.weight")!.shape).toEqual([2, 8]);
    expect(t.get("model.layers.0.mlp.down_proj.weight")!.shape).toEqual([4, 4]);
    expect(t.get("model.norm.weight")).toBe(floats.get("model.norm.weight"));
  });
  it("reads back to the same dense weights as the safe_tensor layout", () => {
    const a = must(dequantizeMsModelSlim(safe.description, new Map(safe.tensors)));
    const b = must(dequantizeMsModelSlim(v1.description, new Map(v1.tensors)));
    for (const n of ["model.layers.0.mlp.up_proj.weight", "model.layers.0.mlp.down_proj.weight"]) expect(Array.from(b.tensors.get(n)!.data as Float32Array)).toEqual(Array.from(a.tensors.get(n)!.data as Float32Array));
  });
  it("no group_size key per channel", () => expect("group_size" in must(msAscendV1(safe, null)).description).toBe(false));
});

describe("msShards (BufferedSafetensorsWriter)", () => {
  const t = (bytes: number): Tensor => new Tensor("i8", [bytes], new Int8Array(bytes));
  const entries: Array<readonly [string, Tensor]> = [
    ["lm_head.weight", t(50)],
    ["model.layers.0.self_attn.q_proj.weight_scale", t(4)],
    ["model.layers.0.self_attn.q_proj.weight", t(40)],
    ["model.embed_tokens.weight", t(50)],
    ["model.layers.0.self_attn.k_proj.kv_cache_scale", t(2)],
    ["model.norm.weight", t(8)],
    ["model.layers.0.input_layernorm.weight", t(8)],
    ["model.layers.0.self_attn.k_proj.weight", t(40)],
  ];
  it("orders tensors as named_modules yields them", () =>
    expect(msTensorOrder(entries).map(([n]) => n)).toEqual([
      "model.embed_tokens.weight",
      "model.layers.0.self_attn.q_proj.weight",
      "model.layers.0.self_attn.q_proj.weight_scale",
      "model.layers.0.self_attn.k_proj.kv_cache_scale",
      "model.layers.0.self_attn.k_proj.weight",
      "model.layers.0.input_layernorm.weight",
      "model.norm.weight",
      "lm_head.weight",
    ]));
  // 50 + 40 + 4 + 2 = 96 < 100; + 40 would reach it → file 2: 40 + 8 + 8 = 56; + 50 → file 3
  it("starts a new file when the pending size plus the next tensor would reach the limit", () => {
    const s = msShards("quant_model_weight_w8a16.safetensors", entries, 100);
    expect(s.files.map((f) => [f.file, f.tensors.map(([n]) => n.split(".").slice(-2).join("."))])).toEqual([
      ["quant_model_weight_w8a16-00001-of-00003.safetensors", ["embed_tokens.weight", "q_proj.weight", "q_proj.weight_scale", "k_proj.kv_cache_scale"]],
      ["quant_model_weight_w8a16-00002-of-00003.safetensors", ["k_proj.weight", "input_layernorm.weight", "norm.weight"]],
      ["quant_model_weight_w8a16-00003-of-00003.safetensors", ["lm_head.weight"]],
    ]);
    expect(s.indexFile).toBe("quant_model_weight_w8a16.safetensors.index.json");
    expect(s.index.metadata.total_size).toBe(202);
    expect(s.index.weight_map["lm_head.weight"]).toBe("quant_model_weight_w8a16-00003-of-00003.safetensors");
    expect(Object.keys(s.index.weight_map)).toHaveLength(8);
  });
  it("one file when everything fits", () => expect(msShards("quant_model_weight_w8a8.safetensors", entries, 2 ** 30).files.map((f) => f.file)).toEqual(["quant_model_weight_w8a8-00001-of-00001.safetensors"]));
});
