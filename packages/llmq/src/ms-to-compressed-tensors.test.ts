import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { recipeFromModifiers } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import { convertCommand, msTypeOfCompressedTensors, oneshot } from "./index.js";
import type { Dataset } from "./dataset.js";
import { compressedTensorsToMsModelSlim, quantizeWithMsModelSlim } from "./ms-model-slim.js";
import { msModelSlimToCompressedTensors } from "./ms-to-compressed-tensors.js";
import { recipeFromLc } from "./recipe.js";
import { decodeMsQuantConfig } from "@llmq/schemes";
import { ROOT, must } from "./test-support/stories260k.js";
import { useStoriesWindows } from "./test-support/stories-windows.js";

// compressed-tensors → msModelSlim → compressed-tensors on stories260K: for every scheme both formats have, the
// checkpoint that comes back is byte for byte the one llmq's oneshot wrote directly (model.safetensors and
// config.json); only recipe.yaml (the layout holds no recipe) is missing.

let tmp = "";
let hf = "";
let hf16 = "";
let data: Dataset;

const fx = useStoriesWindows("llmq-msl-ct-");
beforeAll(async () => {
  ({ tmp, hf, data } = fx);
  hf16 = join(tmp, "hf-bf16");
  must(await convertCommand({ from: "llama2c", model: join(ROOT, "fixtures/stories260K/stories260K.bin"), tokenizer: join(ROOT, "fixtures/stories260K/tok512.bin"), output: hf16, overwrite: false, dtype: "bf16" })());
}, 120_000);

const STATIC = { num_bits: 8, type: "int", symmetric: false, strategy: "tensor", dynamic: false };
const TOKEN = { num_bits: 8, type: "int", symmetric: false, strategy: "token", dynamic: true };
const w = (bits: number, symmetric: boolean, strategy: string, group_size?: number) => ({ num_bits: bits, type: "int", symmetric, strategy, ...(group_size ? { group_size } : {}) });

const CASES: ReadonlyArray<readonly [string, "W8A8" | "W8A8_DYNAMIC" | "W8A16" | "W4A16", Record<string, unknown>, ReadonlyArray<string>]> = [
  ["W8A8 bf16 model (bf16 scales, deq_scale kept f32)", "W8A8", { weights: w(8, true, "channel"), input_activations: STATIC }, ["lm_head"]],
  ["W8A8 static per-tensor inputs, per-channel weights", "W8A8", { weights: w(8, true, "channel"), input_activations: STATIC }, ["lm_head"]],
  ["W8A8_DYNAMIC per-token inputs, per-tensor weights", "W8A8_DYNAMIC", { weights: w(8, true, "tensor"), input_activations: TOKEN }, ["lm_head", "model.layers.1.mlp.down_proj"]],
  ["W8A16 per channel", "W8A16", { weights: w(8, true, "channel") }, ["lm_head"]],
  ["W4A16 asymmetric per channel (packed zero points)", "W4A16", { weights: w(4, false, "channel") }, ["lm_head"]],
  ["W4A16 per group of 4", "W4A16", { weights: w(4, true, "group", 4) }, ["lm_head"]],
];

describe("compressed-tensors → msModelSlim → compressed-tensors is byte-identical", () => {
  for (const [name, type, group, ignore] of CASES)
    it(name, async () => {
      const tag = name.split(" ")[0]!.toLowerCase() + (name.includes("group") ? "-g" : name.includes("asym") ? "-a" : name.includes("bf16") ? "-bf16" : "");
      const recipe = must(recipeFromLc(must(recipeFromModifiers([{ type: "QuantizationModifier", config_groups: { group_0: { targets: ["Linear"], ...group } }, ignore: [...ignore] }]))));
      const [a, m, b] = [join(tmp, `${tag}-ct`), join(tmp, `${tag}-ms`), join(tmp, `${tag}-back`)];
      must(await oneshot({ model: name.includes("bf16") ? hf16 : hf, output: a, recipe, dataset: data })());
      must(await compressedTensorsToMsModelSlim(a, m, type)());
      const r = must(await msModelSlimToCompressedTensors(m, b)());
      expect(r.quantized).toBe(36 - ignore.length);
      expect(readdirSync(a).filter((f) => f !== "recipe.yaml").sort()).toEqual(readdirSync(b).sort());
      expect(readFileSync(join(b, "model.safetensors")).equals(readFileSync(join(a, "model.safetensors")))).toBe(true);
      expect(readFileSync(join(b, "config.json"), "utf8")).toBe(readFileSync(join(a, "config.json"), "utf8"));
    }, 120_000);
});

