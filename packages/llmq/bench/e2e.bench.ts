// `pnpm -s bench e2e [--json] [--only smollm2|synthetic] [--smollm2-samples 64] [--method rtn|gptq] [--layers N]
// [--samples N] [--seq-len L]`
// (after `pnpm build`):
// 1. SmolLM2-135M-Instruct (tools/fetch_smollm2.sh; skipped with a message when it cannot be fetched), converted to
//    f32: W4A16 g64 GPTQ on 64 × 512 WikiText-2 windows, and W4A16 g64 RTN data-free, each by `llmq quantize` and by
//    llm-compressor's oneshot on torch CPU (tools/lc_oneshot_bench.py, as many threads as llmq's pool) back to back:
//    whole-process wall time and peak RSS of both, ratio = peer / llmq for time and llmq / peer for memory. Then the
//    GPTQ run with --max-memory 16MB against the same run in memory (time, peak RSS, same checkpoint bytes).
// 2. A synthetic 1B-shaped Llama (hidden 2048, 22 layers, intermediate 5632, 32 heads / 4 kv heads, vocab 32000;
//    random f32 weights written to a temp dir) with W4A16 and 128×512-token calibration, in a child process so that
//    its peak RSS is the pipeline's own. Prints wall time and peak RSS (the f32 model alone is 4.4 GB).
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createShardedWriter } from "@llmq/serialization";
import { Tensor, randn } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { nativeAddon } from "@llmq/tensor";
import { benchArgs } from "../../../tooling/bench-args.js";
import { CLI, REPO, dumpWindows, peerEnv, peerPython, smollm2Dir, timed } from "./smollm2-peer.js";

const { json, str: flag, log: stderrLine } = benchArgs();
const method = flag("method", "rtn");
const layers = Number(flag("layers", "22"));
const samples = Number(flag("samples", "128"));
const seqLen = Number(flag("seq-len", "512"));
const hidden = 2048;
const inter = 5632;
const heads = 32;
const kvHeads = 4;
const vocab = 32000;

const dir = mkdtempSync(join(tmpdir(), "llmq-e2e-"));
const model = join(dir, "model");
const out = join(dir, "out");
const log = (s: string): void => {
  if (!json) stderrLine(s);
};

const only = flag("only", "");
const smolSamples = Number(flag("smollm2-samples", "64"));
const print = (l: Record<string, unknown>): void => {
  process.stdout.write(json ? `${JSON.stringify(l)}\n` : `${String(l.op).padEnd(40)} ${l.value} ${l.unit}${l.peer_value !== undefined ? ` (peer ${l.peer_value}, ratio ${l.ratio})` : ""}\n`);
};

/** One recipe on SmolLM2 by llmq and by llm-compressor, back to back: time and memory lines. */
const smollm2Pair = (fp: string, name: string, recipe: string, windows: string | null, threads: number): void => {
  const dataset = windows === null ? [] : ["--dataset", join(REPO, "fixtures/wikitext-2/valid.txt"), "--num-samples", String(smolSamples), "--seq-len", "512"];
  log(`smollm2 ${name}: llmq quantize …`);
  const ours = timed(process.execPath, [CLI, "quantize", "--model", fp, "--recipe", recipe, ...dataset, "--output", join(dir, `llmq-${name}`), "--json", "--quiet"]);
  const backend = (JSON.parse(ours.stdout.trim().split("\n").pop()!) as { backend: string }).backend;
  log(`smollm2 ${name}: llmq ${ours.seconds} s, ${ours.peakRssMb} MB; llm-compressor oneshot …`);
  const tok = windows === null ? [] : ["--tokens", windows];
  const peer = timed(peerPython(), [join(REPO, "tools/lc_oneshot_bench.py"), "--fp", fp, "--recipe", recipe, ...tok, "--out", join(dir, `lc-${name}`), "--threads", String(threads)], peerEnv(threads));
  const info = JSON.parse(peer.stdout.trim().split("\n").pop()!) as { oneshot_seconds: number; torch_threads: number };
  log(`smollm2 ${name}: llm-compressor ${peer.seconds} s (oneshot alone ${info.oneshot_seconds} s), ${peer.peakRssMb} MB`);
  const common = { bench: "e2e", shape: windows === null ? [] : [smolSamples, 512], dtype: "f32", backend, threads, peer: `llm-compressor oneshot, torch CPU (${info.torch_threads} threads)` };
  print({ ...common, op: `smollm2-135m-${name}`, value: ours.seconds, unit: "s", peer_value: peer.seconds, ratio: Number((peer.seconds / ours.seconds).toFixed(2)), peer_oneshot_seconds: info.oneshot_seconds, cpu_percent: ours.cpuPercent, peer_cpu_percent: peer.cpuPercent });
  print({ ...common, op: `smollm2-135m-${name}-peak-rss`, value: ours.peakRssMb, unit: "MB", peer_value: peer.peakRssMb, ratio: Number((ours.peakRssMb / peer.peakRssMb).toFixed(2)) });
};

