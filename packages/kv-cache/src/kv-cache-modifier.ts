import {
  type AttentionShape,
  type Calibration,
  type LayerState,
  type ModelInfo,
  type Modifier,
  type ModifierError,
  type Observer,
  type ObserverError,
  type QParams,
  type Tap,
  activationScaleDType,
  createObserver,
  formatObserverError,
  modifierError,
  observe,
  withTensors,
} from "@llmq/observers";
import type { QuantizationArgs } from "@llmq/schemes";
import { type Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { connect, filter, map, zip } from "rxjs";
import { formatKvCacheError } from "./errors.js";
import { headsMajor } from "./heads-major.js";
import { type KvCacheScheme, checkKvCacheScheme } from "./kv-cache-scheme.js";

// The kv part of llm-compressor's QuantizationMixin: with a kv_cache_scheme, every attention module gets static k and v
// observers (compressed-tensors' QuantizedKVCache hooks), fed the key states after RoPE and the value states of every
// calibration batch; at the layer's sequential epoch end their qparams become `self_attn.k_scale` / `v_scale` (and
// zero points for asymmetric args) in the model's dtype, saved beside the attention's linears.

// ----- model -----

export interface KvCacheState {
  readonly type: string;
  readonly scheme: KvCacheScheme;
  readonly attention: AttentionShape;
  readonly numLayers: number;
  /** The attention module of each decoder layer, by local name ("self_attn"). */
  readonly attentionOf: ReadonlyMap<number, string>;
  readonly k: Observer;
  readonly v: Observer;
}

/** The calibrated k and v qparams of one layer. */
export interface ObservedKv {
  readonly k: E.Either<ObserverError, QParams>;
  readonly v: E.Either<ObserverError, QParams>;
}

// ----- functions -----

/** The attention module of each decoder layer: the parent of a k_proj that has a v_proj sibling. */
const attentionModules = (type: string, model: ModelInfo): E.Either<ModifierError, ReadonlyMap<number, string>> => {
  const out = new Map<number, string>();
  for (let i = 0; i < model.numLayers; i++) {
    const prefix = model.architecture.layerPrefix(i);
    const locals = new Set(model.linears.filter((m) => m.layer === i).map((m) => m.name.slice(prefix.length)));
    const k = [...locals].find((l) => l.endsWith("k_proj") && locals.has(l.replace(/k_proj$/, "v_proj")));
    if (k === undefined)
      return E.left(
        modifierError(type, `${prefix.slice(0, -1)}`, "kv_cache_scheme needs attention modules with k_proj and v_proj (llm-compressor finds the cached attention by them); this layer has none"),
      );
    out.set(i, k.slice(0, -".k_proj".length));
  }
  return E.right(out);
};

const kvObserver = (type: string, scheme: KvCacheScheme, kind: "k" | "v"): E.Either<ModifierError, Observer> =>
  E.mapLeft((e: ObserverError) => modifierError(type, null, `kv_cache_scheme observer: ${formatObserverError(e)}`, e))(
    createObserver(scheme.args, { tensor: `self_attn.${kind}`, kind }, scheme.observer),
  );


/** The tensors of one calibrated layer: `<attn>.k_scale`, `<attn>.v_scale` (+ `*_zero_point` for asymmetric args). */
export const kvTensors = (
  attn: string,
  args: QuantizationArgs,
  observed: { readonly k: QParams; readonly v: QParams },
  dtype: "f32" | "bf16" | "f16" | "f64",
): ReadonlyArray<readonly [string, Tensor]> =>
  (["k", "v"] as const).flatMap((kind) => [
    [`${attn}.${kind}_scale`, cast(observed[kind].scale, dtype)] as const,
    ...(args.symmetric ? [] : [[`${attn}.${kind}_zero_point`, observed[kind].zeroPoint] as const]),
  ]);

const initialize = (type: string, args: QuantizationArgs, model: ModelInfo): E.Either<ModifierError, KvCacheState> =>
  pipe(
    E.mapLeft((e: Parameters<typeof formatKvCacheError>[0]) => modifierError(type, null, formatKvCacheError(e), e))(checkKvCacheScheme(args)),
    E.chain((scheme) =>
      model.attention === undefined ? E.left(modifierError(type, null, "kv_cache_scheme needs the model's attention shape (heads, KV heads, head_dim)")) : E.right({ scheme, attention: model.attention }),
    ),
    E.chain(({ scheme, attention }) =>
      pipe(
        E.Do,
        E.apS("attentionOf", attentionModules(type, model)),
        E.apS("k", kvObserver(type, scheme, "k")),
        E.apS("v", kvObserver(type, scheme, "v")),
        E.map((r): KvCacheState => ({ type, scheme, attention, numLayers: model.numLayers, ...r })),
      ),
    ),
  );

const calibration = (s: KvCacheState, layer: LayerState): Calibration<ObservedKv> | null => {
  if (layer.index >= s.numLayers) return null;
  const { kvHeads, headDim } = s.attention;
  const kv = (t: Tap): t is Extract<Tap, { _tag: "AttentionKV" }> => t._tag === "AttentionKV";
  return {
    linearInputs: new Set(),
    attentionKV: true,
    fold: (taps) =>
      taps.pipe(
        filter(kv),
        connect((shared) =>
          zip(
            shared.pipe(map((t) => headsMajor(t.k, kvHeads, headDim)), observe(s.k)),
            shared.pipe(map((t) => headsMajor(t.v, kvHeads, headDim)), observe(s.v)),
          ),
        ),
        map(([k, v]): ObservedKv => ({ k, v })),
      ),
  };
};

const epochEnd = (s: KvCacheState, layer: LayerState, observed: ObservedKv | null) => {
  const attn = s.attentionOf.get(layer.index);
  if (attn === undefined || observed === null) return E.right({ state: s, layer, warnings: [] as string[] });
  const name = `${layer.prefix}${attn}`;
  return pipe(
    E.Do,
    E.apS("k", observed.k),
    E.apS("v", observed.v),
    E.mapLeft((e: ObserverError) => modifierError(s.type, name, formatObserverError(e), e)),
    E.map((q) => ({
      state: s,
      layer: withTensors(layer, kvTensors(attn, s.scheme.args, q, activationScaleDType(layer.tensors.get(`${attn}.k_proj.weight`)?.dtype ?? "f32"))),
      warnings: layer.index === 0 ? [...s.scheme.warnings] : [],
    })),
  );
};

/**
 * The kv_cache_scheme part of QuantizationModifier / GPTQModifier (`owner` names it in messages): calibrates k_scale
 * and v_scale of every decoder layer's attention. Needs calibration data, like LC's `requires_calibration_data`.
 */
export const KvCacheModifier = (args: QuantizationArgs, owner = "QuantizationModifier"): Modifier<KvCacheState, ObservedKv> & { readonly kvCacheScheme: QuantizationArgs } => {
  const type = `${owner}.kv_cache_scheme`;
  return {
    type,
    kvCacheScheme: args,
    requiresCalibrationData: true,
    calibrationDataReason: "kv_cache_scheme calibrates k_scale / v_scale on the keys and values of calibration data",
    initialize: (model) => initialize(type, args, model),
    plannedSchemes: () => new Map(),
    calibration,
    onSequentialEpochEnd: (s, layer, observed) => epochEnd(s, layer, observed),
  };
};

/** The kv_cache_scheme a modifier (or a part of a combined one) calibrates: what config.json's `kv_cache_scheme` records. */
export const kvCacheSchemeOf = (m: Modifier): QuantizationArgs | null => {
  if ("kvCacheScheme" in m) return (m as { readonly kvCacheScheme: QuantizationArgs }).kvCacheScheme;
  const parts = "parts" in m ? (m as { readonly parts: ReadonlyArray<Modifier> }).parts : [];
  return parts.map(kvCacheSchemeOf).find((a) => a !== null) ?? null;
};
