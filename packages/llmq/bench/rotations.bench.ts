// `pnpm -s bench rotations [--json] [--hidden 2048] [--intermediate 8192] [--layers 16] [--heads 32] [--kv-heads 8]
//   [--vocab 128256] [--rotations R1,R2]`
// SpinQuant (Hadamard R1 + R2 by default) of a whole Llama-3.2-1B-shaped model (random bf16 weights, tied embeddings,
// made by the peer with transformers and saved as a HF directory both sides read), data-free. Peer: llm-compressor
// 0.14's oneshot on torch CPU (2 threads): SpinQuantModifier.on_calibration_start (untie, centre, fuse norms, then
// compressed-tensors' apply_transform_config: dense f64 matmuls with the n×n Hadamard matrices) timed alone, and the
// whole oneshot with saving. llmq: the whole oneshot (read, rotate layer by layer with fast Hadamard transforms in
// f64, write), same recipe, same directory, one after the other.
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { activeBackend, nativeAddon } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { benchArgs, runPythonPeer } from "../../../tooling/bench-args.js";
import { oneshot, recipeFromYaml } from "../src/index.js";

const { json, num, str, log } = benchArgs();
const hidden = num("hidden", 2048);
const inter = num("intermediate", 8192);
const layers = num("layers", 16);
const heads = num("heads", 32);
const kvHeads = num("kv-heads", 8);
const vocab = num("vocab", 128256);
const rotations = str("rotations", "R1,R2").split(",");
const threads = 2;
nativeAddon()?.setThreads(threads);

const RECIPE = `rotation_stage:\n  rotation_modifiers:\n    SpinQuantModifier:\n      rotations: [${rotations.join(", ")}]\n`;

const peer = `
import json, os, sys, time
os.environ["TQDM_DISABLE"] = "1"
import torch
torch.set_num_threads(${threads})
from transformers import LlamaConfig, LlamaForCausalLM
d = sys.argv[1]
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=${vocab}, hidden_size=${hidden}, intermediate_size=${inter}, num_hidden_layers=${layers},
                  num_attention_heads=${heads}, num_key_value_heads=${kvHeads}, tie_word_embeddings=True, dtype="bfloat16")
LlamaForCausalLM(cfg).to(torch.bfloat16).save_pretrained(d + "/model")
from llmcompressor import oneshot
from llmcompressor.modifiers.transform import SpinQuantModifier
spent = [0.0]
orig = SpinQuantModifier.on_calibration_start
def timed(self, *a, **k):
    t = time.perf_counter(); r = orig(self, *a, **k); spent[0] += time.perf_counter() - t; return r
SpinQuantModifier.on_calibration_start = timed
m = LlamaForCausalLM.from_pretrained(d + "/model", dtype=torch.bfloat16)
open(d + "/recipe.yaml", "w").write(sys.argv[2])
t = time.perf_counter()
oneshot(model=m, recipe=d + "/recipe.yaml", output_dir=d + "/lc")
total = time.perf_counter() - t
print(json.dumps({"rotate_seconds": spent[0], "oneshot_seconds": total, "torch": torch.__version__, "threads": torch.get_num_threads()}))
`;

const main = async (): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), "llmq-rotations-bench-"));
  try {
    log(`peer: llm-compressor SpinQuant ${rotations.join("+")} on a ${layers}-layer ${hidden}/${inter} model, vocab ${vocab} (torch CPU, ${threads} threads) …`);
    const lc = runPythonPeer<{ rotate_seconds: number; oneshot_seconds: number; torch: string; threads: number }>(peer, [dir, RECIPE], threads, log);
    log(`peer: rotation ${lc.rotate_seconds.toFixed(1)} s, oneshot ${lc.oneshot_seconds.toFixed(1)} s; llmq (backend ${activeBackend()}) …`);
    const recipe = recipeFromYaml(RECIPE);
    if (E.isLeft(recipe)) throw new Error("bench setup");
    const t0 = performance.now();
    const r = await oneshot({ model: join(dir, "model"), output: join(dir, "llmq"), recipe: recipe.right })();
    const total = (performance.now() - t0) / 1000;
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    const line = {
      bench: "rotations",
      op: `SpinQuant ${rotations.join("+")} (hadamard) of a whole model: read, untie, centre, fuse norms, rotate, write`,
      shape: { hidden, intermediate: inter, layers, heads, kv_heads: kvHeads, vocab, dtype: "bf16" },
      backend: activeBackend() === "native" ? `native (${nativeAddon()?.isa ?? "?"}, ${threads} kernel threads)` : "js",
      value: Number(total.toFixed(2)),
      unit: "s",
      peer: `llm-compressor 0.14 oneshot with saving (torch ${lc.torch} CPU, ${lc.threads} threads)`,
      peer_value: Number(lc.oneshot_seconds.toFixed(2)),
      ratio: Number((lc.oneshot_seconds / total).toFixed(3)),
      peer_rotate_only_seconds: Number(lc.rotate_seconds.toFixed(2)),
      peak_rss_mb: r.right.peak_rss_mb,
      loadavg_1m: Number(loadavg()[0]!.toFixed(2)),
    };
    if (json) process.stdout.write(`${JSON.stringify(line)}\n`);
    else
      console.log(
        `SpinQuant ${rotations.join("+")}, ${layers}×${hidden}/${inter}, vocab ${vocab}: llmq ${total.toFixed(1)} s (whole oneshot) vs ${line.peer} ${lc.oneshot_seconds.toFixed(1)} s (rotation alone ${lc.rotate_seconds.toFixed(1)} s) → ${line.ratio}×`,
      );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

await main();
