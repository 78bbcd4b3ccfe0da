import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { LLAMA_ARCHITECTURE } from "./architecture.js";
import { formatModelError } from "./errors.js";
import type { LlamaConfig } from "./llama-config.js";
import { type LayerWeights, linear, mlpForward, selfAttentionForward } from "./llama-forward.js";

// The submodules of a Llama decoder layer that can run alone on a cached input, for modifiers that search on a
// parent module's output (AWQ runs `self_attn`, `mlp` or a single linear on the inputs its calibration pass tapped).

export interface SubmoduleRunner {
  readonly inputOf: (submodule: string) => string | null;
  readonly forward: (submodule: string, weights: LayerWeights, x: Tensor<"f32">) => E.Either<string, Tensor<"f32">>;
}

/** The runner of a config's layers: attention and MLP without their residuals, and every linear. */
export const submoduleRunner = (cfg: LlamaConfig): SubmoduleRunner => {
  const linears = new Set(LLAMA_ARCHITECTURE.layerLinears(cfg).map((l) => l.local));
  const inputOf = (m: string): string | null => (m === "self_attn" ? "self_attn.q_proj" : m === "mlp" ? "mlp.gate_proj" : linears.has(m) ? m : null);
  const forward = (m: string, weights: LayerWeights, x: Tensor<"f32">): E.Either<string, Tensor<"f32">> => {
    if (m === "self_attn") return E.mapLeft(formatModelError)(selfAttentionForward(cfg, weights, x));
    if (m === "mlp") return E.mapLeft(formatModelError)(mlpForward(weights, x));
    const w = weights.get(`${m}.weight`);
    if (!linears.has(m) || w === undefined) return E.left(`${m} is not a submodule llmq can run alone (self_attn, mlp or a linear of the layer)`);
    return E.right(linear(x, w, weights.get(`${m}.bias`)));
  };
  return { inputOf, forward };
};