describe("llmq convert --from msmodelslim --to compressed-tensors", () => {
  it("converts a quantizeWithMsModelSlim output and says what it leaves out (C8)", async () => {
    const c = must(decodeMsQuantConfig({ mm_tensor: false, weight_activation_quant: { act_method: 1 }, kv_quant: {}, save_type: ["safe_tensor"] }));
    const ms = join(tmp, "w8a8-kv");
    must(await quantizeWithMsModelSlim(c, { model: hf, output: ms, dataset: data })());
    const r = must(await convertCommand({ from: "msmodelslim", model: ms, output: join(tmp, "w8a8-kv-ct"), overwrite: false, to: "compressed-tensors" })());
    expect([r.compressedTensors, r.sourceTypes]).toEqual(["int-quantized", { "W8A8 linears": 35 }]);
    expect(r.warnings.join(" ")).toContain("20 C8 KV-cache tensors");
    const cfg = JSON.parse(readFileSync(join(tmp, "w8a8-kv-ct", "config.json"), "utf8")) as { quantization_config: { ignore: string[]; format: string } };
    expect(cfg.quantization_config.ignore).toEqual(["lm_head"]);
  }, 120_000);
  it("refuses --to compressed-tensors from other sources, and --dtype with it", async () => {
    const bad = await convertCommand({ from: "gptq", model: hf, output: join(tmp, "never"), overwrite: false, to: "compressed-tensors" })();
    expect(E.isLeft(bad) && JSON.stringify(bad.left)).toContain("--from msmodelslim only");
    const dt = await convertCommand({ from: "msmodelslim", model: hf, output: join(tmp, "never"), overwrite: false, to: "compressed-tensors", dtype: "bf16" })();
    expect(E.isLeft(dt) && JSON.stringify(dt.left)).toContain("--to compressed-tensors keeps the stored dtypes");
  });
});

describe("llmq convert --from compressed-tensors --to msmodelslim", () => {
  it("writes the layout of the type the config group implies; converting back gives the checkpoint again", async () => {
    const a = join(tmp, "w8a8-ct");
    const r = must(await convertCommand({ from: "compressed-tensors", model: a, output: join(tmp, "w8a8-cli-ms"), overwrite: false, to: "msmodelslim" })());
    expect([r.msModelSlim, r.files, r.tokenizer]).toEqual(["W8A8", ["quant_model_weight_w8a8.safetensors", "quant_model_description_w8a8.json"], true]);
    must(await convertCommand({ from: "msmodelslim", model: join(tmp, "w8a8-cli-ms"), output: join(tmp, "w8a8-cli-back"), overwrite: false, to: "compressed-tensors" })());
    for (const f of ["model.safetensors", "config.json"]) expect(readFileSync(join(tmp, "w8a8-cli-back", f)).equals(readFileSync(join(a, f))), f).toBe(true);
  }, 120_000);
  it("names the schemes msModelSlim has no type for, and the option misuse", async () => {
    const g = (weights: Record<string, unknown>, input: Record<string, unknown> | null = null) => ({ config_groups: { group_0: { weights, input_activations: input } } });
    expect(msTypeOfCompressedTensors(g(w(4, true, "group", 128)))).toEqual(E.right("W4A16"));
    expect(msTypeOfCompressedTensors(g({ ...w(8, true, "channel"), type: "float" }))).toEqual(E.left("msModelSlim's types have int8 or int4 weights"));
    expect(msTypeOfCompressedTensors(g(w(8, true, "channel"), { ...STATIC, strategy: "token" }))).toEqual(E.left("input activations static per token have no msModelSlim type (static per tensor, or dynamic per token)"));
    expect(msTypeOfCompressedTensors(g({ ...w(4, true, "group", 128), actorder: "group" }))).toEqual(E.left("GPTQ actorder group (weight_g_idx) has no msModelSlim form"));
    const dense = await convertCommand({ from: "compressed-tensors", model: hf, output: join(tmp, "never"), overwrite: false, to: "msmodelslim" })();
    expect(E.isLeft(dense) && JSON.stringify(dense.left)).toContain("is not a compressed-tensors checkpoint");
    const noTo = await convertCommand({ from: "compressed-tensors", model: hf, output: join(tmp, "never"), overwrite: false })();
    expect(E.isLeft(noTo) && JSON.stringify(noTo.left)).toContain("add --to msmodelslim");
  });
});
