import { Tensor, randn } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeLlamaConfig } from "./llama-config.js";
import { type LayerWeights, decoderLayerForward, decoderLayerTaps, layerLinears } from "./llama-forward.js";

// Stacked sequences (one GEMM for several calibration windows) must compute every row exactly as that window alone:
// the same bits, and the same observation points per window.

const cfg = E.getOrElseW((e) => {
  throw new Error(JSON.stringify(e));
})(
  decodeLlamaConfig("config.json", {
    architectures: ["LlamaForCausalLM"],
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 96,
    num_hidden_layers: 1,
    num_attention_heads: 4,
    num_key_value_heads: 2,
    vocab_size: 32,
    rms_norm_eps: 1e-5,
    rope_theta: 10000,
    max_position_embeddings: 256,
  }),
);

const weights: LayerWeights = new Map([
  ...layerLinears(cfg).map((l, i) => {
    const w = randn([l.out, l.in], i + 1) as Tensor<"f32">;
    return [`${l.local}.weight`, new Tensor("f32", w.shape, w.data.map((x) => x * 0.1))] as const;
  }),
  ["input_layernorm.weight", new Tensor("f32", [64], new Float32Array(64).fill(1.1))] as const,
  ["post_attention_layernorm.weight", new Tensor("f32", [64], new Float32Array(64).fill(0.9))] as const,
]);

const bitsEqual = (a: Float32Array, b: Float32Array): boolean => a.length === b.length && a.every((x, i) => Object.is(x, b[i]));

describe("stacked sequences", () => {
  it("give each window's rows the bits of its own forward, and its own taps", () => {
    const [t, count] = [37, 3];
    const x = randn([count * t, 64], 99) as Tensor<"f32">;
    const window = (i: number) => new Tensor("f32", [t, 64], x.data.slice(i * t * 64, (i + 1) * t * 64));
    const stacked = E.getOrElseW(() => null)(decoderLayerForward(cfg, weights, x, undefined, undefined, count))!;
    const taps: Float32Array[] = [];
    E.getOrElseW(() => null)(decoderLayerTaps(cfg, weights, x, undefined, { onLinearInput: (_m, xi) => void taps.push(xi.data) }, count));
    for (let i = 0; i < count; i++) {
      const own = E.getOrElseW(() => null)(decoderLayerForward(cfg, weights, window(i)))!;
      expect(bitsEqual(stacked.data.subarray(i * t * 64, (i + 1) * t * 64), own.data)).toBe(true);
      const ownTaps: Float32Array[] = [];
      decoderLayerTaps(cfg, weights, window(i), undefined, { onLinearInput: (_m, xi) => void ownTaps.push(xi.data) });
      for (const [k, d] of ownTaps.entries()) expect(bitsEqual(taps[k]!.subarray(i * d.length, (i + 1) * d.length), d)).toBe(true);
    }
  });

  it("refuses a KV cache or rows that do not split evenly (internal errors)", () => {
    const x = randn([10, 64], 1) as Tensor<"f32">;
    expect(() => decoderLayerForward(cfg, weights, x, undefined, undefined, 3)).toThrow(/stacked sequences/);
  });
});
