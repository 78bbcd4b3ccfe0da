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

const hiddenOf = (h: ModelHandle): string => `hidden_size ${h.config.hidden_size}`;

/** The tensors of decoder layer i a dense model of this config must have (biases only where present). */
export const layerTensors = (h: ModelHandle, i: number): ReadonlyArray<ExpectedTensor> => {
  const c = h.config;
  const p = h.architecture.layerPrefix(i);
  const because = "hidden_size, intermediate_size, num_attention_heads, num_key_value_heads and head_dim";
  return [
    ...h.architecture.layerNorms.map((n) => ({ name: `${p}${n}.weight`, shape: [c.hidden_size], because: hiddenOf(h) })),
    ...h.architecture.layerLinears(c).flatMap((l) => [
      { name: `${p}${l.local}.weight`, shape: [l.out, l.in], because },
      ...(h.tensorInfo(`${p}${l.local}.bias`) !== undefined ? [{ name: `${p}${l.local}.bias`, shape: [l.out], because }] : []),
    ]),
  ];
};

/** The tensors outside the layers: embedding, final norm, and the head unless it is tied and absent. */
export const globalTensors = (h: ModelHandle): ReadonlyArray<ExpectedTensor> => {
  const c = h.config;
  const a = h.architecture;
  const vocab = `vocab_size ${c.vocab_size}, ${hiddenOf(h)}`;
  const tiedAway = c.tie_word_embeddings && h.tensorInfo(`${a.head}.weight`) === undefined;
  return [
    { name: a.embedding, shape: [c.vocab_size, c.hidden_size], because: vocab },
    { name: a.finalNorm, shape: [c.hidden_size], because: hiddenOf(h) },
    ...(tiedAway ? [] : [{ name: `${a.head}.weight`, shape: [c.vocab_size, c.hidden_size], because: `${vocab}${c.tie_word_embeddings ? "" : ", tie_word_embeddings false"}` }]),
  ];
};

/** Every tensor a dense model of this config must have. */
export const expectedTensors = (h: ModelHandle): ReadonlyArray<ExpectedTensor> => [
  ...globalTensors(h),
  ...Array.from({ length: h.config.num_hidden_layers }, (_, i) => layerTensors(h, i)).flat(),
];

/** Layers the checkpoint has tensors for beyond num_hidden_layers (a config that undercounts them). */
const extraLayers = (h: ModelHandle): ReadonlyArray<number> => [
  ...new Set(
    h
      .tensorNames()
      .map((n) => h.architecture.layerOf(n))
      .filter((l): l is number => l !== null && l >= h.config.num_hidden_layers),
  ),
];

/** What is wrong with one expected tensor, or null. */
const problemOf = (h: ModelHandle, t: ExpectedTensor): string | null => {
  const info = h.tensorInfo(t.name);
  if (info === undefined) return `${t.name} is missing (expected a float tensor of shape ${fmt(t.shape)} from ${t.because})`;
  if (info.shape.length !== t.shape.length || info.shape.some((d, i) => d !== t.shape[i])) return `${t.name} has shape ${fmt(info.shape)}, expected ${fmt(t.shape)} from ${t.because}`;
  if (info.dtype !== undefined && !FLOAT_DTYPES.includes(info.dtype)) return `${t.name} has dtype ${info.dtype}, expected a float dtype (${FLOAT_DTYPES.join(", ")})`;
  return null;
};

// A config claiming 10⁹ layers must not make the check itself enumerate them: it stops after this many problems.
const MAX_PROBLEMS = 10;

/** One sentence per problem: missing tensors, wrong shapes, non-float dtypes, layers beyond the config. */
export const modelTensorProblems = (h: ModelHandle): ReadonlyArray<string> => {
  const problems: string[] = [];
  const add = (ts: ReadonlyArray<ExpectedTensor>): void => {
    for (const t of ts) {
      const p = problemOf(h, t);
      if (p !== null && problems.length < MAX_PROBLEMS) problems.push(p);
    }
  };
  add(globalTensors(h));
  for (let i = 0; i < h.config.num_hidden_layers && problems.length < MAX_PROBLEMS; i++) add(layerTensors(h, i));
  const extra = extraLayers(h);
  if (extra.length > 0) problems.push(`tensors of layer ${Math.min(...extra)} exist but num_hidden_layers is ${h.config.num_hidden_layers}`);
  return problems;
};

/** The model-directory check: Right when every tensor the config implies is there with its shape and a float dtype. */
export const checkModelTensors = (h: ModelHandle): E.Either<ModelError, void> => {
  const problems = modelTensorProblems(h);
  return problems.length === 0 ? E.right(undefined) : E.left(modelMismatch(h.dir, problems));
};
