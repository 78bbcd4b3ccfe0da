// `pnpm -s bench eval [--json] [--samples N] [--seq-len L]` (after `pnpm build`): `llmq eval` of SmolLM2-135M-Instruct
// W4A16 g64 (RTN) against its f32 reference on 32 × 512 WikiText-2 test windows, and the same computation with
// transformers + torch CPU (tools/eval_peer.py: both models' logits, f64 log-softmax, KL, top-1, perplexity) on the
// same windows, back to back, as whole processes (start-up and loading included on both sides). A third line runs
// llmq eval again with --reference-cache warm (the reference's layers skipped). Skipped with a message when SmolLM2
// cannot be fetched (tools/fetch_smollm2.sh).
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { nativeAddon } from "@llmq/tensor";
import { benchArgs } from "../../../tooling/bench-args.js";
import { CLI, REPO, dumpWindows, peerEnv, peerPython, smollm2Dir, timed } from "./smollm2-peer.js";

const { json, num, log } = benchArgs();
const samples = num("samples", 32);
const seqLen = num("seq-len", 512);
const dir = mkdtempSync(join(tmpdir(), "llmq-eval-bench-"));

const main = (): void => {
  const m = smollm2Dir(dir);
  if ("skipped" in m) {
    log(`eval bench skipped: ${m.skipped}`);
    return;
  }
  const threads = nativeAddon()?.threads ?? 1;
  const q = join(dir, "q");
  const dataset = join(REPO, "fixtures/wikitext-2/test.txt");
  const r = spawnSync(process.execPath, [CLI, "quantize", "--model", m.fp, "--recipe", join(REPO, "fixtures/recipes/smollm2-w4a16-g64-rtn.yaml"), "--output", q, "--quiet"], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`quantize failed: ${r.stderr}`);
  const windows = join(dir, "windows.json");
  dumpWindows(m.fp, dataset, samples, seqLen, windows, "sequential");
  const cache = join(dir, "reference-cache");
  const evalArgs = (withCache: boolean) => [CLI, "eval", "--model", q, "--reference", m.fp, "--dataset", dataset, "--seq-len", String(seqLen), "--num-samples", String(samples), "--json", "--quiet", ...(withCache ? ["--reference-cache", cache] : [])];
  log("llmq eval …");
  const ours = timed(process.execPath, evalArgs(false));
  const o = JSON.parse(ours.stdout.trim().split("\n").pop()!) as { kld: { mean: number }; top1: number; perplexity: number; tokens: number };
  log(`llmq eval ${ours.seconds} s; transformers + torch …`);
  const peer = timed(peerPython(), [join(REPO, "tools/eval_peer.py"), "--model", q, "--reference", m.fp, "--tokens", windows, "--threads", String(threads)], peerEnv(threads));
  const p = JSON.parse(peer.stdout.trim().split("\n").pop()!) as { kld_mean: number; top1: number; perplexity: number; tokens: number; forward_and_score_seconds: number; torch_threads: number };
  log(`transformers ${peer.seconds} s (forward + scoring ${p.forward_and_score_seconds} s); llmq eval with a cold then warm --reference-cache …`);
  timed(process.execPath, evalArgs(true));
  const warm = timed(process.execPath, evalArgs(true));
  const common = { bench: "eval", shape: [samples, seqLen], dtype: "f32", threads, backend: nativeAddon() ? "native" : "js" };
  const lines = [
    {
      ...common,
      op: "eval-smollm2-135m-w4a16-vs-fp",
      value: ours.seconds,
      unit: "s",
      peer: `transformers + torch CPU (${p.torch_threads} threads)`,
      peer_value: peer.seconds,
      ratio: Number((peer.seconds / ours.seconds).toFixed(2)),
      peer_forward_and_score_seconds: p.forward_and_score_seconds,
      cpu_percent: ours.cpuPercent,
      peer_cpu_percent: peer.cpuPercent,
      kld_mean: o.kld.mean,
      peer_kld_mean: p.kld_mean,
      top1: o.top1,
      peer_top1: p.top1,
      perplexity: o.perplexity,
      peer_perplexity: p.perplexity,
      tokens: o.tokens,
      peer_tokens: p.tokens,
    },
    { ...common, op: "eval-smollm2-135m-w4a16-vs-fp-peak-rss", value: ours.peakRssMb, unit: "MB", peer_value: peer.peakRssMb, ratio: Number((ours.peakRssMb / peer.peakRssMb).toFixed(2)) },
    { ...common, op: "eval-smollm2-135m-w4a16-vs-fp-reference-cached", value: warm.seconds, unit: "s", peer_value: peer.seconds, ratio: Number((peer.seconds / warm.seconds).toFixed(2)) },
  ];
  for (const l of lines) process.stdout.write(json ? `${JSON.stringify(l)}\n` : `${l.op.padEnd(48)} ${l.value} ${l.unit} (peer ${l.peer_value}, ratio ${l.ratio})\n`);
};

try {
  main();
} catch (e) {
  process.stderr.write(`${(e as Error).stack ?? e}\n`);
  process.exitCode = 2;
} finally {
  rmSync(dir, { recursive: true, force: true });
}
