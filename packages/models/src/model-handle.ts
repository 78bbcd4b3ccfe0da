import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import { type ModelError, invalidInput, missingTensor, tensorShapeMismatch, unsupportedDType } from "./errors.js";
import { type LlamaConfig, decodeLlamaConfig } from "./llama-config.js";
import { type HeadWeights, type LayerWeights, decoderLayerForward, embed, headForward, layerLinears } from "./llama-forward.js";
import type { WeightSource } from "./weight-source.js";
import { type Architecture, architectureOf } from "./architecture.js";

// ----- model -----

/** A linear module of the model under its HF name ("model.layers.3.self_attn.q_proj"; lm_head has layer null). */
export interface LinearModule {
  readonly name: string;
  readonly layer: number | null;
  readonly className: "Linear";
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** An opened model: its config and lazy access to its weights (nothing but headers is read when opening). */
export interface ModelHandle {
  readonly dir: string;
  readonly config: LlamaConfig;
  /** Module names, shared inputs, fused groups and norm mappings of the model's family. */
  readonly architecture: Architecture;
  readonly rawConfig: Record<string, unknown>;
  readonly numLayers: number;
  readonly linearModules: () => ReadonlyArray<LinearModule>;
  readonly loadEmbedding: () => TE.TaskEither<ModelError, Tensor<"f32">>;
  readonly loadLayer: (i: number) => TE.TaskEither<ModelError, LayerWeights>;
  /**
   * Every tensor of decoder layer i in its stored dtype, keyed by local name: the layer's expected tensors are checked
   * (shapes, float dtypes) as by loadLayer, others under the layer's prefix are passed along as stored.
   */
  readonly loadLayerTensors: (i: number) => TE.TaskEither<ModelError, ReadonlyMap<string, Tensor>>;
  readonly loadHead: () => TE.TaskEither<ModelError, HeadWeights>;
  readonly tensorNames: () => ReadonlyArray<string>;
  /** Shape and stored dtype of a tensor from the headers (dtype undefined where the source cannot tell without reading). */
  readonly tensorInfo: (name: string) => { readonly shape: ReadonlyArray<number>; readonly dtype: string | undefined } | undefined;
  readonly readTensor: (name: string) => TE.TaskEither<ModelError, Tensor>;
  /** Releases open files (a no-op for in-memory sources). */
  readonly close: () => Promise<void>;
}

const FLOAT_DTYPES: ReadonlyArray<string> = ["f32", "f16", "bf16", "f64"];

// ----- constructors -----

const infoOf =
  (source: WeightSource): ModelHandle["tensorInfo"] =>
  (name) => {
    const shape = source.shape(name);
    return shape === undefined ? undefined : { shape, dtype: source.dtype?.(name) };
  };

/**
 * A ModelHandle over any WeightSource. `rawConfig` is the parsed config.json; `where` names the checkpoint in
 * error messages. Fails on an invalid or unsupported config.
 */
export const modelFromSource = (
  dir: string,
  rawConfig: unknown,
  source: WeightSource,
  where = dir,
  close: () => Promise<void> = () => Promise.resolve(),
): E.Either<ModelError, ModelHandle> =>
  pipe(
    decodeLlamaConfig(`${where}/config.json`, rawConfig),
    E.map((config) => {
      const readFloat = (name: string, expected: ReadonlyArray<number>): TE.TaskEither<ModelError, Tensor> => {
        const shape = source.shape(name);
        if (shape === undefined) return TE.left(missingTensor(name, where));
        if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) return TE.left(tensorShapeMismatch(name, expected, shape));
        return pipe(
          source.read(name),
          TE.chain((t) => (FLOAT_DTYPES.includes(t.dtype) ? TE.right(t) : TE.left(unsupportedDType(name, t.dtype, FLOAT_DTYPES)))),
        );
      };
      const readF32 = (name: string, expected: ReadonlyArray<number>): TE.TaskEither<ModelError, Tensor<"f32">> => TE.map(toFloat32)(readFloat(name, expected));
      const h = config.hidden_size;
      const present = new Set(source.names());
      const layerExpected = (i: number): ReadonlyArray<readonly [string, ReadonlyArray<number>, boolean]> => {
        const p = `model.layers.${i}.`;
        return [
          ["input_layernorm.weight", [h], true],
          ["post_attention_layernorm.weight", [h], true],
          ...layerLinears(config).flatMap(
            (l) =>
              [
                [`${l.local}.weight`, [l.out, l.in], true],
                // Biases are optional: Qwen2 has q/k/v ones, attention_bias/mlp_bias models have them all.
                [`${l.local}.bias`, [l.out], present.has(`${p}${l.local}.bias`)],
              ] as const,
          ),
        ].filter(([, , req]) => req) as ReadonlyArray<readonly [string, ReadonlyArray<number>, boolean]>;
      };
      const handle: ModelHandle = {
        dir,
        config,
        architecture: architectureOf(config),
        rawConfig: rawConfig as Record<string, unknown>,
        numLayers: config.num_hidden_layers,
        linearModules: () => [
          ...Array.from({ length: config.num_hidden_layers }, (_, i) =>
            layerLinears(config).map(
              (l): LinearModule => ({ name: `model.layers.${i}.${l.local}`, layer: i, className: "Linear", inFeatures: l.in, outFeatures: l.out }),
            ),
          ).flat(),
          { name: "lm_head", layer: null, className: "Linear", inFeatures: h, outFeatures: config.vocab_size },
        ],
        loadEmbedding: () => readF32("model.embed_tokens.weight", [config.vocab_size, h]),
        loadLayer: (i) => {
          if (!Number.isSafeInteger(i) || i < 0 || i >= config.num_hidden_layers)
            return TE.left(invalidInput("layer", `${i} is out of range 0..${config.num_hidden_layers - 1}`));
          const p = `model.layers.${i}.`;
          return pipe(
            layerExpected(i),
            TE.traverseSeqArray(([local, shape]) =>
              pipe(
                readF32(p + local, shape),
                TE.map((t) => [local, t] as const),
              ),
            ),
            TE.map((entries): LayerWeights => new Map(entries)),
          );
        },
        loadLayerTensors: (i) => {
          if (!Number.isSafeInteger(i) || i < 0 || i >= config.num_hidden_layers)
            return TE.left(invalidInput("layer", `${i} is out of range 0..${config.num_hidden_layers - 1}`));
          const p = `model.layers.${i}.`;
          const expected = layerExpected(i);
          const others = source.names().filter((n) => n.startsWith(p) && !expected.some(([local]) => p + local === n));
          return pipe(
            [...expected.map(([local, shape]) => [local, readFloat(p + local, shape)] as const), ...others.map((n) => [n.slice(p.length), source.read(n)] as const)],
            TE.traverseSeqArray(([local, read]) => TE.map((t: Tensor) => [local, t] as const)(read)),
            TE.map((entries): ReadonlyMap<string, Tensor> => new Map(entries)),
          );
        },
        loadHead: () =>
          pipe(
            readF32("model.norm.weight", [h]),
            TE.chain((norm) =>
              pipe(
                config.tie_word_embeddings && !present.has("lm_head.weight") ? handle.loadEmbedding() : readF32("lm_head.weight", [config.vocab_size, h]),
                TE.map((lmHead): HeadWeights => ({ norm, lmHead })),
              ),
            ),
          ),
        tensorNames: () => source.names(),
        tensorInfo: infoOf(source),
        readTensor: (name) => source.read(name),
        close,
      };
      return handle;
    }),
  );

