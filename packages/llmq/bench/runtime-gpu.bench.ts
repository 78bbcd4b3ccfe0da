// `pnpm -s bench runtime-gpu [--json] [--prompt 128] [--tokens 64] [--repeat 3] [--smollm2]`: prefill and decode speed
// of stories260K W4A16 g32 (compressed-tensors pack-quantized, made by oneshot in a temp dir) on @llmq/runtime-gpu's
// WebGPU adapter (whatever Dawn finds: a real GPU, or the SwiftShader software driver of Debian's chromium) beside
// llmq's CPU forward (the native backend) in the same run. Prefill: one forward of --prompt tokens to the first new
// token; decode: --tokens greedy tokens after a one-token prompt, through each side's f32 KV cache. Best of --repeat.
// --smollm2 adds SmolLM2-135M-Instruct W4A16 g64 RTN (tools/fetch_smollm2.sh, converted from its GGUF): prefill of
// --smollm2-prompt (16) tokens and decode of --smollm2-tokens (8), once each (~10 s per token on SwiftShader).
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGpuKvCache, generate as gpuGenerate, gpuStep, requestGpuContext } from "@llmq/runtime-gpu";
import { loadQuantizedDir, nodeGpu } from "@llmq/runtime-gpu/node";
import { activeBackend } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { lastValueFrom, toArray } from "rxjs";
import { benchArgs } from "../../../tooling/bench-args.js";
import { smollm2Dir } from "./smollm2-peer.js";
import { generate, lastLogits, loadForGeneration, oneshot, recipeFromYaml } from "../src/index.js";
import { openModelDir } from "../src/open-model.js";
import { ROOT, convertStories } from "../src/test-support/stories260k.js";

const { json, num, log } = benchArgs();
const promptLen = num("prompt", 128);
const tokens = num("tokens", 64);
const repeat = num("repeat", 3);
const smollm2 = process.argv.includes("--smollm2");

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

const best = async (f: () => Promise<void>, times = repeat): Promise<number> => {
  let s = Number.POSITIVE_INFINITY;
  for (let i = 0; i < times; i++) {
    const t0 = performance.now();
    await f();
    s = Math.min(s, (performance.now() - t0) / 1000);
  }
  return s;
};

interface Case {
  readonly model: string;
  readonly dir: string;
  readonly prompt: number;
  readonly tokens: number;
  readonly repeat: number;
}

/** Prefill and decode of one checkpoint on the CPU (native backend) and on the WebGPU adapter: a row each. */
const measure = async (c: Case): Promise<Record<string, unknown>[]> => {
  const prompt = Int32Array.from({ length: c.prompt }, (_, i) => 1 + ((i * 37) % 500));
  const rows: Record<string, unknown>[] = [];
  const row = (backend: string, prefill: number, decode: number) =>
    rows.push({
      bench: "runtime-gpu", model: c.model, backend, prefill_tokens: c.prompt, prefill_tokens_per_s: Number((c.prompt / prefill).toFixed(2)),
      decode_tokens: c.tokens, decode_tokens_per_s: Number((c.tokens / decode).toFixed(2)), machine: "2-core VM shared with other jobs (timings noisy)",
    });
  const cpu = right(await loadForGeneration(right(await openModelDir(c.dir)()))());
  const cpuPrefill = await best(async () => void right(lastLogits(cpu, prompt, null)), c.repeat);
  const cpuDecode = await best(async () => void (await lastValueFrom(generate(cpu, Int32Array.of(1), { maxTokens: c.tokens, eosId: null, kvCache: "f32" }).pipe(toArray()))), c.repeat);
  row(`cpu (llmq ${activeBackend()} backend)`, cpuPrefill, cpuDecode);
  await cpu.handle.close();
  process.env.XDG_RUNTIME_DIR ??= "/tmp";
  const ctx = await requestGpuContext(nodeGpu())();
  if (E.isLeft(ctx)) log(`no WebGPU adapter, GPU rows skipped: ${JSON.stringify(ctx.left)}`);
  else {
    const m = right(await loadQuantizedDir(ctx.right, c.dir)());
    await gpuStep(m, prompt.subarray(0, 2), createGpuKvCache(m, 2)); // compiles the pipelines
    const gpuPrefill = await best(async () => void (await gpuStep(m, prompt, createGpuKvCache(m, c.prompt))), c.repeat);
    const gpuDecode = await best(async () => void (await lastValueFrom(gpuGenerate(m, Int32Array.of(1), { maxTokens: c.tokens }).pipe(toArray()))), c.repeat);
    row(`webgpu (${ctx.right.adapter}${ctx.right.isFallbackAdapter ? ", software" : ""})`, gpuPrefill, gpuDecode);
  }
  return rows;
};

const quantized = async (tmp: string, fp: string, recipe: string, name: string): Promise<string> => {
  const out = join(tmp, name);
  right(await oneshot({ model: fp, output: out, recipe: right(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes", recipe), "utf8"))) })());
  return out;
};

const main = async (): Promise<void> => {
  const tmp = mkdtempSync(join(tmpdir(), "llmq-bench-gpu-"));
  try {
    await convertStories(join(tmp, "fp"));
    const dir = await quantized(tmp, join(tmp, "fp"), "stories260k-w4a16-g32.yaml", "q");
    const rows = await measure({ model: "stories260K W4A16 g32 (pack-quantized)", dir, prompt: promptLen, tokens, repeat });
    if (smollm2) {
      const s = smollm2Dir(tmp);
      if ("skipped" in s) log(`SmolLM2-135M rows skipped: ${s.skipped}`);
      else {
        const q = await quantized(tmp, s.fp, "smollm2-w4a16-g64-rtn.yaml", "smollm2-q");
        rows.push(...(await measure({ model: "SmolLM2-135M-Instruct W4A16 g64 RTN (pack-quantized)", dir: q, prompt: num("smollm2-prompt", 16), tokens: num("smollm2-tokens", 8), repeat: 1 })));
      }
    }
    for (const r of rows) {
      if (json) console.log(JSON.stringify(r));
      else log(`${String(r.model).padEnd(54)} ${String(r.backend).padEnd(48)} prefill ${r.prefill_tokens_per_s} tok/s, decode ${r.decode_tokens_per_s} tok/s`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
};

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
