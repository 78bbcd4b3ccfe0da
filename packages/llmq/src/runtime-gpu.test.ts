import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type GpuContext, type GpuModel, createGpuKvCache, formatGpuError, generate as gpuGenerate, gpuStep, requestGpuContext } from "@llmq/runtime-gpu";
import { loadQuantizedDir, nodeGpu } from "@llmq/runtime-gpu/node";
import { openCheckpoint } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { lastValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type KvCacheFormat, createKvCache } from "@llmq/kv-cache";
import { type Dataset, type LoadedModel, convertCommand, generate, hfQuantizeCommand, lastLogits, layerKvFormat, loadDataset, loadForGeneration, oneshot, optionalTokenizer, recipeFromYaml, sampleToken } from "./index.js";
import { openModelDir } from "./open-model.js";
import { relErr } from "./test-support/rel-err.js";
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

const quantize = async (recipeFile: string, name: string, dataset?: Dataset, model = fp): Promise<string> => {
  const out = join(tmp, name);
  must(await oneshot({ model, output: out, recipe: must(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes", recipeFile), "utf8"))), ...(dataset ? { dataset } : {}) })());
  return out;
};

/** The calibration windows kv-cache.test.ts uses for stories260K (GPTQ and the k/v scale observers need data). */
const calibration = async (): Promise<Dataset> => {
  const file = new URL("../fixtures/transforms/stories260k-windows.json", import.meta.url).pathname;
  const windows = JSON.parse(readFileSync(file, "utf8")) as number[][];
  const tok = must(await optionalTokenizer(fp)());
  return must(await loadDataset(file, tok, { numSamples: windows.length, seqLen: windows[0]!.length, sampling: "sequential", vocabSize: 512 })());
};

const PROMPT = Int32Array.of(1, 403, 407, 261, 378); // BOS "Once upon a time"

interface Comparison {
  readonly cpu: number[];
  readonly gpu: number[];
  /** The first step whose free-running greedy tokens differ, or −1. */
  readonly diverges: number;
  /** Teacher-forced (the GPU fed the CPU's tokens): the largest relative logits difference over all steps. */
  readonly worst: number;
  /** Teacher-forced steps whose argmax differs although the CPU's top-2 margin exceeds twice the logits difference. */
  readonly unexplained: number[];
}

/** The KV cache both sides use: the checkpoint's kv_cache_scheme (else f32), or f32 / f16 / dynamic fp8 / int8 (`--kv-cache`). */
type CacheChoice = "checkpoint" | "f32" | "f16" | "fp8" | "int8";

/** Layer i's cache format on the CPU for a choice, as `llmq generate` picks it. */
const cpuKvFormat = (m: LoadedModel, i: number, kv: CacheChoice): KvCacheFormat => {
  if (kv === "f16" || kv === "f32") return { kind: kv };
  if (kv === "fp8" || kv === "int8") return { kind: "dynamic", type: kv };
  return layerKvFormat(m.handle, i) ?? { kind: "f32" };
};

/**
 * The CPU's greedy tokens and each step's logits, run as `llmq generate` runs it: prefill, then one token at a time
 * over a KV cache as chosen.
 */
const cpuRun = async (dir: string, maxTokens: number, kv: CacheChoice = "checkpoint", prompt = PROMPT): Promise<{ tokens: number[]; logits: Float32Array[] }> => {
  const m = must(await loadForGeneration(must(await openModelDir(dir)()))());
  const c = m.handle.config;
  const formats = m.layers.map((_, i) => cpuKvFormat(m, i, kv));
  const caches = createKvCache(formats, { layers: c.num_hidden_layers, kvHeads: c.num_key_value_heads, headDim: c.head_dim, capacity: prompt.length + maxTokens });
  const tokens: number[] = [];
  const logits: Float32Array[] = [];
  for (let next = prompt; tokens.length < maxTokens; next = Int32Array.of(tokens[tokens.length - 1]!)) {
    logits.push(must(lastLogits(m, next, caches)));
    tokens.push(sampleToken(logits[logits.length - 1]!, 0, 1, 0));
  }
  await m.handle.close();
  return { tokens, logits };
};

const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);
const top2Margin = (l: Float32Array): number => {
  const [x, y] = [...l].sort((p, q) => q - p);
  return x! - y!;
};

/**
 * llmq's CPU forward against the GPU on the same checkpoint: free-running greedy tokens (each side its own), and the
 * GPU fed the CPU's tokens step by step, so every step's logits compare the same computation.
 */
const compare = async (dir: string, maxTokens: number, prompt = PROMPT, kv: CacheChoice = "checkpoint"): Promise<Comparison> => {
  const cpu = await cpuRun(dir, maxTokens, kv, prompt);
  const model: GpuModel = must(await loadQuantizedDir(gpu!, dir)());
  const override = kv === "checkpoint" ? {} : { kvCache: kv };
  const free = (await lastValueFrom(gpuGenerate(model, prompt, { maxTokens, ...override }).pipe(toArray()))).map((s) => s.id);
  const cache = createGpuKvCache(model, prompt.length + maxTokens, override.kvCache);
  const forced: Float32Array[] = [];
  for (let i = 0; i < maxTokens; i++) forced.push((await gpuStep(model, i === 0 ? prompt : Int32Array.of(cpu.tokens[i - 1]!), cache, true)).logits!);
  const unexplained = forced.flatMap((l, i) => {
    const ref = cpu.logits[i]!;
    return sampleToken(l, 0, 1, 0) !== cpu.tokens[i] && top2Margin(ref) > 2 * maxAbsDiff(l, ref) ? [i] : [];
  });
  return {
    cpu: cpu.tokens,
    gpu: free,
    diverges: free.findIndex((t, i) => t !== cpu.tokens[i]),
    worst: Math.max(...forced.map((l, i) => relErr(l, cpu.logits[i]!))),
    unexplained,
  };
};

/**
 * How far the CPU's own logits over an f32 cache are from its logits over the cache chosen (relative): the GPU/CPU
 * difference must be far below it for the comparison to show the cache in use on both sides.
 */
const kvEffectOf = async (dir: string, kv: CacheChoice): Promise<{ kvEffect: number; f32Tokens: number[] }> => {
  const [f32, quantized] = [await cpuRun(dir, 200, "f32"), await cpuRun(dir, 200, kv)];
  return { kvEffect: Math.max(...quantized.logits.map((l, i) => relErr(f32.logits[i]!, l))), f32Tokens: f32.tokens };
};

/** `llmq generate`'s greedy tokens (its own cache construction) with a `--kv-cache` override. */
const cliTokens = async (dir: string, kv: "f16" | "fp8" | "int8"): Promise<number[]> => {
  const cpu = must(await loadForGeneration(must(await openModelDir(dir)()))());
  const ids = (await lastValueFrom(generate(cpu, PROMPT, { maxTokens: 200, eosId: null, kvCache: kv }).pipe(toArray()))).map((t) => must(t).id);
  await cpu.handle.close();
  return ids;
};

/** exact: 200 identical tokens and logits within 1e-3; else as W8A8: within 1e-1, no unexplained argmax change. */
const expectAgreement = (r: Comparison, exact: boolean): void => {
  if (exact) {
    expect(r.gpu).toEqual(r.cpu);
    expect(r.worst).toBeLessThan(1e-3);
  } else {
    expect(r.worst).toBeLessThan(1e-1);
    expect(r.unexplained).toEqual([]);
  }
};

const report = (name: string, r: Comparison): void =>
  console.log(
    `${name}: free-running greedy tokens ${r.diverges < 0 ? `identical for all ${r.cpu.length}` : `identical for the first ${r.diverges}`}; teacher-forced worst relative logits difference ${r.worst.toExponential(2)}`,
  );

describe.skipIf(gpu === null)("runtime-gpu against llmq's CPU forward (stories260K)", () => {

  // Weight-only schemes: the GPU and the CPU differ by f32 summation order only. NVFP4's fp4 inputs are quantized too
  // (bit-identically, gpu-kernels.test.ts), but on a grid so coarse (8 magnitudes) that the GPU's ulp-different inputs
  // crossed no rounding boundary on this checkpoint and prompt.
  for (const [name, recipe, calibrate] of [
    ["W4A16 g32", "stories260k-w4a16-g32.yaml", false],
    ["W4A16 asymmetric g32 (packed zero points)", "stories260k-w4a16-asym-g32.yaml", false],
    ["fp8 weights with one scale per tensor (weight-only)", "stories260k-fp8-tensor-w8a16.yaml", false],
    ["NVFP4A16 (fp4 weights, fp8 group scales, global scale)", "stories260k-nvfp4a16.yaml", false],
    ["NVFP4 (fp4 weights, fp4 inputs per group of 16 under a calibrated global scale)", "stories260k-nvfp4.yaml", true],
  ] as const)
    it(`${name}: 200 greedy tokens identical, every step's logits within 1e-3 relative`, async () => {
      const r = await compare(await quantize(recipe, recipe, calibrate ? await calibration() : undefined), 200);
      report(name, r);
      expect(r.gpu).toEqual(r.cpu);
      expect(r.worst).toBeLessThan(1e-3);
    }, 600_000);

  // GPTQ with desc_act (act order): llmq's GPTQConfig path writes the GPTQ v2 layout with g_idx, each column's group
  // in activation order (the MLP stays dense: 172 features do not pack). The GPU repacks it and looks groups up by g_idx.
  it("GPTQ W4A16 g32 asymmetric with desc_act (g_idx): 200 greedy tokens identical, every step's logits within 1e-3 relative", async () => {
    const out = join(tmp, "gptq-act");
    const cfg = `{"quant_method": "gptq", "bits": 4, "group_size": 32, "sym": false, "desc_act": true, "format": "gptq_v2", "modules_in_block_to_quantize": [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"]]}`;
    const calibration = { dataset: join(ROOT, "fixtures/wikitext-2/valid.txt"), numSamples: 16, seqLen: 128, seed: 42, given: [] };
    must(await hfQuantizeCommand({ model: fp, output: out, hfConfig: cfg, overwrite: false, calibration })());
    const ck = must(await openCheckpoint(out)());
    const gIdx = must(await ck.read("model.layers.0.self_attn.q_proj.g_idx")()).data as Int32Array;
    await ck.close();
    expect(gIdx.some((g, k) => g !== Math.floor(k / 32))).toBe(true); // the groups really are in activation order
    const r = await compare(out, 200);
    report("GPTQ W4A16 g32 asym desc_act", r);
    expect(r.gpu).toEqual(r.cpu);
    expect(r.worst).toBeLessThan(1e-3);
  }, 600_000);

  // An f16 model: its scales are f16 and the dequantized weights round to f16 (bit-identically to the decompressor:
  // gpu-kernels.test.ts reads them back), which the GPU refused before.
  it("W4A16 asymmetric g32 of the model in f16 (f16 scales): 200 greedy tokens identical, every step's logits within 1e-3 relative", async () => {
    const fp16 = join(tmp, "fp16");
    await convertStories(fp16, "f16");
    const r = await compare(await quantize("stories260k-w4a16-asym-g32.yaml", "asym-f16", undefined, fp16), 200);
    report("W4A16 asymmetric g32, f16 model", r);
    expect(r.gpu).toEqual(r.cpu);
    expect(r.worst).toBeLessThan(1e-3);
  }, 600_000);

  // Quantized inputs: the input quantizers and siluMul are bit-exact (gpu-kernels.test.ts), but the values feeding the
  // quantizers are not (GPU matmuls and RMSNorm sum in f32 in their own order, the CPU in f64 over 8 lanes; attention's
  // exp), and an ulp across an int8 / fp8 rounding boundary moves that input by a whole step. So the logits differ by
  // ~1e-2 (measured up to 4.7e-2), and the free-running tokens part where the CPU's top two logits are closer than
  // that. Asserted: every teacher-forced step within 1e-1 (a broken path is off by ~1), and the argmax identical
  // wherever the CPU's top-2 margin exceeds twice the logits difference.
  for (const [name, recipe] of [
    ["W8A8 (int8 channel weights, dynamic per-token int8 inputs)", "stories260k-w8a8.yaml"],
    ["W8A8 with asymmetric int8 weights (int8 zero points)", "stories260k-w8a8-asym.yaml"],
    ["FP8_DYNAMIC (fp8 channel weights, dynamic per-token fp8 inputs)", "stories260k-fp8-dynamic.yaml"],
  ] as const)
    it(`${name}: teacher-forced logits within 1e-1 and the same argmax wherever the margin exceeds the difference`, async () => {
      const r = await compare(await quantize(recipe, recipe), 200);
      report(name, r);
      expect(r.worst).toBeLessThan(1e-1);
      expect(r.unexplained).toEqual([]);
    }, 600_000);

  // A calibrated KV cache (kv_cache_scheme: k_scale / v_scale): the GPU stores the codes and dequantizes them as llmq's
  // CPU cache does (bit-identical codes and values for the same keys and values: gpu-kernels.test.ts). Per tensor the
  // comparison is then the weight-only one's. Per head it is not: the keys and values written to the cache differ from
  // the CPU's by f32 ulps (matmul summation order, as for W8A8), and one of them (layer 2, prompt) lies on an fp8
  // rounding boundary, so its code is one fp8 step apart and the logits differ by ~5e-3 from the prompt on (every
  // cached value of layers 0–1 is identical; the free-running 200 tokens still are). Asserted there as for W8A8.
  // Checked too: the quantized cache is in use on both sides (the CPU's logits over an f32 cache are much further from
  // its quantized-cache ones than the GPU's are), and kvCache "f32" decodes the CPU's f32-cache tokens.
  for (const [name, recipe, exact] of [
    ["W4A16 g32 GPTQ, fp8 KV cache per tensor", "stories260k-w4a16-g32-gptq-kv-fp8.yaml", true],
    ["W4A16 g32 GPTQ, int8 KV cache per tensor", "stories260k-w4a16-g32-gptq-kv-int8.yaml", true],
    ["W4A16 g32 GPTQ, fp8 KV cache per head", "stories260k-w4a16-g32-gptq-kv-fp8-head.yaml", false],
  ] as const)
    it(`${name}: ${exact ? "200 greedy tokens identical, every step's logits within 1e-3 relative" : "teacher-forced logits within 1e-1, the same argmax wherever the margin exceeds the difference"}`, async () => {
      const dir = await quantize(recipe, recipe, await calibration());
      const model: GpuModel = must(await loadQuantizedDir(gpu!, dir)());
      expect(model.layers.every((l) => l.kv !== null)).toBe(true);
      const r = await compare(dir, 200);
      const { kvEffect, f32Tokens } = await kvEffectOf(dir, "checkpoint");
      report(name, r);
      console.log(`${name}: the CPU's own logits over an f32 cache differ from its quantized-cache ones by up to ${kvEffect.toExponential(2)} relative`);
      expect(r.worst).toBeLessThan(kvEffect / 10);
      // kvCache "f32" on the GPU is `--kv-cache f32` on the CPU: the weight-only comparison again
      const f32Gpu = (await lastValueFrom(gpuGenerate(model, PROMPT, { maxTokens: 200, kvCache: "f32" }).pipe(toArray()))).map((t) => t.id);
      expect(f32Gpu).toEqual(f32Tokens);
      expectAgreement(r, exact);
    }, 600_000);

  // f16 rounds every cached value to 11 bits, so some key or value that reaches the cache an f32 ulp away from the CPU's
  // (summation order) lands one f16 step apart: measured 1.03e-3 relative (tokens all identical), against 1.9e-6 with
  // the f32 cache. Asserted: logits within 1e-2 and the argmax wherever the margin exceeds the difference.
  it("an f16 KV cache (generate's kvCache \"f16\" = llmq generate --kv-cache f16), W4A16 g32: logits within 1e-2, the same argmax wherever the margin exceeds the difference", async () => {
    const dir = await quantize("stories260k-w4a16-g32.yaml", "w4a16-f16-kv");
    const r = await compare(dir, 200, PROMPT, "f16");
    report("W4A16 g32, f16 KV cache", r);
    expect(await cliTokens(dir, "f16")).toEqual(r.cpu); // the comparison's CPU side is llmq generate's
    expect(r.worst).toBeLessThan(1e-2);
    expect(r.unexplained).toEqual([]);
  }, 600_000);

  // The dynamic fp8 / int8 overrides (a scale per token and KV head, computed as each token is appended): codes and
  // scales are the CPU's for the same keys and values (gpu-kernels.test.ts); here the keys and values come from the
  // GPU's matmuls, f32 ulps from the CPU's. fp8: the head's largest |x| divides to ±448, a code, so an ulp moves no code
  // (measured 8.2e-6, 200 tokens identical). int8: s = amax / 127.5, so the head's most negative value divides to
  // −127.5, the tie between codes −128 and −127 (clamped at 127 on the positive side): an ulp on it flips its code. Measured
  // after the prompt (throwaway diagnostic): in layer 0 exactly one cached value differs by a whole step, the keys' most
  // negative of one head (an ulp apart before quantization, x / s at −127.5); later layers inherit it. Logits up to
  // 3.3e-2 and the free-running tokens part at step 90, so int8 is asserted as W8A8 is: within 1e-1 and the argmax
  // wherever the CPU's top-2 margin exceeds twice the difference.
  for (const [kv, exact] of [
    ["fp8", true],
    ["int8", false],
  ] as const)
    it(`a dynamic ${kv} KV cache (generate's kvCache "${kv}" = llmq generate --kv-cache ${kv}), W4A16 g32: ${exact ? "200 greedy tokens identical, every step's logits within 1e-3 relative" : "logits within 1e-1, the same argmax wherever the margin exceeds the difference"}`, async () => {
      const dir = await quantize("stories260k-w4a16-g32.yaml", `w4a16-${kv}-kv`);
      const r = await compare(dir, 200, PROMPT, kv);
      const { kvEffect } = await kvEffectOf(dir, kv);
      report(`W4A16 g32, dynamic ${kv} KV cache`, r);
      console.log(`dynamic ${kv}: the CPU's own logits over an f32 cache differ from its ${kv}-cache ones by up to ${kvEffect.toExponential(2)} relative`);
      expect(await cliTokens(dir, kv)).toEqual(r.cpu); // the comparison's CPU side is llmq generate's
      expect(r.worst).toBeLessThan(kvEffect / 10); // the dynamic cache is in use on both sides
      expectAgreement(r, exact);
    }, 600_000);

  it("temperature / top-p sampling: the same 100 tokens as llmq generate for the same seed (W4A16 g32)", async () => {
    const dir = await quantize("stories260k-w4a16-g32.yaml", "w4a16-sampled");
    const opts = { maxTokens: 100, temperature: 0.8, topP: 0.9, seed: 7 };
    const m = must(await loadForGeneration(must(await openModelDir(dir)()))());
    const cpu = (await lastValueFrom(generate(m, PROMPT, { ...opts, eosId: null, kvCache: "f32" }).pipe(toArray()))).map((r) => must(r).id);
    await m.handle.close();
    const model: GpuModel = must(await loadQuantizedDir(gpu!, dir)());
    const sampled = (await lastValueFrom(gpuGenerate(model, PROMPT, opts).pipe(toArray()))).map((t) => t.id);
    const greedy = (await lastValueFrom(gpuGenerate(model, PROMPT, { maxTokens: 100 }).pipe(toArray()))).map((t) => t.id);
    expect(sampled).toEqual(cpu);
    expect(sampled).not.toEqual(greedy); // the draw did something
    const other = (await lastValueFrom(gpuGenerate(model, PROMPT, { ...opts, seed: 8 }).pipe(toArray()))).map((t) => t.id);
    expect(other).not.toEqual(sampled);
  }, 600_000);

  it("refuses what the kernels do not implement yet (MXFP4) with a message", async () => {
    const out = join(tmp, "mxfp4");
    const recipe = must(recipeFromYaml("quant_stage:\n  quant_modifiers:\n    QuantizationModifier: {targets: [\"re:.*(q|k|v|o|gate|up)_proj$\"], scheme: MXFP4A16, ignore: [lm_head]}\n"));
    must(await oneshot({ model: fp, output: out, recipe })());
    const r = await loadQuantizedDir(gpu!, out)();
    expect(E.isLeft(r) && formatGpuError(r.left)).toMatch(/not supported by @llmq\/runtime-gpu yet: .*mxfp4-pack-quantized/);
  }, 120_000);
});

// SmolLM2-135M-Instruct (fetched by tools/fetch_smollm2.sh into .models/: tied embeddings, GQA 9/3 heads, head_dim 64,
// vocab 49152), converted from its GGUF and quantized W4A16 g64 RTN (the W4A16 preset's group of 128 does not divide
// its 576 input features) against llmq's CPU forward. About 15 minutes on the SwiftShader software adapter of a shared
// 2-core machine (~10 s per GPU token), so it runs only with LLMQ_SMOLLM2_GPU=1.
const SMOLLM2 = join(ROOT, ".models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
const smolSkip =
  gpu === null
    ? "no WebGPU adapter"
    : !existsSync(SMOLLM2)
      ? `${SMOLLM2} is absent (bash tools/fetch_smollm2.sh)`
      : process.env.LLMQ_SMOLLM2_GPU !== "1"
        ? "set LLMQ_SMOLLM2_GPU=1 to run it (about 15 minutes on the SwiftShader software adapter)"
        : null;
if (smolSkip !== null) console.warn(`runtime-gpu SmolLM2-135M W4A16 comparison SKIPPED: ${smolSkip}`);

describe.skipIf(smolSkip !== null)("runtime-gpu against llmq's CPU forward (SmolLM2-135M)", () => {
  it("W4A16 g64: 40 greedy tokens identical, every step's logits within 1e-3 relative", async () => {
    const f32 = join(tmp, "smollm2-f32");
    must(await convertCommand({ from: "gguf", model: SMOLLM2, output: f32, overwrite: false })());
    const dir = await quantize("smollm2-w4a16-g64-rtn.yaml", "smollm2-w4a16-g64", undefined, f32);
    const t0 = performance.now();
    const r = await compare(dir, 40, Int32Array.of(504, 3575, 282, 4649, 314)); // "The capital of France is"
    report("SmolLM2-135M W4A16 g64", r);
    console.log(`SmolLM2-135M W4A16 g64: CPU run + GPU free-running and teacher-forced 40 tokens each in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    expect(r.gpu).toEqual(r.cpu);
    expect(r.worst).toBeLessThan(1e-3);
  }, 3_600_000);
});
