import { type KvCacheFormat, type LayerKvCache, createKvCache } from "@llmq/kv-cache";
import { type HeadWeights, type LayerHooks, type LayerWeights, type ModelHandle, decoderLayerForward, embed, formatModelError, headForward, sampleToken } from "@llmq/models";
import { Rng, Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { Observable } from "rxjs";
import { type LlmqError, aborted, modelError, usageError } from "./errors.js";
import { type KvCacheOverride, layerKvFormat, runtimeLayerHooks } from "./evaluate.js";
import { type ProgressSink, noProgress } from "./progress.js";

export { sampleToken };

// Incremental decoding: the prompt is run once through every layer, each layer's keys and values kept in a KV cache
// (f32 by default, the checkpoint's calibrated fp8/int8 one, or an override), then each new token is one position
// through the layers, attending to the cache. Tokens are a stream (RxJS), sampled greedily or by top-p. Without a
// cache ("none") every step recomputes the whole sequence: the reference the cached path must agree with.

// ----- model -----

/** A model held in memory for decoding (every layer's f32 weights: generation reads all of them per token). */
export interface LoadedModel {
  readonly handle: ModelHandle;
  readonly embedding: Tensor<"f32">;
  readonly layers: ReadonlyArray<LayerWeights>;
  readonly head: HeadWeights;
  /** Per layer: its online transforms and the input quantization of its linears, as a runtime applies them. */
  readonly hooks: ReadonlyArray<LayerHooks | undefined>;
}

export interface GenerateOptions {
  readonly maxTokens: number;
  /** 0 (default) = greedy. */
  readonly temperature?: number;
  /** Nucleus sampling mass (default 1 = the whole distribution). */
  readonly topP?: number;
  readonly seed?: number;
  /** The cache's format; default the checkpoint's calibrated one, else f32; "none" recomputes every step. */
  readonly kvCache?: KvCacheOverride | "none" | undefined;
  /** Stop at this token (the tokenizer's EOS); null = never. */
  readonly eosId?: number | null;
  readonly signal?: AbortSignal;
}

export interface GeneratedToken {
  readonly id: number;
  /** 0 for the first generated token. */
  readonly index: number;
  /** KV-cache bytes held after this token (all layers), 0 without a cache. */
  readonly kvBytes: number;
}

// ----- functions -----

/** Reads the embedding, every decoder layer and the head into memory. */
export const loadForGeneration = (h: ModelHandle, progress: ProgressSink = noProgress): TE.TaskEither<LlmqError, LoadedModel> => async () => {
  const lift = <A>(r: E.Either<Parameters<typeof formatModelError>[0], A>): E.Either<LlmqError, A> => E.mapLeft((e: Parameters<typeof formatModelError>[0]) => modelError(formatModelError(e)))(r);
  const emb = lift(await h.loadEmbedding()());
  if (E.isLeft(emb)) return emb;
  const layers: LayerWeights[] = [];
  progress({ kind: "stage", stage: "loading", total: h.numLayers });
  for (let i = 0; i < h.numLayers; i++) {
    const w = lift(await h.loadLayer(i)());
    if (E.isLeft(w)) return w;
    layers.push(w.right);
    progress({ kind: "tick", stage: "loading", done: i + 1, total: h.numLayers, label: `layer ${i}` });
  }
  const head = lift(await h.loadHead()());
  if (E.isLeft(head)) return head;
  const hooks = layers.map((_, i) => runtimeLayerHooks(h, i));
  return E.right({ handle: h, embedding: emb.right, layers, head: head.right, hooks });
};


/** The caches of every layer for a sequence of up to `capacity` positions, or null for "none". */
const cachesFor = (m: LoadedModel, override: GenerateOptions["kvCache"], capacity: number): ReadonlyArray<LayerKvCache> | null => {
  if (override === "none") return null;
  const formats: KvCacheFormat[] = m.layers.map((_, i) => layerKvFormat(m.handle, i, override) ?? { kind: "f32" });
  return createKvCache(formats, { layers: m.layers.length, kvHeads: m.handle.config.num_key_value_heads, headDim: m.handle.config.head_dim, capacity });
};

/** Logits of the last of `tokens` (new positions after what the caches hold; without caches the whole sequence). */
export const lastLogits = (m: LoadedModel, tokens: Int32Array, caches: ReadonlyArray<LayerKvCache> | null): E.Either<LlmqError, Float32Array> => {
  let hidden = embed(m.embedding, tokens);
  for (const [i, w] of m.layers.entries()) {
    const hooks = caches === null ? m.hooks[i] : { ...m.hooks[i], kvCache: caches[i]! };
    const next = decoderLayerForward(m.handle.config, w, hidden, undefined, hooks);
    if (E.isLeft(next)) return E.left(modelError(formatModelError(next.left)));
    hidden = next.right;
  }
  const h = m.handle.config.hidden_size;
  const last = new Tensor("f32", [1, h], hidden.data.slice((tokens.length - 1) * h));
  return E.right(headForward(m.handle.config, m.head, last).data);
};

const checkOptions = (m: LoadedModel, prompt: Int32Array, o: GenerateOptions): LlmqError | null => {
  const vocab = m.handle.config.vocab_size;
  if (prompt.length === 0) return usageError("--prompt", "the prompt has no tokens", "give a non-empty prompt");
  const bad = prompt.findIndex((t) => t < 0 || t >= vocab);
  if (bad >= 0) return usageError("--prompt", `token ${prompt[bad]} is outside the vocabulary of ${vocab}`, "use the model's own tokenizer");
  if (!(Number.isSafeInteger(o.maxTokens) && o.maxTokens >= 1)) return usageError("--max-tokens", `must be a positive integer, got ${o.maxTokens}`, "pass e.g. --max-tokens 64");
  // The cache is allocated for the whole sequence up front; positions past the model's range are not what it learned.
  const limit = m.handle.config.max_position_embeddings;
  if (prompt.length + o.maxTokens > limit)
    return usageError("--max-tokens", `${prompt.length} prompt tokens + ${o.maxTokens} exceed the model's ${limit} positions (max_position_embeddings)`, `pass at most --max-tokens ${Math.max(1, limit - prompt.length)}`);
  if (!((o.temperature ?? 0) >= 0)) return usageError("--temperature", `must be ≥ 0, got ${o.temperature}`, "0 is greedy");
  if (!((o.topP ?? 1) > 0 && (o.topP ?? 1) <= 1)) return usageError("--top-p", `must be in (0, 1], got ${o.topP}`, "1 keeps the whole distribution");
  return null;
};

/**
 * Generates up to `maxTokens` tokens after `prompt`: a stream of tokens (each a Right), ending early at `eosId`, or
 * with one Left (bad options, a failing forward, an abort) after which it completes.
 */
export const generate = (m: LoadedModel, prompt: Int32Array, o: GenerateOptions): Observable<E.Either<LlmqError, GeneratedToken>> =>
  new Observable((sub) => {
    let stopped = false;
    const run = async (): Promise<void> => {
      const bad = checkOptions(m, prompt, o);
      if (bad !== null) return void sub.next(E.left(bad));
      const caches = cachesFor(m, o.kvCache, prompt.length + o.maxTokens);
      const rng = new Rng(o.seed ?? 0);
      // The positions the next step runs: all of them without a cache, else only those the cache does not hold yet.
      let next = Int32Array.from(prompt);
      for (let index = 0; index < o.maxTokens && !stopped; index++) {
        if (o.signal?.aborted) return void sub.next(E.left(aborted("interrupted")));
        const logits = lastLogits(m, next, caches);
        if (E.isLeft(logits)) return void sub.next(logits);
        const id = sampleToken(logits.right, o.temperature ?? 0, o.topP ?? 1, rng.uniform());
        sub.next(E.right({ id, index, kvBytes: caches === null ? 0 : caches.reduce((a, c) => a + c.bytes(), 0) }));
        if (id === o.eosId) return;
        next = caches === null ? Int32Array.from([...next, id]) : Int32Array.of(id);
        await new Promise((r) => setTimeout(r, 0)); // let a signal or an unsubscribe in between tokens
      }
    };
    run().then(
      () => sub.complete(),
      (e) => sub.error(e),
    );
    return () => {
      stopped = true;
    };
  });
