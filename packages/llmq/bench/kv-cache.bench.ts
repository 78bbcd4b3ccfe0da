// `pnpm -s bench kv-cache [--json] [--layers 22] [--contexts 512,2048,8192] [--steps 8]`: decode speed and KV-cache
// memory of a 1B-shaped Llama (TinyLlama-1.1B's shape: hidden 2048, 22 layers, intermediate 5632, 32 heads / 4 KV
// heads, vocab 32000; random f32 weights in memory) with f32, f16, fp8 and int8 caches (dynamic scales) at several
// context lengths. Each cache is filled to the context with random keys/values (their values do not change the time
// of a step), then `--steps` single-token decode steps are timed. The machine's memory bandwidth is measured in the
// same run (memcpy of 512 MiB) to put the result against batch-1 decode's bandwidth bound (tokens/s ≤ BW / bytes read
// per token: f32 weights plus the KV cache), the measure llama.cpp's CPU figures in
// ../shared/reference/performance-anchors.md §4.2 are judged by (a good CPU kernel reaches 45–85 % of it).
import { type KvCacheFormat, createKvCache, kvBytesPerToken } from "@llmq/kv-cache";
import { memoryWeightSource, modelFromSource } from "@llmq/models";
import { Tensor, randn } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { benchArgs } from "../../../tooling/bench-args.js";
import { lastLogits, loadForGeneration } from "../src/index.js";

const { json, num, str, log } = benchArgs();
const layers = num("layers", 22);
const contexts = str("contexts", "512,2048,8192").split(",").map(Number);
const steps = num("steps", 8);
const [hidden, inter, heads, kvHeads, vocab] = [2048, 5632, 32, 4, 32000];
const hd = hidden / heads;

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

const weights = (): Map<string, Tensor> => {
  const t = new Map<string, Tensor>();
  let seed = 1;
  const add = (name: string, shape: number[], ones = false): void => {
    const x = ones ? new Tensor("f32", shape, new Float32Array(shape.reduce((a, b) => a * b, 1)).fill(1)) : (randn(shape, seed++) as Tensor<"f32">);
    if (!ones) for (let i = 0; i < x.data.length; i++) x.data[i]! *= 0.02;
    t.set(name, x);
  };
  add("model.embed_tokens.weight", [vocab, hidden]);
  for (let i = 0; i < layers; i++) {
    const p = `model.layers.${i}.`;
    add(`${p}input_layernorm.weight`, [hidden], true);
    add(`${p}self_attn.q_proj.weight`, [heads * hd, hidden]);
    add(`${p}self_attn.k_proj.weight`, [kvHeads * hd, hidden]);
    add(`${p}self_attn.v_proj.weight`, [kvHeads * hd, hidden]);
    add(`${p}self_attn.o_proj.weight`, [hidden, heads * hd]);
    add(`${p}post_attention_layernorm.weight`, [hidden], true);
    add(`${p}mlp.gate_proj.weight`, [inter, hidden]);
    add(`${p}mlp.up_proj.weight`, [inter, hidden]);
    add(`${p}mlp.down_proj.weight`, [hidden, inter]);
  }
  add("model.norm.weight", [hidden], true);
  add("lm_head.weight", [vocab, hidden]);
  return t;
};

/** Memory bandwidth (bytes/s moved, read + write): the best of 3 copies of 512 MiB (TypedArray.set is memcpy). */
const bandwidth = (): number => {
  const a = new Float32Array(2 ** 27).fill(1);
  const b = new Float32Array(a.length);
  let best = 0;
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    b.set(a);
    best = Math.max(best, (2 * a.length * 4) / ((performance.now() - t0) / 1000));
  }
  return best;
};

const FORMATS: ReadonlyArray<readonly [string, KvCacheFormat]> = [
  ["f32", { kind: "f32" }],
  ["f16", { kind: "f16" }],
  ["fp8", { kind: "dynamic", type: "fp8" }],
  ["int8", { kind: "dynamic", type: "int8" }],
];

const main = async (): Promise<void> => {
  const bw = bandwidth();
  log(`memory bandwidth (memcpy of 512 MiB, read + write): ${(bw / 1e9).toFixed(1)} GB/s; building the ${layers}-layer model…`);
  const tensors = weights();
  const config = {
    architectures: ["LlamaForCausalLM"], model_type: "llama", hidden_size: hidden, intermediate_size: inter, num_hidden_layers: layers,
    num_attention_heads: heads, num_key_value_heads: kvHeads, vocab_size: vocab, rms_norm_eps: 1e-5, rope_theta: 10000,
    max_position_embeddings: 16384, tie_word_embeddings: false, hidden_act: "silu", torch_dtype: "float32",
  };
  const h = right(modelFromSource("memory", config, memoryWeightSource(tensors)));
  const m = right(await loadForGeneration(h)());
  const weightBytes = [...tensors.values()].reduce((a, t) => a + t.size * 4, 0) - vocab * hidden * 4; // the embedding is read one row per token
  for (const ctx of contexts)
    for (const [name, format] of FORMATS) {
      const caches = createKvCache(Array.from({ length: layers }, () => format), { layers, kvHeads, headDim: hd, capacity: ctx + steps });
      const chunk = 512;
      for (const c of caches)
        for (let at = 0; at < ctx; at += chunk) {
          const n = Math.min(chunk, ctx - at);
          const kv = (randn([n, kvHeads * hd], at + 7) as Tensor<"f32">).data;
          right(c.append(kv, kv, n));
        }
      const t0 = performance.now();
      let token = 1;
      for (let s = 0; s < steps; s++) {
        const logits = right(lastLogits(m, Int32Array.of(token), caches));
        token = logits.indexOf(Math.max(...logits.subarray(0, 1000)));
      }
      const sec = (performance.now() - t0) / 1000;
      const perToken = kvBytesPerToken(format, { layers, kvHeads, headDim: hd });
      const read = weightBytes + perToken * (ctx + steps / 2);
      const tps = steps / sec;
      const row = {
        bench: "kv-cache", model: `1B-shaped (${layers} layers, f32 weights)`, context: ctx, kv_cache: name,
        decode_tokens_per_s: Number(tps.toFixed(3)), kv_bytes_per_token: perToken, kv_mib_at_context: Number(((perToken * ctx) / 2 ** 20).toFixed(1)),
        bytes_read_per_token: read, effective_gb_per_s: Number(((tps * read) / 1e9).toFixed(2)), memcpy_gb_per_s: Number((bw / 1e9).toFixed(2)),
        bandwidth_bound_tokens_per_s: Number((bw / read).toFixed(3)), fraction_of_bound: Number((tps / (bw / read)).toFixed(3)),
      };
      if (json) console.log(JSON.stringify(row));
      else log(`${String(ctx).padStart(5)} ${name.padEnd(4)} ${tps.toFixed(2)} tok/s, KV ${perToken} B/token (${row.kv_mib_at_context} MiB), ${(100 * row.fraction_of_bound).toFixed(0)} % of the bandwidth bound`);
    }
};

main().catch((e) => {
  console.error(e);
  process.exit(2);
});
