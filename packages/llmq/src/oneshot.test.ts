import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openCheckpoint } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import { loadDataset } from "./dataset.js";
import { evaluate } from "./evaluate.js";
import { inspectCommand } from "./inspect-command.js";
import { oneshot } from "./oneshot.js";
import { inputQuantSpecs, openModelDir } from "./open-model.js";
import { recipeFromScheme, recipeFromYaml } from "./recipe.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// End to end on the bundled stories260K: convert → quantize (RTN data-free, GPTQ with calibration) → evaluate.

const tmp = mkdtempSync(join(tmpdir(), "llmq-oneshot-"));
const fp = join(tmp, "fp");
const recipe = (name: string): string => readFileSync(join(ROOT, "fixtures/recipes", name), "utf8");

beforeAll(() => convertStories(fp));

const evalKld = async (dir: string) => {
  const m = must(await openModelDir(dir)());
  const r = must(await openModelDir(fp)());
  const tokens = JSON.parse(readFileSync(join(tmp, "eval.json"), "utf8")) as number[][];
  const ds = { path: "eval.json", kind: "tokens" as const, windows: tokens.map((t) => Int32Array.from(t)), tokens: 0 };
  const res = must(await evaluate(m, r, ds)());
  await m.close();
  await r.close();
  return res;
};

