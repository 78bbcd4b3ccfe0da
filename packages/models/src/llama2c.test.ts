import { readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { convertLlama2c, interleavedToRotateHalf, llama2cTensors, parseLlama2cHeader } from "./llama2c.js";
import { forwardLogits, modelFromSource } from "./model-handle.js";
import { memoryWeightSource } from "./weight-source.js";
import type { ConvertedModel } from "./llama2c.js";
import { Tensor } from "@llmq/tensor";
import { writeFileSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const FX = new URL("../../../fixtures/stories260K/", import.meta.url).pathname;
const MODEL = `${FX}stories260K.bin`;
const TOK = `${FX}tok512.bin`;
// fixtures/stories260K/README.md: greedy decoding from BOS, 60 tokens.
const EXPECTED =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";

const convert = async (path = MODEL, tok: string | undefined = TOK): Promise<ConvertedModel> => {
  const r = await convertLlama2c(path, tok === undefined ? {} : { tokenizerBinPath: tok })();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

const greedy = async (m: ConvertedModel, steps: number): Promise<number[]> => {
  const h = modelFromSource("stories260K", m.configJson, memoryWeightSource(m.tensors));
  if (E.isLeft(h)) throw new Error(JSON.stringify(h.left));
  const tokens = [1];
  const V = m.config.vocab_size;
  for (let s = 0; s < steps; s++) {
    const l = await forwardLogits(h.right, Int32Array.from(tokens))();
    if (E.isLeft(l)) throw new Error(JSON.stringify(l.left));
    const row = l.right.data.subarray((tokens.length - 1) * V, tokens.length * V);
    let best = 0;
    for (let i = 1; i < V; i++) if (row[i]! > row[best]!) best = i;
    tokens.push(best);
  }
  return tokens;
};

describe("convertLlama2c (stories260K)", () => {
  it("maps the v0 header to an HF Llama config", async () => {
    const m = await convert();
    expect(m.config).toMatchObject({
      hidden_size: 64,
      intermediate_size: 172,
      num_hidden_layers: 5,
      num_attention_heads: 8,
      num_key_value_heads: 4,
      head_dim: 8,
      vocab_size: 512,
      max_position_embeddings: 512,
      tie_word_embeddings: true,
      rms_norm_eps: 1e-5,
      rope_theta: 10000,
      rope_scaling: null,
    });
    expect(m.configJson).toMatchObject({ architectures: ["LlamaForCausalLM"], torch_dtype: "float32", bos_token_id: 1, eos_token_id: 2, hidden_act: "silu" });
    expect(m.tensors.size).toBe(1 + 5 * 9 + 1);
    expect(m.tensors.get("model.layers.4.self_attn.k_proj.weight")!.shape).toEqual([32, 64]);
    expect(m.tensors.get("model.layers.0.mlp.down_proj.weight")!.shape).toEqual([64, 172]);
    expect(m.tensors.has("lm_head.weight")).toBe(false);
  });

  it("greedy decoding of 60 tokens from BOS reproduces llama2.c's story exactly", async () => {
    const m = await convert();
    const tokens = await greedy(m, 60);
    expect(tokens).toHaveLength(61);
    const text = tokens
      .slice(1)
      .map((t) => m.vocab!.pieces[t])
      .join("");
    expect(text.replace(/^ /, "")).toBe(EXPECTED);
  });

  it("without the q/k permutation the story is lost (the permutation matters)", async () => {
    const m = await convert();
    // Put every q/k row back in llama2.c's interleaved order: row (h, c·d/2 + i) → (h, 2i + c).
    const unpermute = (t: Tensor<"f32">): Tensor<"f32"> => {
      const [rows, cols] = t.shape as [number, number];
      const out = new Float32Array(t.size);
      for (let r = 0; r < rows; r++) {
        const h = Math.floor(r / 8);
        const j = r % 8;
        const src = h * 8 + (j < 4 ? 2 * j : 2 * (j - 4) + 1);
        out.set(t.data.subarray(r * cols, (r + 1) * cols), src * cols);
      }
      return new Tensor("f32", t.shape, out);
    };
    const t = new Map([...m.tensors].map(([k, v]) => [k, /(q|k)_proj/.test(k) ? unpermute(v) : v] as const));
    const text = (await greedy({ ...m, tensors: t }, 30))
      .slice(1)
      .map((id) => m.vocab!.pieces[id])
      .join("");
    expect(EXPECTED.startsWith(text.replace(/^ /, ""))).toBe(false);
  });

  it("interleavedToRotateHalf sends pair (2i, 2i+1) to rows (i, i + d/2) per head", () => {
    const rows = interleavedToRotateHalf(Float32Array.from({ length: 8 }, (_, i) => i), 2, 4, 1);
    expect(Array.from(rows)).toEqual([0, 2, 1, 3, 4, 6, 5, 7]);
  });

  it("reads the v1 (ak42) layout and an unshared classifier to the same tensors", async () => {
    const m = await convert(MODEL, undefined);
    const v0 = readFileSync(MODEL);
    const h = parseLlama2cHeader(MODEL, v0);
    if (E.isLeft(h)) throw new Error("header");
    const { dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen } = h.right;
    const f32 = new Float32Array(v0.buffer.slice(v0.byteOffset + 28, v0.byteOffset + v0.byteLength));
    // Re-pack the v0 payload in export.py's version1_export order, with an explicit (unshared) classifier.
    const kv = (dim / nHeads) * nKvHeads;
    const sizes: Array<[string, number]> = [
      ["emb", vocabSize * dim],
      ["att", nLayers * dim],
      ["wq", nLayers * dim * dim],
      ["wk", nLayers * kv * dim],
      ["wv", nLayers * kv * dim],
      ["wo", nLayers * dim * dim],
      ["ffn", nLayers * dim],
      ["w1", nLayers * hiddenDim * dim],
      ["w2", nLayers * hiddenDim * dim],
      ["w3", nLayers * hiddenDim * dim],
      ["fin", dim],
    ];
    const parts = new Map<string, Float32Array>();
    let off = 0;
    for (const [k, n] of sizes) {
      parts.set(k, f32.subarray(off, off + n));
      off += n;
    }
    const v1Order = ["att", "ffn", "fin", "emb", "wq", "wk", "wv", "wo", "w1", "w2", "w3", "emb"];
    const payload = v1Order.map((k) => parts.get(k)!);
    const len = payload.reduce((a, p) => a + p.length, 0);
    const buf = new ArrayBuffer(256 + 4 * len);
    const dv = new DataView(buf);
    dv.setUint32(0, 0x616b3432, true);
    dv.setInt32(4, 1, true);
    for (const [i, v] of [dim, hiddenDim, nLayers, nHeads, nKvHeads, vocabSize, seqLen].entries()) dv.setInt32(8 + 4 * i, v, true);
    dv.setUint8(36, 0);
    let o = 256 / 4;
    const all = new Float32Array(buf);
    for (const p of payload) {
      all.set(p, o);
      o += p.length;
    }
    const dir = mkdtempSync(join(tmpdir(), "llmq-l2c-"));
    writeFileSync(join(dir, "v1.bin"), new Uint8Array(buf));
    const m1 = await convert(join(dir, "v1.bin"), undefined);
    expect(m1.config.tie_word_embeddings).toBe(false);
    expect([...m1.tensors.keys()]).toEqual([...m.tensors.keys(), "lm_head.weight"]);
    for (const [k, t] of m.tensors) expect(m1.tensors.get(k)!.data).toEqual(t.data);
    expect(m1.tensors.get("lm_head.weight")!.data).toEqual(m.tensors.get("model.embed_tokens.weight")!.data);
  });

  it("rejects missing files, short headers and truncated payloads with the file named", async () => {
    const missing = await convertLlama2c("/nonexistent/model.bin")();
    expect(missing).toEqual(E.left({ _tag: "FileNotFound", path: "/nonexistent/model.bin", what: "llama2.c checkpoint" }));
    expect(E.isLeft(parseLlama2cHeader("x.bin", new Uint8Array(10)))).toBe(true);
    const dir = mkdtempSync(join(tmpdir(), "llmq-l2c-"));
    const cut = join(dir, "cut.bin");
    writeFileSync(cut, readFileSync(MODEL).subarray(0, 5000));
    const r = await convertLlama2c(cut)();
    expect(E.isLeft(r) && r.left._tag === "InvalidCheckpoint" && r.left.path === cut).toBe(true);
    const h = parseLlama2cHeader(MODEL, readFileSync(MODEL));
    if (E.isLeft(h)) throw new Error("header");
    expect(E.isRight(llama2cTensors(MODEL, readFileSync(MODEL), h.right))).toBe(true);
  });
});
