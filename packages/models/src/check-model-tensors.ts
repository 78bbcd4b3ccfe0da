import * as E from "fp-ts/lib/Either.js";
import { type ModelError, modelMismatch } from "./errors.js";
import type { ModelHandle } from "./model-handle.js";

// Before a long quantization, every tensor the architecture needs is checked against what config.json implies, from
// the headers alone: a checkpoint without model.norm.weight, or whose vocab_size contradicts the embedding, must fail
// here with the tensor, the expected and the found shape and dtype — not quantize with exit 0 into something that
// `llmq eval` then refuses, nor fail at layer 7 with a bare tag.

/** A tensor the config implies: its name, shape, and the config fields the shape comes from. */
export interface ExpectedTensor {
  readonly name: string;
  readonly shape: ReadonlyArray<number>;
  readonly because: string;
}

const FLOAT_DTYPES: ReadonlyArray<string> = ["f32", "f16", "bf16", "f64"];

const fmt = (s: ReadonlyArray<number>): string => `[${s.join(", ")}]`;

/** Every tensor a dense model of this config must have (biases and a tied head only where present / untied). */
export const expectedTensors = (h: ModelHandle): ReadonlyArray<ExpectedTensor> => {
  const c = h.config;
  const a = h.architecture;
  const names = new Set(h.tensorNames());
  const hid = `hidden_size ${c.hidden_size}`;
  const out: ExpectedTensor[] = [{ name: a.embedding, shape: [c.vocab_size, c.hidden_size], because: `vocab_size ${c.vocab_size}, ${hid}` }];
  for (let i = 0; i < c.num_hidden_layers; i++) {
    const p = a.layerPrefix(i);
    out.push({ name: `${p}input_layernorm.weight`, shape: [c.hidden_size], because: hid }, { name: `${p}post_attention_layernorm.weight`, shape: [c.hidden_size], because: hid });
    for (const l of a.layerLinears(c)) {
      const because = "hidden_size, intermediate_size, num_attention_heads, num_key_value_heads and head_dim";
      out.push({ name: `${p}${l.local}.weight`, shape: [l.out, l.in], because });
      if (names.has(`${p}${l.local}.bias`)) out.push({ name: `${p}${l.local}.bias`, shape: [l.out], because });
    }
  }
  out.push({ name: a.finalNorm, shape: [c.hidden_size], because: hid });
  if (!(c.tie_word_embeddings && !names.has(`${a.head}.weight`)))
    out.push({ name: `${a.head}.weight`, shape: [c.vocab_size, c.hidden_size], because: `vocab_size ${c.vocab_size}, ${hid}${c.tie_word_embeddings ? "" : ", tie_word_embeddings false"}` });
  return out;
};

/** Layers the checkpoint has tensors for beyond num_hidden_layers (a config that undercounts them). */
const extraLayers = (h: ModelHandle): ReadonlyArray<number> => [
  ...new Set(
    h
      .tensorNames()
      .map((n) => h.architecture.layerOf(n))
      .filter((l): l is number => l !== null && l >= h.config.num_hidden_layers),
  ),
];

/** One sentence per problem: missing tensors, wrong shapes, non-float dtypes, layers beyond the config. */
export const modelTensorProblems = (h: ModelHandle): ReadonlyArray<string> => {
  const problems: string[] = [];
  for (const t of expectedTensors(h)) {
    const info = h.tensorInfo(t.name);
    if (info === undefined) problems.push(`${t.name} is missing (expected a float tensor of shape ${fmt(t.shape)} from ${t.because})`);
    else if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i]))
      problems.push(`${t.name} has shape ${fmt(info.shape)}, expected ${fmt(t.shape)} from ${t.because}`);
    else if (info.dtype !== undefined && !FLOAT_DTYPES.includes(info.dtype))
      problems.push(`${t.name} has dtype ${info.dtype}, expected a float dtype (${FLOAT_DTYPES.join(", ")})`);
  }
  const extra = extraLayers(h);
  if (extra.length > 0) problems.push(`tensors of layer ${Math.min(...extra)} exist but num_hidden_layers is ${h.config.num_hidden_layers}`);
  return problems;
};

/** The model-directory check: Right when every tensor the config implies is there with its shape and a float dtype. */
export const checkModelTensors = (h: ModelHandle): E.Either<ModelError, void> => {
  const problems = modelTensorProblems(h);
  return problems.length === 0 ? E.right(undefined) : E.left(modelMismatch(h.dir, problems));
};
