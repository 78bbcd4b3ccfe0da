import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decoderLayerForward, embed, headForward } from "./llama-forward.js";
import { forwardLogits } from "./model-handle.js";
import type { ModelHandle } from "./model-handle.js";
import { openModel } from "./open-model.js";
import { formatModelError } from "./errors.js";

const FIX = new URL("../fixtures/", import.meta.url).pathname;

interface Expected {
  readonly tokens: number[];
  readonly positions: number[];
  readonly logits: number[][];
}

const open = async (dir: string): Promise<ModelHandle> => {
  const r = await openModel(dir)();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

const right = async <A>(t: () => Promise<E.Either<unknown, A>>): Promise<A> => {
  const r = await t();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

/** max |a − b| / max |b| over all logits (transformers is b). */
const relErr = (got: Float32Array, want: number[][]): number => {
  const flat = want.flat();
  let maxDiff = 0;
  let maxAbs = 0;
  flat.forEach((w, i) => {
    maxDiff = Math.max(maxDiff, Math.abs(got[i]! - w));
    maxAbs = Math.max(maxAbs, Math.abs(w));
  });
  return maxDiff / maxAbs;
};

describe.each(["tiny-llama3", "tiny-qwen2", "tiny-mistral", "tiny-llama-bias"])("%s matches transformers", (name) => {
  const dir = join(FIX, name);
  const expected = JSON.parse(readFileSync(join(dir, "expected.json"), "utf8")) as Expected;

  it("forwardLogits within 1e-4 relative of LlamaForCausalLM / Qwen2ForCausalLM", async () => {
    const h = await open(dir);
    const logits = await right(forwardLogits(h, Int32Array.from(expected.tokens), Int32Array.from(expected.positions)));
    expect(logits.shape).toEqual([expected.tokens.length, 128]);
    const err = relErr(logits.data, expected.logits);
    expect(err).toBeLessThan(1e-4);
    await h.close();
  });

  it("the layer-level API (embed, loadLayer, decoderLayerForward, headForward) gives the same logits", async () => {
    const h = await open(dir);
    let x = embed(await right(h.loadEmbedding()), Int32Array.from(expected.tokens));
    for (let i = 0; i < h.numLayers; i++) {
      const y = decoderLayerForward(h.config, await right(h.loadLayer(i)), x, undefined);
      if (E.isLeft(y)) throw new Error(formatModelError(y.left));
      x = y.right;
    }
    const logits = headForward(h.config, await right(h.loadHead()), x);
    expect(relErr(logits.data, expected.logits)).toBeLessThan(1e-4);
    await h.close();
  });
});

describe("the fixtures are sensitive to what they test", () => {
  // Same weights, one feature switched off in config.json: the logits must move far beyond the 1e-4 tolerance.
  it.each([
    ["tiny-llama3", { rope_parameters: { rope_type: "default", rope_theta: 500000 } }],
    ["tiny-mistral", { sliding_window: null }],
    ["tiny-llama-bias", { rope_parameters: { rope_type: "default", rope_theta: 10000 } }],
  ])("%s without its feature misses transformers' logits", async (name, patch) => {
    const src = join(FIX, name);
    const tmp = mkdtempSync(join(tmpdir(), "llmq-sens-"));
    const cfg = JSON.parse(readFileSync(join(src, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(tmp, "config.json"), JSON.stringify({ ...cfg, ...patch }));
    copyFileSync(join(src, "model.safetensors"), join(tmp, "model.safetensors"));
    const expected = JSON.parse(readFileSync(join(src, "expected.json"), "utf8")) as Expected;
    const h = await open(tmp);
    const logits = await right(forwardLogits(h, Int32Array.from(expected.tokens)));
    expect(relErr(logits.data, expected.logits)).toBeGreaterThan(1e-2);
    await h.close();
  });
});

describe("openModel", () => {
  it("decodes the Llama 3 config (rope_parameters of transformers 5) and lists HF linear modules", async () => {
    const h = await open(join(FIX, "tiny-llama3"));
    expect(h.config).toMatchObject({
      model_type: "llama",
      head_dim: 16,
      num_key_value_heads: 2,
      rope_theta: 500000,
      rope_scaling: { rope_type: "llama3", factor: 8, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 32 },
      tie_word_embeddings: false,
      torch_dtype: "bfloat16",
    });
    const mods = h.linearModules();
    expect(mods).toHaveLength(2 * 7 + 1);
    expect(mods[0]).toEqual({ name: "model.layers.0.self_attn.q_proj", layer: 0, className: "Linear", inFeatures: 64, outFeatures: 64 });
    expect(mods[1]).toMatchObject({ name: "model.layers.0.self_attn.k_proj", outFeatures: 32 });
    expect(mods.at(-1)).toEqual({ name: "lm_head", layer: null, className: "Linear", inFeatures: 64, outFeatures: 128 });
    expect(h.tensorNames()).toContain("lm_head.weight");
    const raw = await right(h.readTensor("model.layers.1.mlp.up_proj.weight"));
    expect(raw.dtype).toBe("bf16");
    const layer = await right(h.loadLayer(1));
    expect([...layer.keys()].sort()).toEqual(
      [
        "input_layernorm.weight",
        "post_attention_layernorm.weight",
        "self_attn.q_proj.weight",
        "self_attn.k_proj.weight",
        "self_attn.v_proj.weight",
        "self_attn.o_proj.weight",
        "mlp.gate_proj.weight",
        "mlp.up_proj.weight",
        "mlp.down_proj.weight",
      ].sort(),
    );
    expect(layer.get("mlp.up_proj.weight")!.dtype).toBe("f32");
    await h.close();
  });

  it("Qwen2: sharded checkpoint, q/k/v biases loaded, tied head is the embedding", async () => {
    const h = await open(join(FIX, "tiny-qwen2"));
    expect(h.config.tie_word_embeddings).toBe(true);
    const layer = await right(h.loadLayer(0));
    expect(layer.has("self_attn.q_proj.bias")).toBe(true);
    expect(layer.has("self_attn.o_proj.bias")).toBe(false);
    const head = await right(h.loadHead());
    expect(head.lmHead.data).toEqual((await right(h.loadEmbedding())).data);
    await h.close();
  });

  it("Llama attention_bias/mlp_bias and a decoupled head_dim: every bias loaded, q_proj is [heads·head_dim, hidden]", async () => {
    const h = await open(join(FIX, "tiny-llama-bias"));
    expect(h.config).toMatchObject({ head_dim: 8, attention_bias: true, mlp_bias: true, rope_scaling: { rope_type: "linear", factor: 2 } });
    const layer = await right(h.loadLayer(1));
    for (const m of ["q_proj", "k_proj", "v_proj", "o_proj"]) expect(layer.has(`self_attn.${m}.bias`)).toBe(true);
    for (const m of ["gate_proj", "up_proj", "down_proj"]) expect(layer.has(`mlp.${m}.bias`)).toBe(true);
    expect(layer.get("self_attn.q_proj.weight")!.shape).toEqual([32, 64]);
    expect(h.linearModules().find((m) => m.name === "model.layers.0.self_attn.o_proj")).toMatchObject({ inFeatures: 32, outFeatures: 64 });
    await h.close();
  });

  it("hooks see every linear input (once per shared input) and the post-RoPE keys/values", async () => {
    const h = await open(join(FIX, "tiny-llama3"));
    const seen: Array<[ReadonlyArray<string>, ReadonlyArray<number>]> = [];
    let kv: ReadonlyArray<number>[] = [];
    const x = embed(await right(h.loadEmbedding()), Int32Array.from([1, 2, 3]));
    const out = decoderLayerForward(h.config, await right(h.loadLayer(0)), x, undefined, {
      onLinearInput: (m, t) => seen.push([m, t.shape]),
      onAttentionKV: (k, v) => {
        kv = [k.shape, v.shape];
      },
    });
    expect(seen).toEqual([
      [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], [3, 64]],
      [["self_attn.o_proj"], [3, 64]],
      [["mlp.gate_proj", "mlp.up_proj"], [3, 64]],
      [["mlp.down_proj"], [3, 96]],
    ]);
    expect(E.isRight(out)).toBe(true);
    expect(kv).toEqual([
      [3, 32],
      [3, 32],
    ]);
    await h.close();
  });

  it("names config.json when it is missing or corrupt, and the weights file when absent", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "llmq-open-"));
    expect(await openModel(tmp)()).toEqual(E.left({ _tag: "FileNotFound", path: join(tmp, "config.json"), what: "model config" }));
    writeFileSync(join(tmp, "config.json"), "{ not json");
    const bad = await openModel(tmp)();
    expect(E.isLeft(bad) && bad.left._tag === "InvalidJson" && bad.left.path === join(tmp, "config.json")).toBe(true);
    copyFileSync(join(FIX, "tiny-llama3", "config.json"), join(tmp, "config.json"));
    const noWeights = await openModel(tmp)();
    expect(E.isLeft(noWeights) && noWeights.left._tag === "FileNotFound" && noWeights.left.path === join(tmp, "model.safetensors")).toBe(true);
  });

  it("a corrupt weights file gives a CheckpointError naming it", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "llmq-open-"));
    copyFileSync(join(FIX, "tiny-llama3", "config.json"), join(tmp, "config.json"));
    writeFileSync(join(tmp, "model.safetensors"), readFileSync(join(FIX, "tiny-llama3", "model.safetensors")).subarray(0, 1000));
    const r = await openModel(tmp)();
    expect(E.isLeft(r) && r.left._tag === "CheckpointError" && r.left.path === join(tmp, "model.safetensors")).toBe(true);
    expect(E.isLeft(r) && formatModelError(r.left)).toContain(join(tmp, "model.safetensors"));
  });

  it("rejects an unsupported architecture and names a missing tensor", async () => {
    const tmp = mkdtempSync(join(tmpdir(), "llmq-open-"));
    const cfg = JSON.parse(readFileSync(join(FIX, "tiny-llama3", "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(tmp, "config.json"), JSON.stringify({ ...cfg, model_type: "gpt2", architectures: ["GPT2LMHeadModel"] }));
    copyFileSync(join(FIX, "tiny-llama3", "model.safetensors"), join(tmp, "model.safetensors"));
    const r = await openModel(tmp)();
    expect(E.isLeft(r) && r.left._tag === "UnsupportedArchitecture").toBe(true);
    // Three layers declared, two stored: layer 2 is missing.
    writeFileSync(join(tmp, "config.json"), JSON.stringify({ ...cfg, num_hidden_layers: 3 }));
    const h = await open(tmp);
    const l2 = await h.loadLayer(2)();
    expect(l2).toEqual(E.left({ _tag: "MissingTensor", name: "model.layers.2.input_layernorm.weight", where: tmp }));
    await h.close();
  });
});
