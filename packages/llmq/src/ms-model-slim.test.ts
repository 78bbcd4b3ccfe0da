import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type MsQuantConfig, hqqDequantize, hqqQuantize, msBuilder, msQuantConfig } from "@llmq/schemes";
import { toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import { convertCommand, oneshot, openModelDir, quantizeCommand } from "./index.js";
import type { Dataset } from "./dataset.js";
import { msModelSlimRecipe } from "./ms-model-slim-recipe.js";
import { quantizeWithMsModelSlim } from "./ms-model-slim.js";
import { readTensors } from "./test-support/read-tensors.js";
import { must } from "./test-support/stories260k.js";
import { useStoriesWindows } from "./test-support/stories-windows.js";

// quantizeWithMsModelSlim on stories260K: the QuantConfig's modifiers run by oneshot, written in msModelSlim's
// safe_tensor layout; the tensor set and description are the documented ones, and `llmq convert --from msmodelslim`
// reads back exactly the weights of the compressed-tensors checkpoint the same modifiers write.

let tmp = "";
let hf = "";
let data: Dataset;

const fx = useStoriesWindows("llmq-msl-");
beforeAll(async () => {
  ({ tmp, hf, data } = fx);
}, 120_000);

const cfg = (k: Record<string, unknown>, builders: ReadonlyArray<readonly [string, Record<string, unknown>]> = []): MsQuantConfig => {
  let c = must(msQuantConfig(k));
  for (const [b, a] of builders) c = must(msBuilder(c, b, a));
  return c;
};

const PER_TYPE: Readonly<Record<string, ReadonlyArray<readonly [string, string]>>> = {
  W8A8: [["weight", "i8"], ["weight_scale", "f32"], ["weight_offset", "f32"], ["input_scale", "f32"], ["input_offset", "f32"], ["deq_scale", "i64"], ["quant_bias", "i32"]],
  W8A16: [["weight", "i8"], ["weight_scale", "f32"], ["weight_offset", "f32"]],
  W4A16: [["weight", "i8"], ["weight_scale", "f32"], ["weight_offset", "f32"]],
  W8A8_DYNAMIC: [["weight", "i8"], ["weight_scale", "f32"], ["weight_offset", "f32"]],
};

const CASES: ReadonlyArray<readonly [string, MsQuantConfig]> = [
  ["W8A8 act_method 2 per channel", cfg({ mm_tensor: false }, [["weight_activation_quant", { act_method: 2 }]])],
  ["W8A16 GPTQ per channel", cfg({ a_bit: 16, w_method: "GPTQ", mm_tensor: false })],
  ["W4A16 asymmetric per channel", cfg({ w_bit: 4, a_bit: 16, w_sym: false, mm_tensor: false })],
  ["W8A8_DYNAMIC per tensor", cfg({ is_dynamic: true, disable_names: ["model.layers.0.mlp.down_proj"] })],
];

describe("quantizeWithMsModelSlim on stories260K", () => {
  for (const [name, c] of CASES)
    it(name, async () => {
      const type = (name.split(" ")[0] as string).toLowerCase();
      const out = join(tmp, type);
      const r = must(await quantizeWithMsModelSlim(c, { model: hf, output: out, dataset: data })());
      expect(r.files).toEqual([`quant_model_weight_${type}.safetensors`, `quant_model_description_${type}.json`]);
      const desc = JSON.parse(readFileSync(join(out, r.files[1]!), "utf8")) as Record<string, string>;
      const tensors = await readTensors(join(out, r.files[0]!));
      const { model_quant_type, ...described } = desc;
      expect(model_quant_type).toBe(type.toUpperCase());
      expect(Object.keys(described).sort()).toEqual([...tensors.keys()].sort());
      const linears = Object.keys(described).filter((n) => n.endsWith(".weight_scale")).map((n) => n.slice(0, -".weight_scale".length));
      expect(linears.length).toBe(c.disable_names.length > 0 ? 34 : 35);
      for (const l of linears)
        for (const [p, dtype] of PER_TYPE[model_quant_type!]!) {
          expect(tensors.get(`${l}.${p}`)?.dtype, `${l}.${p}`).toBe(dtype);
          expect(described[`${l}.${p}`]).toBe(model_quant_type);
        }
      const floats = Object.keys(described).filter((n) => described[n] === "FLOAT");
      expect(floats.every((n) => !linears.some((l) => n.startsWith(`${l}.`)) || c.disable_names.some((d) => n.startsWith(d)))).toBe(true);
      expect(tensors.get(`${linears[0]}.weight_scale`)!.shape).toEqual([tensors.get(`${linears[0]}.weight`)!.shape[0], 1]);

      // the same modifiers' compressed-tensors checkpoint, and the msModelSlim layout read back: identical weights
      const ct = join(tmp, `${type}-ct`);
      must(await oneshot({ model: hf, output: ct, recipe: must(msModelSlimRecipe(c)), dataset: data })());
      const dense = join(tmp, `${type}-dense`);
      must(await convertCommand({ from: "msmodelslim", model: out, output: dense, overwrite: false })());
      const [a, b] = [must(await openModelDir(ct)()), must(await openModelDir(dense)())];
      for (let i = 0; i < 5; i++) {
        const [ta, tb] = [must(await a.loadLayerTensors(i)()), must(await b.loadLayerTensors(i)())];
        for (const [n, t] of tb) expect(Buffer.from(toFloat32(ta.get(n)!).data.buffer).equals(Buffer.from(toFloat32(t).data.buffer)), n).toBe(true);
      }
      await a.close();
      await b.close();
      if (model_quant_type === "W8A8") {
        const ctT = await readTensors(join(ct, "model.safetensors"));
        for (const l of linears) {
          expect(tensors.get(`${l}.input_scale`)!.data[0]).toBe(ctT.get(`${l}.input_scale`)!.data[0]);
          expect(tensors.get(`${l}.input_offset`)!.data[0]).toBe(ctT.get(`${l}.input_zero_point`)!.data[0]);
        }
      }
    }, 120_000);
});

describe("W8A8 + kv int8 (C8)", () => {
  it("adds <k|v>_proj.kv_cache_scale / kv_cache_offset [kv channels] typed W8A8, kv_cache_type and kv_quant_type C8; convert says it leaves them out", async () => {
    const out = join(tmp, "w8a8-kv");
    const r = must(await quantizeWithMsModelSlim(cfg({ mm_tensor: false }, [["weight_activation_quant", { act_method: 2 }], ["kv_quant", { kv_sym: false }]]), { model: hf, output: out, dataset: data })());
    const t = await readTensors(join(out, r.files[0]!));
    const desc = JSON.parse(readFileSync(join(out, r.files[1]!), "utf8")) as Record<string, string>;
    const { model_quant_type, kv_cache_type, kv_quant_type, ...described } = desc;
    expect([model_quant_type, kv_cache_type, kv_quant_type]).toEqual(["W8A8", "C8", "C8"]);
    expect(Object.keys(described).sort()).toEqual([...t.keys()].sort());
    for (let i = 0; i < 5; i++)
      for (const p of ["k_proj", "v_proj"])
        for (const q of ["kv_cache_scale", "kv_cache_offset"]) {
          const n = `model.layers.${i}.self_attn.${p}.${q}`;
          expect([t.get(n)?.dtype, t.get(n)?.shape, described[n]]).toEqual(["f32", [32], "W8A8"]);
        }
    const off = Array.from(t.get("model.layers.2.self_attn.k_proj.kv_cache_offset")!.data as Float32Array);
    expect(off.every((o) => Number.isInteger(o) && o >= -128 && o <= 127)).toBe(true);
    const c = must(await convertCommand({ from: "msmodelslim", model: out, output: join(tmp, "w8a8-kv-dense"), overwrite: false })());
    expect(c.warnings.join(" ")).toContain("20 C8 KV-cache tensors");
  }, 120_000);
});

describe("W4A16 HQQ (data-free, HqqModifier)", () => {
  it("writes hqq's codes (signed: q − 8), its scales per group of 64 and zero − 8 as the offset; reads back to (q − z)·s", async () => {
    const out = join(tmp, "w4a16-hqq");
    const r = must(await quantizeWithMsModelSlim(cfg({ w_bit: 4, a_bit: 16, w_method: "HQQ" }), { model: hf, output: out })());
    expect(r.files[0]).toBe("quant_model_weight_w4a16.safetensors");
    expect(r.warnings.filter((w) => w.includes("not a multiple of group size 64"))).toHaveLength(5);
    const t = await readTensors(join(out, r.files[0]!));
    const desc = JSON.parse(readFileSync(join(out, r.files[1]!), "utf8")) as Record<string, string>;
    const { model_quant_type, ...described } = desc;
    expect(model_quant_type).toBe("W4A16");
    expect(Object.keys(described).sort()).toEqual([...t.keys()].sort());
    const src = must(await openModelDir(hf)());
    const dense = join(tmp, "w4a16-hqq-dense");
    must(await convertCommand({ from: "msmodelslim", model: out, output: dense, overwrite: false })());
    const back = must(await openModelDir(dense)());
    for (const i of [0, 4]) {
      const [orig, read] = [must(await src.loadLayerTensors(i)()), must(await back.loadLayerTensors(i)())];
      for (const local of ["self_attn.q_proj", "mlp.down_proj"]) {
        const name = `model.layers.${i}.${local}`;
        // down_proj's 172 inputs are no multiple of 64: per row, with a warning
        const g = local === "mlp.down_proj" ? null : 64;
        const q = must(hqqQuantize(orig.get(`${local}.weight`)!, { nbits: 4, groupSize: g, axis: 1, roundZero: true }));
        expect(Array.from(t.get(`${name}.weight`)!.data as Int8Array)).toEqual(Array.from(q.codes.data, (v) => v - 8));
        expect(t.get(`${name}.weight_scale`)!.shape).toEqual([q.shape[0], g === null ? 1 : q.shape[1]! / 64]);
        expect(Array.from(t.get(`${name}.weight_scale`)!.data as Float32Array)).toEqual(Array.from(q.scale.data));
        const want = hqqDequantize(q).data;
        const got = toFloat32(read.get(`${local}.weight`)!).data;
        // offset = zero − 8 is one f32 rounding away from hqq's zero: at most an ulp of 8 times the scale
        const worst = Math.max(...Array.from(got, (v, j) => Math.abs(v - want[j]!) / q.scale.data[Math.floor(j / (g ?? q.shape[1]!))]!));
        expect(worst).toBeLessThanOrEqual(2 ** -20);
      }
    }
    await src.close();
    await back.close();
  }, 120_000);
});

describe("bad input: one clear message, nothing written", () => {
  const fails = async (k: Record<string, unknown>) => {
    const out = join(tmp, "never");
    const r = await quantizeWithMsModelSlim(cfg(k), { model: hf, output: out, dataset: data })();
    expect(() => readFileSync(join(out, "config.json"))).toThrow();
    return E.isLeft(r) ? JSON.stringify(r.left) : "accepted";
  };
  it("disable_names that match nothing", async () => expect(await fails({ disable_names: ["model.layers.9.mlp.down_proj"] })).toContain('disable_names: \\"model.layers.9.mlp.down_proj\\" match no linear'));
  it("an unsupported parameter", async () => expect(await fails({ pr: 0.5 })).toContain("pr 0.5"));
  it("the CLI: unknown parameter names and out-of-range values", async () => {
    for (const [text, msg] of [
      ['{"w_bits": 8}', "w_bits: unknown parameter"],
      ['{"sigma_factor": 5}', "sigma_factor: must be in [3, 4], got 5"],
    ] as const) {
      const f = join(tmp, "cfg.json");
      writeFileSync(f, text);
      const r = await quantizeCommand({ model: hf, output: join(tmp, "never"), method: "rtn", msmodelslimConfig: f, numSamples: 4, seqLen: 32, seed: 1, overwrite: false })();
      expect(E.isLeft(r) && JSON.stringify(r.left)).toContain(msg);
    }
  });
});
