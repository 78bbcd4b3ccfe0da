import { cpSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type MsQuantConfig, decodeMsQuantConfig } from "@llmq/schemes";
import { writeSafetensors } from "@llmq/serialization";
import { type Tensor, f32, toFloat32 } from "@llmq/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "./dataset.js";
import { msAutoDisable } from "./ms-auto-disable.js";
import { quantizeWithMsModelSlim } from "./ms-model-slim.js";
import { readTensors } from "./test-support/read-tensors.js";
import { must } from "./test-support/stories260k.js";
import { useStoriesWindows } from "./test-support/stories-windows.js";

// disable_level "L<n>" on stories260K: msModelSlim's range_param ranking of the float model's linear inputs. A linear
// given a planted outlier input (one token's value of one up_proj channel blown up, so the down_proj reading it sees a
// spike) must be the one rolled back, and it must not have been the top linear before the plant.

const PLANTED = "model.layers.3.mlp.down_proj";
let tmp = "";
let hf = "";
let planted = "";
let data: Dataset;

const cfg = (k: Record<string, unknown>): MsQuantConfig => must(decodeMsQuantConfig(k));

/** A copy of `src` whose layer-3 up_proj row 5 is multiplied by `factor`: down_proj's input channel 5 spikes. */
const plant = async (src: string, dst: string, factor: number): Promise<void> => {
  cpSync(src, dst, { recursive: true });
  const t = new Map<string, Tensor>(await readTensors(join(src, "model.safetensors")));
  const w = toFloat32(t.get("model.layers.3.mlp.up_proj.weight")!);
  const d = Float32Array.from(w.data);
  const k = w.shape[1]!;
  for (let j = 0; j < k; j++) d[5 * k + j]! *= factor;
  t.set("model.layers.3.mlp.up_proj.weight", f32(d, [...w.shape]));
  must(await writeSafetensors(join(dst, "model.safetensors"), [...t.entries()])());
};

const fx = useStoriesWindows("llmq-msl-auto-");
beforeAll(async () => {
  ({ tmp, hf, data } = fx);
  planted = join(tmp, "planted");
  await plant(hf, planted, 40);
}, 120_000);

describe("msAutoDisable (disable_level L<n>)", () => {
  it("ranks the planted linear first, and only after the plant; lm_head (the last linear) is never picked", async () => {
    const plain = must(await msAutoDisable(cfg({ disable_level: "L3" }), hf, data, join(tmp, "f1"))());
    const withPlant = must(await msAutoDisable(cfg({ disable_level: "L3" }), planted, data, join(tmp, "f2"))());
    expect(plain.rangeParams.size).toBe(36);
    // lm_head has the largest range_param of the float model, but disable_last_linear rolls it back already
    expect(Math.max(...plain.rangeParams.values())).toBe(plain.rangeParams.get("lm_head"));
    expect(plain.names).toEqual(["model.layers.2.mlp.down_proj", "model.layers.1.mlp.down_proj", "model.layers.0.mlp.down_proj"]);
    expect(withPlant.names[0]).toBe(PLANTED);
    expect(withPlant.rangeParams.get(PLANTED)!).toBeGreaterThan(5 * plain.rangeParams.get(PLANTED)!);
    const keepLast = must(await msAutoDisable(cfg({ disable_level: "L1", disable_last_linear: false, disable_names: [PLANTED] }), planted, data, join(tmp, "f3"))());
    expect(keepLast.names).toEqual(["lm_head"]);
  }, 120_000);

  it("quantizeWithMsModelSlim keeps the rolled-back linear FLOAT in the description and unquantized", async () => {
    const out = join(tmp, "w8a8-dyn-l1");
    const r = must(await quantizeWithMsModelSlim(cfg({ is_dynamic: true, mm_tensor: false, disable_level: "L1" }), { model: planted, output: out, dataset: data })());
    expect(r.autoDisabled).toEqual([PLANTED]);
    expect(r.warnings.join("\n")).toContain(`disable_level L1: kept float ${PLANTED} (range_param`);
    const desc = JSON.parse(readFileSync(join(out, r.files[1]!), "utf8")) as Record<string, string>;
    const t = await readTensors(join(out, r.files[0]!));
    expect(desc[`${PLANTED}.weight`]).toBe("FLOAT");
    expect(t.get(`${PLANTED}.weight`)!.dtype).toBe("f32");
    expect(t.has(`${PLANTED}.weight_scale`)).toBe(false);
    const src = await readTensors(join(planted, "model.safetensors"));
    expect(Buffer.from(toFloat32(t.get(`${PLANTED}.weight`)!).data.buffer).equals(Buffer.from(toFloat32(src.get(`${PLANTED}.weight`)!).data.buffer))).toBe(true);
    const quantized = Object.keys(desc).filter((n) => n.endsWith(".weight_scale"));
    expect(quantized).toHaveLength(34);
    expect(desc["model.layers.2.mlp.down_proj.weight"]).toBe("W8A8_DYNAMIC");
  }, 120_000);

  it("data-free runs fall back to L0 with a warning, as msModelSlim's Calibrator does", async () => {
    const r = must(await quantizeWithMsModelSlim(cfg({ a_bit: 16, mm_tensor: false, disable_level: "L2" }), { model: hf, output: join(tmp, "w8a16-free") })());
    expect(r.autoDisabled).toEqual([]);
    expect(r.warnings.join("\n")).toContain("disable_level L2: no calibration data (data-free), so disable_level is L0");
  }, 120_000);
});
