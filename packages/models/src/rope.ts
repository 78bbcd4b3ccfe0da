import { type RopeScaling, formatTensorError, ropeInvFreq as invFreqOf } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type { LlamaConfig } from "./llama-config.js";

/** config.json's rope_scaling in @llmq/tensor's terms. */
const scalingOf = (s: LlamaConfig["rope_scaling"]): RopeScaling | undefined =>
  s === null
    ? undefined
    : s.rope_type === "linear"
      ? { ropeType: "linear", factor: s.factor }
      : { factor: s.factor, lowFreqFactor: s.low_freq_factor, highFreqFactor: s.high_freq_factor, originalMaxPositionEmbeddings: s.original_max_position_embeddings };

/** The model's rotary inverse frequencies (@llmq/tensor's `ropeInvFreq`, fed from config.json). */
export const ropeInvFreq = (cfg: Pick<LlamaConfig, "head_dim" | "rope_theta" | "rope_scaling">): Float32Array => {
  const inv = invFreqOf(cfg.head_dim, cfg.rope_theta, scalingOf(cfg.rope_scaling));
  // The config decoder validated every field ropeInvFreq checks.
  if (E.isLeft(inv)) throw new Error(`llmq internal: ${formatTensorError(inv.left)}`);
  return inv.right;
};