describe("oneshot on stories260K", () => {
  it("RTN W4A16 g32 (data-free) writes a compressed-tensors checkpoint that evaluates close to fp", async () => {
    const out = join(tmp, "rtn");
    const r = must(await oneshot({ model: fp, output: out, recipe: must(recipeFromYaml(recipe("stories260k-w4a16-g32.yaml"))) })());
    expect(r.modules).toBe(35);
    expect(r.format).toBe("pack-quantized");
    expect(r.calibration).toBeNull();
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg.quantization_config.quant_method).toBe("compressed-tensors");
    expect(cfg.quantization_config.ignore).toEqual(["lm_head"]);
    expect(cfg.quantization_config.config_groups.group_0.weights).toMatchObject({ num_bits: 4, group_size: 32, strategy: "group" });
    expect(readdirSync(out).sort()).toEqual(
      ["config.json", "generation_config.json", "model.safetensors", "recipe.yaml", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"].sort(),
    );
    const ck = must(await openCheckpoint(out)());
    expect(ck.info("model.layers.0.self_attn.q_proj.weight_packed")!.info).toMatchObject({ dtype: "I32", shape: [64, 8] });
    expect(ck.info("model.layers.0.self_attn.q_proj.weight_scale")!.info).toMatchObject({ dtype: "F32", shape: [64, 2] });
    expect(ck.info("model.layers.0.mlp.down_proj.weight_scale")!.info).toMatchObject({ dtype: "F32", shape: [64, 1] });
    expect(ck.info("model.layers.0.self_attn.q_proj.weight")).toBeUndefined();
    expect(ck.info("model.embed_tokens.weight")!.info.dtype).toBe("F32");
    await ck.close();
  });

  it("GPTQ beats RTN on KL divergence to the fp model (W4 g32 and W3 g32)", async () => {
    // Calibration and evaluation windows: disjoint WikiText-2 splits through the converted tokenizer.
    const tok = (await import("@llmq/models")).loadTokenizer;
    const t = must(await tok(fp)());
    const dsTok = { encode: (s: string, o: { bos: boolean }) => t.encode(s, { bos: o.bos }), bosId: t.bosId };
    const calib = must(await loadDataset(join(ROOT, "fixtures/wikitext-2/valid.txt"), dsTok, { numSamples: 32, seqLen: 128, sampling: "shuffle", seed: 1 })());
    const evalDs = must(await loadDataset(join(ROOT, "fixtures/wikitext-2/test.txt"), dsTok, { numSamples: 16, seqLen: 128 })());
    writeFileSync(join(tmp, "eval.json"), JSON.stringify(evalDs.windows.map((w) => Array.from(w))));
    const results: Record<string, number> = {};
    for (const bits of [4, 3]) {
      for (const method of ["rtn", "gptq"] as const) {
        const name = `stories260k-w${bits}a16-g32${method === "gptq" ? "-gptq" : ""}.yaml`;
        const out = join(tmp, `w${bits}-${method}`);
        const r = must(await oneshot({ model: fp, output: out, recipe: must(recipeFromYaml(recipe(name))), dataset: method === "gptq" ? calib : null })());
        if (method === "gptq") {
          expect(r.calibration).toEqual({ samples: 32, tokens: 32 * 128 });
          expect(r.layers.every((l) => l.output_rel_error !== null && l.output_rel_error > 0)).toBe(true);
        }
        results[`w${bits}-${method}`] = (await evalKld(out)).kld!.mean;
      }
    }
    expect(results["w4-gptq"]!).toBeLessThan(results["w4-rtn"]! * 0.8);
    expect(results["w3-gptq"]!).toBeLessThan(results["w3-rtn"]! * 0.8);
    expect(results["w4-rtn"]!).toBeLessThan(results["w3-rtn"]!);
  });

  it("honours the weight observer of the recipe: MSE scales give a lower weight error than min-max", async () => {
    const minmax = recipe("stories260k-w4a16-g32.yaml");
    const mse = minmax.replace(/strategy: (group, group_size: 32|channel)\}/g, "strategy: $1, observer: memoryless_mse}");
    expect(mse).toContain("observer: memoryless_mse");
    const a = must(await oneshot({ model: fp, output: join(tmp, "obs-minmax"), recipe: must(recipeFromYaml(minmax)) })());
    const b = must(await oneshot({ model: fp, output: join(tmp, "obs-mse"), recipe: must(recipeFromYaml(mse)) })());
    const loss = (r: typeof a) => r.layers.reduce((x, l) => x + l.loss, 0);
    expect(loss(b)).toBeLessThan(loss(a));
    const cfg = JSON.parse(readFileSync(join(tmp, "obs-mse", "config.json"), "utf8"));
    expect(cfg.quantization_config.config_groups.group_0.weights.observer).toBe("memoryless_mse");
  });

  it("is deterministic: the same inputs give byte-identical files", async () => {
    const a = join(tmp, "det-a");
    const b = join(tmp, "det-b");
    for (const out of [a, b]) must(await oneshot({ model: fp, output: out, recipe: must(recipeFromScheme({ scheme: "W8A8", method: "rtn" })) })());
    for (const f of ["model.safetensors", "config.json", "recipe.yaml"]) expect(readFileSync(join(a, f)).equals(readFileSync(join(b, f)))).toBe(true);
  });

  it("refuses a group size that does not divide a layer, naming the module, and writes nothing", async () => {
    const out = join(tmp, "bad-group");
    const r = await oneshot({ model: fp, output: out, recipe: must(recipeFromScheme({ scheme: "W4A16", method: "rtn" })) })();
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "QuantizationError", module: "model.layers.0.self_attn.q_proj" });
    expect(readdirSync(tmp).some((f) => f.includes("bad-group"))).toBe(false);
  });

  it("GPTQ without data is a clear error", async () => {
    const r = await oneshot({ model: fp, output: join(tmp, "nodata"), recipe: must(recipeFromYaml(recipe("stories260k-w4a16-g32-gptq.yaml"))) })();
    expect(E.isLeft(r) && r.left._tag === "QuantizationError" && r.left.detail).toMatch(/needs calibration data/);
  });

  it("FP8 static activations: calibrated input_scale per module, read back as runtime input quantization", async () => {
    const ids = Array.from({ length: 4 }, (_, k) => Int32Array.from({ length: 64 }, (_, j) => (k * 131 + j * 17) % 512));
    const ds = { path: "ids", kind: "tokens" as const, windows: ids, tokens: 256 };
    const fp8 = must(recipeFromScheme({ scheme: "FP8", method: "rtn" }));
    const noData = await oneshot({ model: fp, output: join(tmp, "fp8-nodata"), recipe: fp8 })();
    expect(E.isLeft(noData) && noData.left._tag === "QuantizationError" && noData.left.detail).toMatch(/static activation.*needs calibration data/);
    const out = join(tmp, "fp8");
    must(await oneshot({ model: fp, output: out, recipe: fp8, dataset: ds })());
    const ck = must(await openCheckpoint(out)());
    const scales = ck.names.filter((n) => n.endsWith(".input_scale"));
    expect(scales).toHaveLength(35);
    for (const n of scales) {
      const t = must(await ck.read(n)());
      expect(t.dtype).toBe("f32");
      expect((t.data as Float32Array)[0]).toBeGreaterThan(0);
    }
    await ck.close();
    const h = must(await openModelDir(out)());
    expect(inputQuantSpecs(h).size).toBe(35);
    expect(inputQuantSpecs(h).get("model.layers.2.mlp.down_proj")!.args).toMatchObject({ dynamic: false, strategy: "tensor", type: "float" });
    await h.close();
  });

  it("inspect reports a dense directory as dense with the sum of tensor bytes", async () => {
    const r = must(await inspectCommand(fp)());
    expect(r.format).toBe("dense");
    expect(r.quantization_config).toBeNull();
    expect(r.total_bytes).toBe(r.tensors.reduce((a, t) => a + t.bytes, 0));
    expect(r.total_bytes).toBe(260032 * 4);
  });
});