// ----- forward -----

/**
 * Logits [T, vocab] of one token sequence, streaming the weights layer by layer (only one layer is in memory
 * at a time), so it also evaluates models larger than RAM in f32.
 */
export const forwardLogits = (handle: ModelHandle, tokens: Int32Array, positions?: Int32Array): TE.TaskEither<ModelError, Tensor<"f32">> => {
  const vocab = handle.config.vocab_size;
  const bad = tokens.findIndex((t) => t < 0 || t >= vocab);
  if (tokens.length === 0) return TE.left(invalidInput("tokens", "the sequence is empty"));
  if (bad >= 0) return TE.left(invalidInput(`tokens[${bad}]`, `${tokens[bad]} is outside the vocabulary 0..${vocab - 1}`));
  if (positions !== undefined && positions.length !== tokens.length)
    return TE.left(invalidInput("positions", `${positions.length} positions for ${tokens.length} tokens`));
  const step =
    (i: number) =>
    (hidden: Tensor<"f32">): TE.TaskEither<ModelError, Tensor<"f32">> =>
      i === handle.numLayers
        ? pipe(
            handle.loadHead(),
            TE.map((head) => headForward(handle.config, head, hidden)),
          )
        : pipe(
            handle.loadLayer(i),
            TE.chainEitherK((w) => decoderLayerForward(handle.config, w, hidden, positions)),
            TE.chain(step(i + 1)),
          );
  return pipe(
    handle.loadEmbedding(),
    TE.map((e) => embed(e, tokens)),
    TE.chain(step(0)),
  );
};