const smollm2 = (): void => {
  const m = smollm2Dir(dir);
  if ("skipped" in m) {
    log(`smollm2 lines skipped: ${m.skipped}`);
    return;
  }
  const threads = nativeAddon()?.threads ?? 1;
  const windows = join(dir, "smollm2-windows.json");
  dumpWindows(m.fp, join(REPO, "fixtures/wikitext-2/valid.txt"), smolSamples, 512, windows);
  smollm2Pair(m.fp, "gptq-W4A16-g64", join(REPO, "fixtures/recipes/smollm2-w4a16-g64-gptq.yaml"), windows, threads);
  smollm2Pair(m.fp, "rtn-W4A16-g64", join(REPO, "fixtures/recipes/smollm2-w4a16-g64-rtn.yaml"), null, threads);
  smollm2Spill(m.fp, threads);
};

/**
 * The GPTQ run again with --max-memory 16MB (two of the 64 windows in memory, 62 in the spill file): wall time and peak
 * RSS against the in-memory run of smollm2Pair, and whether the checkpoints are the same bytes.
 */
const smollm2Spill = (fp: string, threads: number): void => {
  const name = "gptq-W4A16-g64";
  const dataset = ["--dataset", join(REPO, "fixtures/wikitext-2/valid.txt"), "--num-samples", String(smolSamples), "--seq-len", "512"];
  log(`smollm2 ${name}: llmq quantize --max-memory 16MB …`);
  const args = ["quantize", "--model", fp, "--recipe", join(REPO, "fixtures/recipes/smollm2-w4a16-g64-gptq.yaml"), ...dataset, "--json", "--quiet"];
  const spilled = timed(process.execPath, [CLI, ...args, "--max-memory", "16MB", "--spill-dir", dir, "--output", join(dir, "llmq-spilled")]);
  const inMemory = timed(process.execPath, [CLI, ...args, "--output", join(dir, `llmq-${name}-again`)]);
  const same = readFileSync(join(dir, "llmq-spilled", "model.safetensors")).equals(readFileSync(join(dir, `llmq-${name}-again`, "model.safetensors")));
  const common = { bench: "e2e", shape: [smolSamples, 512], dtype: "f32", threads, peer: "llmq quantize without --max-memory (run after it)", same_checkpoint_bytes: same };
  print({ ...common, op: `smollm2-135m-${name}-max-memory-16MB`, value: spilled.seconds, unit: "s", peer_value: inMemory.seconds, ratio: Number((inMemory.seconds / spilled.seconds).toFixed(2)) });
  print({ ...common, op: `smollm2-135m-${name}-max-memory-16MB-peak-rss`, value: spilled.peakRssMb, unit: "MB", peer_value: inMemory.peakRssMb, ratio: Number((spilled.peakRssMb / inMemory.peakRssMb).toFixed(2)) });
};

