import { join } from "node:path";
import { decodeMsQuantConfig } from "@llmq/schemes";
import { beforeAll, describe, expect, it } from "vitest";
import { evaluate, kvCacheLabel, layerKvFormat, oneshot, openModelDir } from "./index.js";
import type { Dataset } from "./dataset.js";
import { msModelSlimRecipe } from "./ms-model-slim-recipe.js";
import { quantizeWithMsModelSlim } from "./ms-model-slim.js";
import { must } from "./test-support/stories260k.js";
import { useStoriesWindows } from "./test-support/stories-windows.js";

// `llmq eval` on an msModelSlim directory runs it as a runtime would: weights dequantized, W8A8 inputs quantized with
// the layout's input_scale / input_offset (the same numbers as the compressed-tensors checkpoint of the same modifiers,
// so the two evaluate identically), and with C8 the KV cache holding int8 codes per KV channel — which must change
// the result against the same model without C8.

let tmp = "";
let hf = "";
let data: Dataset;

const fx = useStoriesWindows("llmq-msl-eval-");
beforeAll(async () => {
  ({ tmp, hf, data } = fx);
}, 120_000);

const evalOf = async (dir: string) => {
  const [m, r] = [must(await openModelDir(dir)()), must(await openModelDir(hf)())];
  try {
    return { result: must(await evaluate(m, r, data)()), label: kvCacheLabel(layerKvFormat(m, 0)) };
  } finally {
    await m.close();
    await r.close();
  }
};

describe("llmq eval of msModelSlim directories", () => {
  it("W8A8 equals its compressed-tensors checkpoint; W8A8 + C8 applies the int8 KV cache and differs", async () => {
    const base = { mm_tensor: false, weight_activation_quant: { act_method: 1 }, save_type: ["safe_tensor"] };
    const c = must(decodeMsQuantConfig(base));
    const ck = must(decodeMsQuantConfig({ ...base, kv_quant: { kv_sym: false } }));
    const [ms, msKv, ct] = [join(tmp, "w8a8"), join(tmp, "w8a8-c8"), join(tmp, "w8a8-ct")];
    must(await quantizeWithMsModelSlim(c, { model: hf, output: ms, dataset: data })());
    must(await quantizeWithMsModelSlim(ck, { model: hf, output: msKv, dataset: data })());
    must(await oneshot({ model: hf, output: ct, recipe: must(msModelSlimRecipe(c)), dataset: data })());
    const [a, b, k] = [await evalOf(ms), await evalOf(ct), await evalOf(msKv)];
    expect(a.label).toBe("none");
    expect(a.result.kld).toEqual(b.result.kld);
    expect(a.result.perplexity).toBe(b.result.perplexity);
    expect(k.label).toBe("msModelSlim C8 (int8, a scale and offset per KV channel) from the checkpoint's kv_cache_scale / kv_cache_offset");
    expect(k.result.kld!.mean).not.toBe(a.result.kld!.mean);
    expect(k.result.kld!.mean).toBeGreaterThan(0);
  }, 180_000);
});
