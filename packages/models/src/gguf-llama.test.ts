import type { GgufValue } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { convertGguf, ggufLlamaConfigJson, ggufToHfName } from "./gguf-llama.js";
import { readFileSync } from "node:fs";
import { openGguf } from "@llmq/serialization";
import { BYTES_TO_UNICODE, ggufTokenizerFiles, mergesFromScores } from "./gguf-tokenizer.js";
import { tokenizerFromJson } from "./tokenizer.js";

const SERIALIZATION_FX = new URL("../../serialization/fixtures/gguf/", import.meta.url).pathname;

const meta = (o: Record<string, GgufValue>): ReadonlyMap<string, GgufValue> => new Map(Object.entries(o));
const u32 = (v: number): GgufValue => ({ type: "UINT32", value: v });
const f32 = (v: number): GgufValue => ({ type: "FLOAT32", value: v });
const s = (v: string): GgufValue => ({ type: "STRING", value: v });
const strs = (v: string[]): GgufValue => ({ type: "ARRAY", itemType: "STRING", value: v });

const LLAMA = {
  "general.architecture": s("llama"),
  "llama.embedding_length": u32(64),
  "llama.feed_forward_length": u32(128),
  "llama.block_count": u32(2),
  "llama.attention.head_count": u32(4),
  "llama.attention.head_count_kv": u32(2),
  "llama.context_length": u32(256),
  "llama.attention.layer_norm_rms_epsilon": f32(1e-5),
  "llama.vocab_size": u32(100),
};

describe("llama.cpp → HF names", () => {
  it("maps every Llama tensor and refuses the rest", () => {
    expect(ggufToHfName("token_embd.weight")).toBe("model.embed_tokens.weight");
    expect(ggufToHfName("output.weight")).toBe("lm_head.weight");
    expect(ggufToHfName("output_norm.weight")).toBe("model.norm.weight");
    expect(ggufToHfName("blk.12.attn_q.weight")).toBe("model.layers.12.self_attn.q_proj.weight");
    expect(ggufToHfName("blk.0.attn_output.weight")).toBe("model.layers.0.self_attn.o_proj.weight");
    expect(ggufToHfName("blk.0.ffn_down.weight")).toBe("model.layers.0.mlp.down_proj.weight");
    expect(ggufToHfName("blk.0.ffn_norm.weight")).toBe("model.layers.0.post_attention_layernorm.weight");
    expect(ggufToHfName("rope_freqs.weight")).toBeUndefined();
    expect(ggufToHfName("blk.0.ffn_gate_exps.weight")).toBeUndefined();
  });
});

describe("config.json from GGUF metadata", () => {
  it("reads the llama.* keys; head_count_kv defaults to head_count; tied when output.weight is absent", () => {
    const c = ggufLlamaConfigJson("f", meta(LLAMA), ["token_embd.weight"]);
    expect(E.isRight(c) && c.right).toMatchObject({ hidden_size: 64, num_key_value_heads: 2, head_dim: 16, rope_theta: 10000, tie_word_embeddings: true, vocab_size: 100 });
    const { "llama.attention.head_count_kv": _, ...noKv } = LLAMA;
    const c2 = ggufLlamaConfigJson("f", meta(noKv), ["token_embd.weight", "output.weight"]);
    expect(E.isRight(c2) && c2.right).toMatchObject({ num_key_value_heads: 4, tie_word_embeddings: false });
  });

  it("another architecture, a missing key, RoPE scaling or an unknown tensor is an error naming it", () => {
    const e = (m: Record<string, GgufValue>, names: string[] = []) => {
      const r = ggufLlamaConfigJson("f", meta(m), names);
      return E.isLeft(r) ? r.left : null;
    };
    expect(e({ ...LLAMA, "general.architecture": s("qwen2") })).toMatchObject({ _tag: "UnsupportedArchitecture", found: "qwen2", supported: ["llama"] });
    const { "llama.block_count": _, ...noLayers } = LLAMA;
    expect(e(noLayers)).toMatchObject({ _tag: "InvalidConfig", field: "llama.block_count" });
    expect(e({ ...LLAMA, "llama.rope.scaling.type": s("yarn") })).toMatchObject({ _tag: "InvalidConfig", field: "llama.rope.scaling.type" });
    expect(e(LLAMA, ["rope_freqs.weight"])).toMatchObject({ _tag: "InvalidCheckpoint" });
  });

  it("a GGUF that is no Llama checkpoint (the serialization fixture) fails to convert, naming a foreign tensor", async () => {
    const r = await convertGguf(`${SERIALIZATION_FX}quants.gguf`)();
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "InvalidCheckpoint", detail: "tensor t.f32 has no HF Llama counterpart" });
  });
});

