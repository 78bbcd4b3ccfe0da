import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeLlamaConfig } from "./llama-config.js";

const base = {
  architectures: ["LlamaForCausalLM"],
  model_type: "llama",
  hidden_size: 64,
  intermediate_size: 96,
  num_hidden_layers: 2,
  num_attention_heads: 4,
  vocab_size: 128,
};

const decode = (extra: Record<string, unknown>) => decodeLlamaConfig("m/config.json", { ...base, ...extra });

describe("decodeLlamaConfig", () => {
  it("fills transformers' defaults: head_dim, num_key_value_heads, rope_theta, eps", () => {
    expect(decode({})).toEqual(
      E.right(
        expect.objectContaining({
          head_dim: 16,
          num_key_value_heads: 4,
          rope_theta: 10000,
          rope_scaling: null,
          rms_norm_eps: 1e-6,
          tie_word_embeddings: false,
          attention_bias: false,
          torch_dtype: "float32",
          sliding_window: null,
        }),
      ),
    );
  });

  it("reads transformers 4.x rope_theta + rope_scaling (with the old `type` key) like 5.x rope_parameters", () => {
    const v4 = decode({
      rope_theta: 500000,
      rope_scaling: { type: "llama3", factor: 32, low_freq_factor: 1, high_freq_factor: 4, original_max_position_embeddings: 8192 },
      torch_dtype: "bfloat16",
    });
    const v5 = decode({
      rope_parameters: {
        rope_type: "llama3",
        rope_theta: 500000,
        factor: 32,
        low_freq_factor: 1,
        high_freq_factor: 4,
        original_max_position_embeddings: 8192,
      },
      dtype: "bfloat16",
    });
    expect(v4).toEqual(v5);
    expect(E.isRight(v4) && v4.right.rope_scaling).toEqual({
      rope_type: "llama3",
      factor: 32,
      low_freq_factor: 1,
      high_freq_factor: 4,
      original_max_position_embeddings: 8192,
    });
  });

  it("Qwen2 reports q/k/v biases; Mistral keeps its sliding window", () => {
    const q = decodeLlamaConfig("q", { ...base, model_type: "qwen2", architectures: ["Qwen2ForCausalLM"], sliding_window: 4096 });
    expect(E.isRight(q) && [q.right.attention_bias, q.right.sliding_window]).toEqual([true, null]);
    const m = decodeLlamaConfig("m", { ...base, model_type: "mistral", architectures: ["MistralForCausalLM"], sliding_window: 4096 });
    expect(E.isRight(m) && m.right.sliding_window).toBe(4096);
  });

  it("names the field and the allowed values", () => {
    const { hidden_size: _, ...noHidden } = base;
    expect(decodeLlamaConfig("m/config.json", noHidden)).toEqual(
      E.left({ _tag: "InvalidConfig", path: "m/config.json", field: "hidden_size", detail: "is required (a positive integer)" }),
    );
    expect(decode({ hidden_act: "gelu" })).toEqual(
      E.left({ _tag: "InvalidConfig", path: "m/config.json", field: "hidden_act", detail: '"gelu" is not supported (supported: silu)' }),
    );
    expect(decode({ num_key_value_heads: 3 })).toMatchObject(E.left({ field: "num_key_value_heads" }));
    expect(decode({ rope_scaling: { rope_type: "yarn", factor: 4 } })).toMatchObject(E.left({ field: "rope_scaling.rope_type" }));
    expect(decode({ model_type: "gpt2" })).toMatchObject(E.left({ _tag: "UnsupportedArchitecture" }));
    expect(decode({ architectures: ["LlamaForSequenceClassification"] })).toMatchObject(
      E.left({ _tag: "UnsupportedArchitecture", found: "LlamaForSequenceClassification" }),
    );
    expect(decodeLlamaConfig("m/config.json", [1, 2])).toMatchObject(E.left({ field: "(root)" }));
  });
});
