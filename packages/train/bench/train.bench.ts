// `pnpm -s bench train [--json] [--repeat 3]`
// Tokens per second of one QAT training step (fake-quantized linears with the clipped STE on fixed W4 qparams, group
// 32 where it divides the inputs else channel-wise; Llama forward; KL(teacher ‖ model); backward; clip_grad_norm_;
// AdamW) on stories260K (5 layers, 4 windows × 255 tokens) and on one Llama-3.2-1B-shaped decoder layer (hidden 2048,
// MLP 8192, 32/8 heads of 64; vocab cut to 512 so the layer dominates; 1 window × 256 tokens), against torch CPU
// autograd running the same step (bench/train_peer.py) in the same run, both on 2 threads.
import { execFileSync } from "node:child_process";
import { existsSync } from "node:fs";
import { type LlamaConfig, convertLlama2c } from "@llmq/models";
import { decodeQuantizationArgs, rtnQParams } from "@llmq/schemes";
import { Tensor, activeBackend, nativeAddon } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { from, lastValueFrom, toArray } from "rxjs";
import { benchArgs } from "../../../tooling/bench-args.js";
import { type FakeQuantParams, LAYER_LINEARS, adamWInit, train$, trainTensorNames, trainWeights } from "../src/index.js";

const { json, num, log } = benchArgs();
const threads = 2;
const repeat = num("repeat", 3);
nativeAddon()?.setThreads(threads);
const python = process.env.LLMQ_PYTHON ?? "/work/pyenv/bin/python";

const must = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

let seed = 0x2545f491;
const normal = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  const u = ((seed >>> 0) + 0.5) / 4294967296;
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return Math.sqrt(-2 * Math.log(u)) * Math.cos((2 * Math.PI * ((seed >>> 0) + 0.5)) / 4294967296);
};

interface Case {
  readonly name: string;
  readonly config: LlamaConfig;
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly tokens: number;
  readonly batch: number;
}

const randomTensors = (cfg: LlamaConfig): Map<string, Tensor> => {
  const out = new Map<string, Tensor>();
  const [h, i, q, kv] = [cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads * cfg.head_dim, cfg.num_key_value_heads * cfg.head_dim];
  const shapes: Record<string, number[]> = { q_proj: [q, h], k_proj: [kv, h], v_proj: [kv, h], o_proj: [h, q], gate_proj: [i, h], up_proj: [i, h], down_proj: [h, i] };
  for (const name of trainTensorNames(cfg)) {
    const local = name.split(".").slice(-2, -1)[0]!;
    const shape = name.endsWith("norm.weight") ? [h] : name.includes("embed") ? [cfg.vocab_size, h] : shapes[local]!;
    const n = shape.reduce((a, b) => a * b, 1);
    out.set(name, new Tensor("f32", shape, Float32Array.from({ length: n }, () => (shape.length === 1 ? 1 : 0.02 * normal()))));
  }
  return out;
};

const qparams = (c: Case): Map<string, FakeQuantParams> => {
  const out = new Map<string, FakeQuantParams>();
  for (let l = 0; l < c.config.num_hidden_layers; l++)
    for (const m of LAYER_LINEARS) {
      const name = `model.layers.${l}.${m}`;
      const w = c.tensors.get(`${name}.weight`)!;
      const group = w.shape[1]! % 32 === 0;
      const args = must(decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: true, strategy: group ? "group" : "channel", ...(group ? { group_size: 32 } : {}) }));
      out.set(name, { args, scale: must(rtnQParams(w, args)).scale, zeroPoint: null, gIdx: null });
    }
  return out;
};

/** Best-of-`repeat` seconds of one optimizer step over `batch` windows (each step a fresh train$ run on the same state). */
const llmqStep = async (c: Case): Promise<number> => {
  const w = must(trainWeights(c.config, c.tensors, (n) => n.startsWith("model.layers.")));
  const ids = Array.from({ length: c.batch }, () => Int32Array.from({ length: c.tokens + 1 }, () => Math.floor(Math.abs(normal() * 1e6)) % c.config.vocab_size));
  const logits = new Map(ids.map((x) => [x.length, Float32Array.from({ length: c.tokens * c.config.vocab_size }, normal)]));
  const teacher = (x: Int32Array) => logits.get(x.length + 1)!;
  const state = { epoch: 0, step: 0, weights: w, optimizer: adamWInit(new Map([...w].filter(([, v]) => v.needsGrad))), loss: null, quant: { modules: qparams(c), active: true }, teacher };
  const opts = { config: c.config, optimizer: { lr: 1e-4, betas: [0.9, 0.999] as const, eps: 1e-8, weightDecay: 0 }, schedule: { name: "constant" as const, warmupSteps: 0, totalSteps: 1 }, maxGradNorm: 1, distillWeight: 1 };
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < repeat; r++) {
    const t0 = performance.now();
    const out = await lastValueFrom(train$(from([{ epoch: 0, windows: ids }]), state, [], opts).pipe(toArray()));
    if (out.some(E.isLeft)) throw new Error(JSON.stringify(out.find(E.isLeft)));
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  return best;
};

const peerStep = (c: Case): { seconds: number; torch: string } | null => {
  if (!existsSync(python)) return null;
  const cfg = c.config;
  const arg = { hidden: cfg.hidden_size, intermediate: cfg.intermediate_size, layers: cfg.num_hidden_layers, vocab: cfg.vocab_size, heads: cfg.num_attention_heads, kv_heads: cfg.num_key_value_heads, head_dim: cfg.head_dim, tokens: c.tokens, batch: c.batch, bits: 4, group: 32, threads, repeat };
  const env: NodeJS.ProcessEnv = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const out = execFileSync(python, [new URL("./train_peer.py", import.meta.url).pathname, JSON.stringify(arg)], { env, encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").pop()!);
};

const stories = must(await convertLlama2c(new URL("../../../fixtures/stories260K/stories260K.bin", import.meta.url).pathname)());
const oneB: LlamaConfig = { ...stories.config, hidden_size: 2048, intermediate_size: 8192, num_hidden_layers: 1, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, vocab_size: 512, tie_word_embeddings: true };
const cases: Case[] = [
  { name: "stories260K", config: stories.config, tensors: stories.tensors, tokens: 255, batch: 4 },
  { name: "llama-1b-layer", config: oneB, tensors: randomTensors(oneB), tokens: 256, batch: 1 },
];
log(`backend ${activeBackend()}, ${threads} threads, best of ${repeat}; the machine is shared, timings are noisy`);
for (const c of cases) {
  const secs = await llmqStep(c);
  const peer = peerStep(c);
  const toks = c.tokens * c.batch;
  const line = {
    bench: "train",
    op: "qat_step",
    case: c.name,
    shape: [c.batch, c.tokens, c.config.hidden_size, c.config.num_hidden_layers],
    dtype: "f32",
    backend: activeBackend(),
    threads,
    value: Number((toks / secs).toFixed(1)),
    unit: "tokens/s",
    ...(peer ? { peer: `torch ${peer.torch} autograd`, peer_value: Number((toks / peer.seconds).toFixed(1)), ratio: Number((peer.seconds / secs).toFixed(3)) } : {}),
  };
  if (json) console.log(JSON.stringify(line));
  else console.log(`${c.name}: llmq ${line.value} tokens/s${peer ? `, torch ${line.peer_value} tokens/s, ratio ${line.ratio}` : ""}`);
}
