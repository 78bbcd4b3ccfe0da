import { type ModelHandle, submoduleRunner } from "@llmq/models";
import type { ModelInfo } from "@llmq/observers";

/** The model as modifiers see it at initialization (names, shapes, rotation geometry; no weights). */
export const modelInfo = (h: ModelHandle): ModelInfo => {
  const names = new Set(h.tensorNames());
  const a = h.architecture;
  const rotation = {
    embedding: a.embedding.replace(/\.weight$/, ""),
    vocabSize: h.config.vocab_size,
    hiddenSize: h.config.hidden_size,
    finalNorm: a.finalNorm,
    head: a.head,
    tiedEmbeddings: h.config.tie_word_embeddings && !names.has(`${a.head}.weight`),
  };
  const attention = { heads: h.config.num_attention_heads, kvHeads: h.config.num_key_value_heads, headDim: h.config.head_dim };
  return { linears: h.linearModules(), numLayers: h.numLayers, architecture: a, hasTensor: (n) => names.has(n), submodules: submoduleRunner(h.config), rotation, attention };
};