const main = async (): Promise<void> => {
  if (only !== "synthetic") smollm2();
  if (only === "smollm2") return;
  const t0 = performance.now();
  const w = await createShardedWriter(model, { maxShardSize: "2GB" })();
  if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
  let seed = 1;
  const add = async (name: string, shape: number[], std: number, ones = false): Promise<void> => {
    const n = shape.reduce((a, b) => a * b, 1);
    let t: Tensor<"f32">;
    if (ones) t = new Tensor("f32", shape, new Float32Array(n).fill(1));
    else {
      t = randn(shape, seed++) as Tensor<"f32">;
      for (let i = 0; i < n; i++) t.data[i]! *= std;
    }
    const r = await w.right.add(name, t)();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  };
  await add("model.embed_tokens.weight", [vocab, hidden], 0.02);
  const hd = hidden / heads;
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    await add(`${p}input_layernorm.weight`, [hidden], 0, true);
    await add(`${p}self_attn.q_proj.weight`, [heads * hd, hidden], 0.02);
    await add(`${p}self_attn.k_proj.weight`, [kvHeads * hd, hidden], 0.02);
    await add(`${p}self_attn.v_proj.weight`, [kvHeads * hd, hidden], 0.02);
    await add(`${p}self_attn.o_proj.weight`, [hidden, heads * hd], 0.02);
    await add(`${p}post_attention_layernorm.weight`, [hidden], 0, true);
    await add(`${p}mlp.gate_proj.weight`, [inter, hidden], 0.02);
    await add(`${p}mlp.up_proj.weight`, [inter, hidden], 0.02);
    await add(`${p}mlp.down_proj.weight`, [hidden, inter], 0.02);
  }
  await add("model.norm.weight", [hidden], 0, true);
  await add("lm_head.weight", [vocab, hidden], 0.02);
  const c = await w.right.close()();
  if (E.isLeft(c)) throw new Error(JSON.stringify(c.left));
  writeFileSync(
    join(model, "config.json"),
    JSON.stringify({
      architectures: ["LlamaForCausalLM"],
      model_type: "llama",
      hidden_size: hidden,
      intermediate_size: inter,
      num_hidden_layers: layers,
      num_attention_heads: heads,
      num_key_value_heads: kvHeads,
      vocab_size: vocab,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      max_position_embeddings: 2048,
      tie_word_embeddings: false,
      hidden_act: "silu",
      torch_dtype: "float32",
      bos_token_id: 1,
      eos_token_id: 2,
    }),
  );
  // Token-id calibration data (the model has no tokenizer): deterministic pseudo-random ids.
  let s = 12345;
  const ids = Array.from({ length: samples }, () =>
    Array.from({ length: seqLen }, () => {
      s = (Math.imul(s, 1103515245) + 12345) >>> 0;
      return s % vocab;
    }),
  );
  writeFileSync(join(dir, "calib.json"), JSON.stringify(ids));
  log(`synthetic model written in ${((performance.now() - t0) / 1000).toFixed(1)} s: ${dir}`);

  const cli = new URL("../src/cli.ts", import.meta.url).pathname;
  const tsx = new URL("../../../node_modules/.bin/tsx", import.meta.url).pathname;
  const args = [
    "-f",
    "%e %M",
    tsx,
    "--conditions=@llmq/source",
    cli,
    "quantize",
    "--model",
    model,
    "--output",
    out,
    "--scheme",
    "W4A16",
    "--method",
    method,
    "--dataset",
    join(dir, "calib.json"),
    "--num-samples",
    String(samples),
    "--seq-len",
    String(seqLen),
    "--json",
    "--quiet",
  ];
  const t1 = performance.now();
  const r = spawnSync("/usr/bin/time", args, { encoding: "utf8", maxBuffer: 1 << 26, stdio: ["ignore", "pipe", "pipe"] });
  const wall = (performance.now() - t1) / 1000;
  if (r.status !== 0) throw new Error(`quantize failed (${r.status}): ${r.stderr.slice(-2000)}`);
  const res = JSON.parse(r.stdout.trim().split("\n").pop()!) as { peak_rss_mb: number; backend: string; modules: number };
  const timeLine = r.stderr.trim().split("\n").pop()!.split(" ");
  const maxRssMb = Math.round(Number(timeLine[1]) / 1024);
  const shape = [layers, hidden, inter, samples, seqLen];
  const lines = [
    { bench: "e2e", op: `quantize-${method}-W4A16`, shape, dtype: "f32", backend: res.backend, value: Number(wall.toFixed(2)), unit: "s" },
    { bench: "e2e", op: `quantize-${method}-W4A16-peak-rss`, shape, dtype: "f32", backend: res.backend, value: maxRssMb, unit: "MB" },
  ];
  for (const l of lines) print(l);
};

main()
  .catch((e) => {
    process.stderr.write(`${(e as Error).stack ?? e}\n`);
    process.exitCode = 2;
  })
  .finally(() => rmSync(dir, { recursive: true, force: true }));