describe("tokenizer from GGUF metadata", () => {
  it("GPT-2's byte alphabet: space → Ġ, newline → Ċ, printable bytes themselves", () => {
    expect(BYTES_TO_UNICODE[32]).toBe("Ġ");
    expect(BYTES_TO_UNICODE[10]).toBe("Ċ");
    expect(BYTES_TO_UNICODE[65]).toBe("A");
    expect(new Set(BYTES_TO_UNICODE).size).toBe(256);
  });

  it("control tokens become special added tokens; raw-text tokens are respelled in bytes; sentencepiece is refused", () => {
    const m = meta({
      "tokenizer.ggml.model": s("gpt2"),
      "tokenizer.ggml.tokens": strs(["<|endoftext|>", "a", "b", "ab", " x"]),
      "tokenizer.ggml.token_type": { type: "ARRAY", itemType: "INT32", value: [3, 1, 1, 1, 1] },
      "tokenizer.ggml.merges": strs(["a b"]),
      "tokenizer.ggml.bos_token_id": u32(0),
    });
    const r = ggufTokenizerFiles("f", m);
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    const tj = r.right["tokenizer.json"] as { added_tokens: { id: number; special: boolean }[]; model: { vocab: Record<string, number>; merges: string[][] } };
    expect(tj.added_tokens.map((t) => [t.id, t.special])).toEqual([[0, true]]);
    expect(tj.model.vocab).toEqual({ "<|endoftext|>": 0, a: 1, b: 2, ab: 3, Ġx: 4 });
    expect(tj.model.merges).toEqual([["a", "b"]]);
    expect(r.right["tokenizer_config.json"]).toMatchObject({ bos_token: "<|endoftext|>", eos_token: null });
    for (const m of [meta({ "tokenizer.ggml.model": s("t5") }), meta({ "tokenizer.ggml.model": s("llama"), "general.architecture": s("gemma2") })]) {
      const r = ggufTokenizerFiles("f", m);
      expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "TokenizerError" });
    }
    const noScores = ggufTokenizerFiles("f", meta({ "tokenizer.ggml.model": s("llama"), "tokenizer.ggml.tokens": strs(["a"]) }));
    expect(E.isLeft(noScores) && JSON.stringify(noScores.left)).toContain("scores");
  });
});

describe("sentencepiece (llama) GGUF vocabulary: transformers' ids (fixtures/gguf-sp, tools/gen_gguf_tokenizer_fixtures.py)", () => {
  const FX = new URL("../fixtures/gguf-sp/", import.meta.url).pathname;
  const ROOT = new URL("../../../", import.meta.url).pathname;
  const expected = JSON.parse(readFileSync(`${FX}expected.json`, "utf8")) as { lines: number; line_ids: number[][]; edge: { text: string; ids: number[] }[] };

  it("merges derived from the scores, Metaspace, byte fallback: ids equal on 200 WikiText lines and edge strings (BOS added)", async () => {
    const g = await openGguf(`${FX}tok512.gguf`)();
    if (E.isLeft(g)) throw new Error(JSON.stringify(g.left));
    await g.right.close();
    const files = ggufTokenizerFiles("tok512.gguf", g.right.metadata);
    if (E.isLeft(files)) throw new Error(JSON.stringify(files.left));
    const t = tokenizerFromJson("tok512", files.right["tokenizer.json"]!, files.right["tokenizer_config.json"]);
    if (E.isLeft(t)) throw new Error(JSON.stringify(t.left));
    const lines = readFileSync(`${ROOT}fixtures/wikitext-2/test.txt`, "utf8").split("\n").filter((l) => l.trim() !== "").slice(0, expected.lines);
    const wrong = lines.map((l, i) => (JSON.stringify(t.right.encode(l, { bos: true })) === JSON.stringify(expected.line_ids[i]) ? -1 : i)).filter((i) => i >= 0);
    expect(wrong).toEqual([]);
    for (const e of expected.edge) expect(t.right.encode(e.text, { bos: true }), JSON.stringify(e.text)).toEqual(e.ids);
    expect(t.right.decode(t.right.encode("once upon a time"))).toBe("once upon a time");
  });

  it("mergesFromScores: higher score first, then longer left/right parts, vocabulary order within a piece", () => {
    expect(mergesFromScores(["a", "b", "c", "ab", "abc", "bc"], [0, 0, 0, -1, -0.5, -2])).toEqual([
      ["ab", "c"],
      ["a", "bc"],
      ["a", "b"],
      ["b", "c"],
    ]);
  });
});
