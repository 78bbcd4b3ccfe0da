import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GpuContext, type GpuModel, formatGpuError, generate as gpuGenerate, requestGpuContext } from "@llmq/runtime-gpu";
import { loadQuantizedDir, nodeGpu } from "@llmq/runtime-gpu/node";
import * as E from "fp-ts/lib/Either.js";
import { lastValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generate, loadForGeneration, modelLogits, oneshot, recipeFromYaml } from "./index.js";
import { openModelDir } from "./open-model.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// @llmq/runtime-gpu (WGSL kernels on WebGPU; a software SwiftShader adapter in CI) against llmq's CPU forward on the
// same compressed-tensors checkpoint: the same greedy tokens, and every step's logits close (1e-3 relative for W4A16).

process.env.XDG_RUNTIME_DIR ??= "/tmp";
const gpuE = await requestGpuContext(nodeGpu())();
if (E.isLeft(gpuE)) console.warn(`runtime-gpu comparison SKIPPED: ${formatGpuError(gpuE.left)}`);
const gpu: GpuContext | null = E.isRight(gpuE) ? gpuE.right : null;

let tmp = "";
let fp = "";

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-runtime-gpu-"));
  fp = join(tmp, "fp");
  await convertStories(fp);
}, 60_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const quantize = async (recipeFile: string, name: string): Promise<string> => {
  const out = join(tmp, name);
  must(await oneshot({ model: fp, output: out, recipe: must(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes", recipeFile), "utf8"))) })());
  return out;
};

/** Largest |gpu − cpu| over the largest |cpu| of one row of logits. */
const rowErr = (a: Float32Array, b: Float32Array): number => {
  let err = 0;
  let mag = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    mag = Math.max(mag, Math.abs(b[i]!));
  }
  return err / mag;
};

/** Greedy tokens of llmq's CPU forward and of the GPU, and the largest relative logits difference over all steps. */
const compare = async (dir: string, maxTokens: number): Promise<{ cpu: number[]; gpu: number[]; worst: number }> => {
  const prompt = Int32Array.of(1, 403, 407, 261, 378); // BOS "Once upon a time"
  const cpuModel = must(await loadForGeneration(must(await openModelDir(dir)()))());
  const cpu = (await lastValueFrom(generate(cpuModel, prompt, { maxTokens, eosId: null, kvCache: "f32" }).pipe(toArray()))).map((r) => must(r).id);
  const model: GpuModel = must(await loadQuantizedDir(gpu!, dir)());
  const steps = await lastValueFrom(gpuGenerate(model, prompt, { maxTokens, logits: true }).pipe(toArray()));
  // the CPU logits of every position of the whole sequence at once; GPU step i predicted position prompt + i
  const seq = Int32Array.from([...prompt, ...cpu.slice(0, -1)]);
  const logits = must(await modelLogits(cpuModel.handle, seq)());
  await cpuModel.handle.close();
  const v = model.config.vocab_size;
  const worst = Math.max(...steps.map((s, i) => rowErr(s.logits!, logits.data.subarray((prompt.length - 1 + i) * v, (prompt.length + i) * v))));
  return { cpu, gpu: steps.map((s) => s.id), worst };
};

describe.skipIf(gpu === null)("runtime-gpu against llmq's CPU forward (stories260K)", () => {
  it("W4A16 g32: 200 greedy tokens identical, every step's logits within 1e-3 relative", async () => {
    const r = await compare(await quantize("stories260k-w4a16-g32.yaml", "w4a16"), 200);
    expect(r.gpu).toEqual(r.cpu);
    expect(r.worst).toBeLessThan(1e-3);
  }, 600_000);

  // The 1e-3 logits bound does not hold for W8A8 (median 1.4e-2 on stories260K): quantizing the inputs of one kind of
  // linear at a time on both sides, only down_proj's moves the logits (8e-3; q_proj 4.5e-6, the rest ≤ 5e-7). Its input
  // is siluMul's output, whose WGSL exp is not correctly rounded, and int8 rounding turns ulp differences there into
  // whole steps. The tokens still agree; the bound below only catches a broken path.
  it("W8A8 (int8 channel weights, dynamic per-token int8 inputs): 200 greedy tokens identical, logits within 5e-2", async () => {
    const r = await compare(await quantize("stories260k-w8a8.yaml", "w8a8"), 200);
    expect(r.gpu).toEqual(r.cpu);
    expect(r.worst).toBeLessThan(5e-2);
  }, 600_000);

  it("refuses what the kernels do not implement yet (FP8 float-quantized) with a message", async () => {
    const out = join(tmp, "fp8");
    const recipe = must(recipeFromYaml("quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {targets: [Linear], scheme: FP8_DYNAMIC, ignore: [lm_head]}\n"));
    must(await oneshot({ model: fp, output: out, recipe })());
    const r = await loadQuantizedDir(gpu!, out)();
    expect(E.isLeft(r) && formatGpuError(r.left)).toMatch(/not supported by @llmq\/runtime-gpu yet: .*FP8/);
  }, 120_000);
});
