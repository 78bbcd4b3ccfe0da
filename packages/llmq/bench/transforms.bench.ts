// `pnpm -s bench transforms [--json] [--hidden 4096] [--intermediate 11008] [--heads 32] [--samples 4] [--seq-len 512]`
// AWQ on one Llama-7B-shaped decoder layer (hidden 4096, intermediate 11008, 32 heads = 32 KV heads, so all four
// default mappings run: input_layernorm → q/k/v, v_proj → o_proj, post_attention_layernorm → gate/up, up_proj →
// down_proj; n_grid 20, duo scaling), f32, random weights (seeded, made by the peer with transformers and saved as a
// HF directory both sides load), followed by W4A16 RTN. llm-compressor 0.14's oneshot (torch CPU, 2 threads) and
// llmq's oneshot on the same directory and the same token windows, one after the other. Timed: the AWQ smoothing of
// the layer (LC: AWQModifier._apply_smoothing; llmq: the modifier's per-mapping seconds) and the whole oneshot.
// The 128 × 512 calibration tokens take about an hour per side on 2 cores, so the default is 4 × 512: both
// sides scale linearly in tokens (the grid search runs every batch through the parent module at each point).
import { mkdtempSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { activeBackend, nativeAddon } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { benchArgs, runPythonPeer } from "../../../tooling/bench-args.js";
import { loadDataset, oneshot, recipeFromYaml } from "../src/index.js";

const { json, num, log } = benchArgs();
const hidden = num("hidden", 4096);
const inter = num("intermediate", 11008);
const heads = num("heads", 32);
const samples = num("samples", 4);
const seqLen = num("seq-len", 512);
const threads = 2;
nativeAddon()?.setThreads(threads);

const RECIPE = `awq_stage:
  awq_modifiers:
    AWQModifier: {duo_scaling: true, n_grid: 20}
    QuantizationModifier: {targets: [Linear], scheme: W4A16, ignore: [lm_head]}
`;

const peer = `
import json, os, sys, time
os.environ["TQDM_DISABLE"] = "1"
import torch
torch.set_num_threads(${threads})
if not torch.cuda.is_available():
    torch.Tensor.pin_memory = lambda self, *a, **k: self
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast
from tokenizers import Tokenizer, models
d = sys.argv[1]
torch.manual_seed(0)
cfg = LlamaConfig(vocab_size=1024, hidden_size=${hidden}, intermediate_size=${inter}, num_hidden_layers=1, num_attention_heads=${heads},
                  num_key_value_heads=${heads}, max_position_embeddings=${Math.max(seqLen, 64)}, tie_word_embeddings=False)
model = LlamaForCausalLM(cfg)
model.save_pretrained(d + "/model", safe_serialization=True)
tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({f"t{i}": i for i in range(1024)}, unk_token="t0")))
tok.save_pretrained(d + "/model")
g = torch.Generator().manual_seed(1)
windows = torch.randint(0, 1024, (${samples}, ${seqLen}), generator=g).tolist()
json.dump(windows, open(d + "/windows.json", "w"))
from datasets import Dataset
from llmcompressor import oneshot
from llmcompressor.modifiers.transform.awq.base import AWQModifier
spent, chosen = [0.0], []
orig, best = AWQModifier._apply_smoothing, AWQModifier._compute_best_scale
def timed(self, model):
    t = time.perf_counter(); r = orig(self, model); spent[0] += time.perf_counter() - t; return r
def record(self, mapping, fp16, w):
    s = best(self, mapping, fp16, w); chosen.append(mapping.smooth_name); return s
AWQModifier._apply_smoothing, AWQModifier._compute_best_scale = timed, record
ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
m = LlamaForCausalLM.from_pretrained(d + "/model", dtype=torch.float32)
open(d + "/recipe.yaml", "w").write(sys.argv[2])
t = time.perf_counter()
oneshot(model=m, recipe=d + "/recipe.yaml", dataset=ds, num_calibration_samples=len(windows), max_seq_length=${seqLen},
        shuffle_calibration_samples=False, output_dir=d + "/lc")
total = time.perf_counter() - t
print(json.dumps({"awq_seconds": spent[0], "oneshot_seconds": total, "mappings": chosen, "torch": torch.__version__, "threads": torch.get_num_threads()}))
`;

const main = async (): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), "llmq-transforms-bench-"));
  try {
    log(`peer: llm-compressor AWQ on a ${hidden}/${inter} layer, ${samples} × ${seqLen} tokens (torch CPU, ${threads} threads) …`);
    const lc = runPythonPeer<{ awq_seconds: number; oneshot_seconds: number; mappings: string[]; torch: string; threads: number }>(peer, [dir, RECIPE], threads, log);
    log(`peer: AWQ ${lc.awq_seconds.toFixed(1)} s, oneshot ${lc.oneshot_seconds.toFixed(1)} s; llmq (backend ${activeBackend()}) …`);
    const windows = join(dir, "windows.json");
    const ds = await loadDataset(windows, null, { numSamples: samples, seqLen, sampling: "sequential", vocabSize: 1024 })();
    const recipe = recipeFromYaml(RECIPE);
    if (E.isLeft(ds) || E.isLeft(recipe)) throw new Error("bench setup");
    const t0 = performance.now();
    const r = await oneshot({ model: join(dir, "model"), output: join(dir, "llmq"), recipe: recipe.right, dataset: ds.right })();
    const total = (performance.now() - t0) / 1000;
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    const records = r.right.layers.flatMap((l) => l.transforms);
    const awq = records.reduce((s, t) => s + t.seconds, 0);
    const line = {
      bench: "transforms",
      op: "AWQ search (4 mappings × 20 grid points) of one decoder layer",
      shape: { hidden, intermediate: inter, heads, kv_heads: heads },
      tokens: `${samples}×${seqLen}`,
      backend: activeBackend() === "native" ? `native (${nativeAddon()?.isa ?? "?"}, ${threads} kernel threads)` : "js",
      value: Number(awq.toFixed(2)),
      unit: "s",
      peer: `llm-compressor 0.14 AWQModifier._apply_smoothing (torch ${lc.torch} CPU, ${lc.threads} threads)`,
      peer_value: Number(lc.awq_seconds.toFixed(2)),
      ratio: Number((lc.awq_seconds / awq).toFixed(3)),
      oneshot_seconds: Number(total.toFixed(2)),
      peer_oneshot_seconds: Number(lc.oneshot_seconds.toFixed(2)),
      per_mapping_seconds: Object.fromEntries(records.map((t) => [t.smooth.replace(/^model\.layers\.0\./, ""), Number(t.seconds.toFixed(2))])),
      mappings: records.length,
      peer_mappings: lc.mappings.length,
      loadavg_1m: Number(loadavg()[0]!.toFixed(2)),
    };
    if (json) process.stdout.write(`${JSON.stringify(line)}\n`);
    else console.log(`AWQ ${hidden}/${inter} layer, ${samples}×${seqLen} tokens: llmq ${awq.toFixed(1)} s vs ${line.peer} ${lc.awq_seconds.toFixed(1)} s → ${line.ratio}×`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
};

await main();
