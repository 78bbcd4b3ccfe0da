import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { type MsQuantConfig, decodeMsQuantConfig } from "@llmq/schemes";
import { toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import { convertCommand, oneshot, openModelDir } from "./index.js";
import type { Dataset } from "./dataset.js";
import { msModelSlimRecipe } from "./ms-model-slim-recipe.js";
import { compressedTensorsToMsModelSlim, quantizeWithMsModelSlim } from "./ms-model-slim.js";
import { readTensors } from "./test-support/read-tensors.js";
import { must } from "./test-support/stories260k.js";
import { useStoriesWindows } from "./test-support/stories-windows.js";

// Calibrator.save's save_type ascendV1 and part_file_size on stories260K: the files msModelSlim names, W4A16 int4-packed,
// the versioned description, shards with their index; `llmq convert --from msmodelslim` reads each back to exactly the
// dense weights of the plain safe_tensor output. numpy is refused with the reason.

let tmp = "";
let hf = "";
let data: Dataset;

const fx = useStoriesWindows("llmq-msl-save-");
beforeAll(async () => {
  ({ tmp, hf, data } = fx);
}, 120_000);

const cfg = (k: Record<string, unknown>): MsQuantConfig => must(decodeMsQuantConfig(k));

/** Every dense weight of two directories equal bit for bit. */
const sameDense = async (a: string, b: string): Promise<void> => {
  const [da, db] = [join(tmp, `${a}-dense`), join(tmp, `${b}-dense`)];
  for (const [src, dst] of [[a, da], [b, db]] as const) must(await convertCommand({ from: "msmodelslim", model: join(tmp, src), output: dst, overwrite: true })());
  const [x, y] = [must(await openModelDir(da)()), must(await openModelDir(db)())];
  for (let i = 0; i < 5; i++) {
    const [tx, ty] = [must(await x.loadLayerTensors(i)()), must(await y.loadLayerTensors(i)())];
    for (const [n, t] of ty) expect(Buffer.from(toFloat32(tx.get(n)!).data.buffer).equals(Buffer.from(toFloat32(t).data.buffer)), n).toBe(true);
  }
  await x.close();
  await y.close();
};

describe("save_type ascendV1", () => {
  for (const [name, k] of [
    ["W4A16 HQQ (group 64, down_proj per row)", { w_bit: 4, a_bit: 16, w_method: "HQQ" }],
    ["W4A16 MinMax asymmetric per channel", { w_bit: 4, a_bit: 16, w_sym: false, mm_tensor: false }],
  ] as const)
    it(`${name}: packed weights, quant_model_description.json with version; reads back as the safe_tensor output`, async () => {
      const tag = name.split(" ")[1]!.toLowerCase();
      const safe = must(await quantizeWithMsModelSlim(cfg({ ...k, save_type: ["safe_tensor"] }), { model: hf, output: join(tmp, `${tag}-safe`), dataset: data })());
      const v1 = must(await quantizeWithMsModelSlim(cfg({ ...k, save_type: ["safe_tensor", "ascendV1"] }), { model: hf, output: join(tmp, `${tag}-v1`), dataset: data })());
      expect(v1.files).toEqual(["quant_model_weight_w4a16.safetensors", "quant_model_description.json"]);
      expect(v1.warnings.join("\n")).toContain("ascendV1 is written alone");
      const desc = JSON.parse(readFileSync(join(tmp, `${tag}-v1`, v1.files[1]!), "utf8")) as Record<string, unknown>;
      expect(Object.keys(desc).slice(0, 2)).toEqual(["version", "model_quant_type"]);
      expect(desc.version).toBe("1.0.0");
      expect(desc.group_size).toBe(tag === "hqq" ? 64 : undefined);
      const [ts, tv] = [await readTensors(join(tmp, `${tag}-safe`, safe.files[0]!)), await readTensors(join(tmp, `${tag}-v1`, v1.files[0]!))];
      const q = "model.layers.1.self_attn.q_proj.weight";
      // stories260K's 64 inputs are one HQQ group of 64: one scale column, so packed per channel like the rest
      expect(tv.get(q)!.shape).toEqual([64, 32]);
      expect(tv.get("model.layers.1.mlp.down_proj.weight")!.shape).toEqual([64, 86]);
      expect([...tv.keys()].sort()).toEqual([...ts.keys()].sort());
      await sameDense(`${tag}-safe`, `${tag}-v1`);
    }, 120_000);
});

describe("part_file_size", () => {
  it("one GiB: a single shard and its index; read back as the unsharded output", async () => {
    const r = must(await quantizeWithMsModelSlim(cfg({ a_bit: 16, mm_tensor: false, save_type: ["safe_tensor"], part_file_size: 1 }), { model: hf, output: join(tmp, "w8a16-part") })());
    expect(r.files).toEqual(["quant_model_weight_w8a16-00001-of-00001.safetensors", "quant_model_weight_w8a16.safetensors.index.json", "quant_model_description_w8a16.json"]);
    const index = JSON.parse(readFileSync(join(tmp, "w8a16-part", r.files[1]!), "utf8")) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    expect(Object.keys(index.weight_map).sort()).toEqual(Object.keys(JSON.parse(readFileSync(join(tmp, "w8a16-part", r.files[2]!), "utf8")) as object).filter((n) => n !== "model_quant_type").sort());
    must(await quantizeWithMsModelSlim(cfg({ a_bit: 16, mm_tensor: false, save_type: ["safe_tensor"] }), { model: hf, output: join(tmp, "w8a16-one") })());
    await sameDense("w8a16-one", "w8a16-part");
  }, 120_000);

  it("small shards (library byte limit): several files, every tensor once, read back the same", async () => {
    const ct = join(tmp, "w8a8-ct");
    const c = cfg({ mm_tensor: false, weight_activation_quant: { act_method: 1 }, save_type: ["safe_tensor"] });
    must(await oneshot({ model: hf, output: ct, recipe: must(msModelSlimRecipe(c)), dataset: data })());
    must(await compressedTensorsToMsModelSlim(ct, join(tmp, "w8a8-one"), "W8A8")());
    const files = must(await compressedTensorsToMsModelSlim(ct, join(tmp, "w8a8-sharded"), "W8A8", false, new Map(), { ascendV1: false, groupSize: null, partBytes: 200_000 })());
    const shards = files.filter((f) => f.endsWith(".safetensors"));
    expect(shards.length).toBeGreaterThan(2);
    expect(shards[0]).toBe(`quant_model_weight_w8a8-00001-of-${String(shards.length).padStart(5, "0")}.safetensors`);
    const names = (await Promise.all(shards.map((f) => readTensors(join(tmp, "w8a8-sharded", f))))).flatMap((m) => [...m.keys()]);
    expect(names.length).toBe(new Set(names).size);
    expect(readdirSync(join(tmp, "w8a8-sharded"))).toContain("quant_model_weight_w8a8.safetensors.index.json");
    await sameDense("w8a8-one", "w8a8-sharded");
  }, 120_000);
});

describe("save_type numpy", () => {
  it("is refused with the reason, nothing written", async () => {
    const r = await quantizeWithMsModelSlim(cfg({ a_bit: 16, save_type: ["numpy"] }), { model: hf, output: join(tmp, "never") })();
    expect(E.isLeft(r) && JSON.stringify(r.left)).toContain("numpy is not written by llmq");
    expect(() => readdirSync(join(tmp, "never"))).toThrow();
  });
});
