// `pnpm -s bench runtime-gpu [--json] [--prompt 128] [--tokens 64] [--repeat 3]`: prefill and decode speed of
// stories260K W4A16 g32 (compressed-tensors pack-quantized, made by oneshot in a temp dir) on @llmq/runtime-gpu's
// WebGPU adapter (whatever Dawn finds: a real GPU, or the SwiftShader software driver of Debian's chromium) beside
// llmq's CPU forward (the native backend) in the same run. Prefill: one forward of --prompt tokens to the first new
// token; decode: --tokens greedy tokens after a one-token prompt, through each side's f32 KV cache. Best of --repeat.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createGpuKvCache, generate as gpuGenerate, gpuStep, requestGpuContext } from "@llmq/runtime-gpu";
import { loadQuantizedDir, nodeGpu } from "@llmq/runtime-gpu/node";
import { activeBackend } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { lastValueFrom, toArray } from "rxjs";
import { benchArgs } from "../../../tooling/bench-args.js";
import { generate, lastLogits, loadForGeneration, oneshot, recipeFromYaml } from "../src/index.js";
import { openModelDir } from "../src/open-model.js";
import { ROOT, convertStories } from "../src/test-support/stories260k.js";

const { json, num, log } = benchArgs();
const promptLen = num("prompt", 128);
const tokens = num("tokens", 64);
const repeat = num("repeat", 3);

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

const best = async (f: () => Promise<void>): Promise<number> => {
  let s = Number.POSITIVE_INFINITY;
  for (let i = 0; i < repeat; i++) {
    const t0 = performance.now();
    await f();
    s = Math.min(s, (performance.now() - t0) / 1000);
  }
  return s;
};

const main = async (): Promise<void> => {
  const tmp = mkdtempSync(join(tmpdir(), "llmq-bench-gpu-"));
  try {
    await convertStories(join(tmp, "fp"));
    const recipe = right(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes/stories260k-w4a16-g32.yaml"), "utf8")));
    right(await oneshot({ model: join(tmp, "fp"), output: join(tmp, "q"), recipe })());
    const prompt = Int32Array.from({ length: promptLen }, (_, i) => 1 + ((i * 37) % 500));
    const rows: Record<string, unknown>[] = [];
    const row = (backend: string, prefill: number, decode: number) =>
      rows.push({
        bench: "runtime-gpu", model: "stories260K W4A16 g32 (pack-quantized)", backend, prefill_tokens: promptLen, prefill_tokens_per_s: Number((promptLen / prefill).toFixed(1)),
        decode_tokens: tokens, decode_tokens_per_s: Number((tokens / decode).toFixed(1)), machine: "2-core VM shared with other jobs (timings noisy)",
      });

    const cpu = right(await loadForGeneration(right(await openModelDir(join(tmp, "q"))()))());
    const cpuPrefill = await best(async () => void right(lastLogits(cpu, prompt, null)));
    const cpuDecode = await best(async () => void (await lastValueFrom(generate(cpu, Int32Array.of(1), { maxTokens: tokens, eosId: null, kvCache: "f32" }).pipe(toArray()))));
    row(`cpu (llmq ${activeBackend()} backend)`, cpuPrefill, cpuDecode);
    await cpu.handle.close();

    process.env.XDG_RUNTIME_DIR ??= "/tmp";
    const ctx = await requestGpuContext(nodeGpu())();
    if (E.isLeft(ctx)) log(`no WebGPU adapter, GPU rows skipped: ${JSON.stringify(ctx.left)}`);
    else {
      const m = right(await loadQuantizedDir(ctx.right, join(tmp, "q"))());
      await gpuStep(m, prompt, createGpuKvCache(m, promptLen)); // compiles the pipelines
      const gpuPrefill = await best(async () => void (await gpuStep(m, prompt, createGpuKvCache(m, promptLen))));
      const gpuDecode = await best(async () => void (await lastValueFrom(gpuGenerate(m, Int32Array.of(1), { maxTokens: tokens }).pipe(toArray()))));
      row(`webgpu (${ctx.right.adapter}${ctx.right.isFallbackAdapter ? ", software" : ""})`, gpuPrefill, gpuDecode);
    }
    for (const r of rows) {
      if (json) console.log(JSON.stringify(r));
      else log(`${String(r.backend).padEnd(48)} prefill ${r.prefill_tokens_per_s} tok/s, decode ${r.decode_tokens_per_s} tok/s`);
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
};

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
