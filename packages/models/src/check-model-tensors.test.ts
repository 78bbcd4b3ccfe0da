import { type Tensor, zeros } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { checkModelTensors, expectedTensors, modelTensorProblems } from "./check-model-tensors.js";
import { formatModelError } from "./errors.js";
import { modelFromSource } from "./model-handle.js";
import { memoryWeightSource } from "./weight-source.js";

const CONFIG = {
  model_type: "llama",
  architectures: ["LlamaForCausalLM"],
  hidden_size: 8,
  intermediate_size: 12,
  num_hidden_layers: 2,
  num_attention_heads: 2,
  num_key_value_heads: 1,
  vocab_size: 16,
  tie_word_embeddings: true,
};

const handle = (config: Record<string, unknown>, tensors: Map<string, Tensor>) => {
  const h = modelFromSource("m", config, memoryWeightSource(tensors, "m"));
  if (E.isLeft(h)) throw new Error(formatModelError(h.left));
  return h.right;
};

const complete = (): Map<string, Tensor> => {
  const h = handle(CONFIG, new Map());
  return new Map(expectedTensors(h).map((t) => [t.name, zeros("f32", t.shape)] as const));
};

describe("checkModelTensors", () => {
  it("accepts a model with every tensor its config implies, tied head absent", () => {
    const t = complete();
    expect(t.has("lm_head.weight")).toBe(false);
    expect(t.size).toBe(1 + 1 + 2 * 9);
    expect(checkModelTensors(handle(CONFIG, t))).toEqual(E.right(undefined));
  });

  it("names the missing, misshapen and non-float tensors with expected and found shape or dtype", () => {
    const t = complete();
    t.delete("model.norm.weight");
    t.set("model.layers.1.mlp.up_proj.weight", zeros("f32", [12, 4]));
    t.set("model.layers.0.input_layernorm.weight", zeros("i8", [8]));
    expect(modelTensorProblems(handle(CONFIG, t))).toEqual([
      "model.norm.weight is missing (expected a float tensor of shape [8] from hidden_size 8)",
      "model.layers.0.input_layernorm.weight has dtype i8, expected a float dtype (f32, f16, bf16, f64)",
      "model.layers.1.mlp.up_proj.weight has shape [12, 4], expected [12, 8] from hidden_size, intermediate_size, num_attention_heads, num_key_value_heads and head_dim",
    ]);
  });

  it("a vocab_size that contradicts the embedding, an untied head, and layers beyond the config are errors", () => {
    const t = complete();
    t.set("model.layers.2.input_layernorm.weight", zeros("f32", [8]));
    const p = modelTensorProblems(handle({ ...CONFIG, vocab_size: 20, tie_word_embeddings: false }, t));
    expect(p).toContain("model.embed_tokens.weight has shape [16, 8], expected [20, 8] from vocab_size 20, hidden_size 8");
    expect(p).toContain("lm_head.weight is missing (expected a float tensor of shape [20, 8] from vocab_size 20, hidden_size 8, tie_word_embeddings false)");
    expect(p).toContain("tensors of layer 2 exist but num_hidden_layers is 2");
  });

  it("a config claiming a billion layers is refused without enumerating them", () => {
    const p = modelTensorProblems(handle({ ...CONFIG, num_hidden_layers: 1e9 }, complete()));
    expect(p.length).toBeLessThanOrEqual(11);
    expect(p[0]).toMatch(/model\.layers\.2\.input_layernorm\.weight is missing/);
  });
});
