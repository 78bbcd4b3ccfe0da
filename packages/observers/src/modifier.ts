import type { QuantizationScheme, TransformConfig } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import type * as E from "fp-ts/lib/Either.js";
import { type Observable, type OperatorFunction, defer, reduce } from "rxjs";

// The modifier contract of llm-compressor, as values. A modifier is initialized against the model (before anything is
// read), receives calibration_epoch_start, one sequential_epoch_end per decoder layer (then one for the head), and
// calibration_epoch_end, and is finalized. Between the events, the calibration pass of a layer emits taps (linear
// inputs, post-RoPE keys/values) that each active modifier folds with its own reducer; at the layer's epoch end the
// modifier edits the in-memory layer, which is then what propagates to the next layer and what is saved. Nothing here
// knows an architecture or an algorithm: those come from @llmq/models' tables and the packages that own the math.

// ----- model -----

/** A linear module under its HF name ("model.layers.3.self_attn.q_proj"); `layer` is null for the head. */
export interface ModuleInfo {
  readonly name: string;
  readonly layer: number | null;
  readonly className: string;
  readonly inFeatures: number;
  readonly outFeatures: number;
}

/** What a modifier needs of an architecture table (@llmq/models' `Architecture` has these fields). */
export interface ArchitectureInfo {
  readonly layerPrefix: (layer: number) => string;
  /** Linears fed the same tensor, by local name. */
  readonly sharedInputs: ReadonlyArray<ReadonlyArray<string>>;
  /** Linears a runtime fuses (one NVFP4 global scale). */
  readonly fusedGroups: ReadonlyArray<ReadonlyArray<string>>;
  /** The norms of a decoder layer by local name (1-D `weight`): smooth layers of SmoothQuant / AWQ mappings. */
  readonly layerNorms: ReadonlyArray<string>;
  /** Norm → the linears that read its output (the family's default SmoothQuant / AWQ mappings). */
  readonly normMappings: ReadonlyArray<{ readonly norm: string; readonly linears: ReadonlyArray<string> }>;
  /** Linear → linears AWQ may balance when shapes allow (v_proj → o_proj, up_proj → down_proj). */
  readonly linearMappings: ReadonlyArray<{ readonly from: string; readonly to: ReadonlyArray<string> }>;
}

/**
 * Runs one submodule of a decoder layer alone, as AWQ's grid search runs a mapping's parent module on its cached
 * inputs. Submodules are local names: "self_attn", "mlp" or a linear ("self_attn.o_proj").
 */
export interface SubmoduleRunner {
  /** The linear whose tapped input is the submodule's input ("self_attn" → "self_attn.q_proj"); null when it cannot run alone. */
  readonly inputOf: (submodule: string) => string | null;
  /** The submodule's output on `x` (attention without the residual, the MLP without it, a linear) with these f32 weights. */
  readonly forward: (submodule: string, weights: ReadonlyMap<string, Tensor<"f32">>, x: Tensor<"f32">) => E.Either<string, Tensor<"f32">>;
}

/** The model as modifiers see it at initialization: module names and shapes, stored dtypes; no weights. */
export interface ModelInfo {
  readonly linears: ReadonlyArray<ModuleInfo>;
  readonly numLayers: number;
  readonly architecture: ArchitectureInfo;
  /** Whether the checkpoint stores a tensor of this name (a tied lm_head stores none). */
  readonly hasTensor: (tensor: string) => boolean;
  /** Submodule forwards for modifiers that search on a parent module's output (AWQ). */
  readonly submodules: SubmoduleRunner;
  /** What rotations (SpinQuant, QuIP) need beyond the linears; absent where the model cannot be rotated. */
  readonly rotation?: RotationInfo;
  /** Head counts of the decoder's attention (KV-cache calibration); absent where the model has none. */
  readonly attention?: AttentionShape;
}

/** The shape of a decoder layer's attention: query heads, key/value heads (GQA), and the head width. */
export interface AttentionShape {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** The modules outside the decoder layers that rotations touch (the head width is `ModelInfo.attention.headDim`). */
export interface RotationInfo {
  /** Embedding module name ("model.embed_tokens"); its weight is `${embedding}.weight`, [vocab, hidden]. */
  readonly embedding: string;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  /** Final norm tensor ("model.norm.weight"), in the head's LayerState. */
  readonly finalNorm: string;
  /** The output projection module ("lm_head"). */
  readonly head: string;
  readonly tiedEmbeddings: boolean;
}

/** A transform applied to a linear's input or output at run time (x ← x · matrix / scale along the last axis, per block). */
export interface OnlineTransform {
  /** "<scheme>_<location>" (the submodule compressed-tensors registers). */
  readonly name: string;
  /** A linear's input or output, or (on the attention module) the post-RoPE queries / keys. */
  readonly location: "input" | "output" | "q_attn" | "k_cache";
  /** Block size n; the matrix is n×n, applied block-diagonally. */
  readonly n: number;
  /** The matrix to right-multiply (already transposed / inverted as the args say), f64 or f32 (the precision). */
  readonly matrix: Float64Array | Float32Array;
  readonly scale: number;
  /** The saved tensor holding this transform's weight (`<module>.<scheme>_<location>.weight`), transposed or not. */
  readonly source?: { readonly tensor: string; readonly transposed: boolean };
  /**
   * Hadamard types: matrix = M or Mᵀ (`transposed`), M = diag(signs) · H of a construction, so that the product can run
   * as a fast transform (@llmq/transforms' rightMultiply); absent for random matrices.
   */
  readonly structure?: { readonly construction: "sylvester" | "known"; readonly signs: Float64Array | null; readonly transposed: boolean };
}

/**
 * What every modifier planned, known once all are initialized (LC's `quantization_scheme` attached to modules by
 * QuantizationMixin.on_initialize): AWQ reads the scheme of its balance layers from here at calibration start.
 */
export interface ModelPlan {
  /** Full module name → the scheme some modifier will quantize it with. */
  readonly schemes: ReadonlyMap<string, QuantizationScheme>;
}

/** The compressed-tensors parameters of one quantized weight (what the compressor turns into tensors). */
export interface QuantizedWeight {
  readonly name: string;
  /** Storage codes (int8/int16/int32 for int, f8_e4m3fn / f4_e2m1 for floats), [out, in]. */
  readonly quantized: Tensor;
  readonly scale: Tensor;
  /** Present for asymmetric args only. */
  readonly zeroPoint: Tensor | null;
  readonly globalScale: Tensor<"f32"> | null;
  readonly gIdx: Tensor<"i32"> | null;
  /** The dequantized weight in f32 (what a loader of the checkpoint computes). */
  readonly fakeQuantized: Tensor<"f32">;
  /** GPTQ's loss (Σ ((w − q)/d)² / 2) or, for RTN, Σ (w − q)² / 2 over the weight. */
  readonly loss: number;
  readonly method: string;
  readonly warnings: ReadonlyArray<string>;
}

/** A module a modifier quantized: its scheme, weight parameters, and calibrated activation parameters. */
export interface QuantizedModule {
  readonly module: ModuleInfo;
  /** The modifier that quantized it (reports, conflicts). */
  readonly modifier: string;
  readonly scheme: QuantizationScheme;
  readonly weight: QuantizedWeight | null;
  /** `input_scale`, `input_zero_point`, `input_global_scale`… as saved beside the weight. */
  readonly activationParams: ReadonlyArray<readonly [string, Tensor]>;
  /** The layer tensor the weight parameters were computed from; a later edit of it makes them stale (an error). */
  readonly source: Tensor;
  readonly seconds: number;
}

/**
 * One decoder layer (or the head: index = numLayers, prefix "") in memory: the single source of truth for what is
 * propagated, quantized and saved. Tensors keep their stored dtype until a modifier replaces them.
 */
export interface LayerState {
  readonly index: number;
  /** "model.layers.3." (full name = prefix + local name). */
  readonly prefix: string;
  /** Local tensor name ("self_attn.q_proj.weight", "input_layernorm.weight") → tensor. */
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** Local module name → its quantization. */
  readonly quantized: ReadonlyMap<string, QuantizedModule>;
  /** The modules of this layer, by local name. */
  readonly modules: ReadonlyMap<string, ModuleInfo>;
  /** Online transforms of this layer's linears (local name → transforms in application order); absent = none. */
  readonly online?: ReadonlyMap<string, ReadonlyArray<OnlineTransform>>;
}

/** What a calibration pass emits. Module names are local to the layer. Tensors must not be mutated. */
export type Tap =
  | { readonly _tag: "LinearInput"; readonly modules: ReadonlyArray<string>; readonly x: Tensor<"f32"> }
  | { readonly _tag: "AttentionKV"; readonly k: Tensor<"f32">; readonly v: Tensor<"f32"> };

/** Events of llm-compressor's EventType that reach modifiers (oneshot uses the first three). */
export type ModifierEvent =
  | { readonly type: "calibration_epoch_start" }
  | { readonly type: "sequential_epoch_end"; readonly layer: number }
  | { readonly type: "calibration_epoch_end" }
  | { readonly type: "batch_start"; readonly batch: number }
  | { readonly type: "loss_calculated"; readonly loss: number }
  | { readonly type: "optim_pre_step" }
  | { readonly type: "optim_post_step" }
  | { readonly type: "batch_end"; readonly batch: number };

/** A modifier's failure, with the module it concerns and the typed cause from the package that owns the math. */
export interface ModifierError {
  readonly _tag: "ModifierError";
  readonly modifier: string;
  readonly module: string | null;
  /** The underlying typed error (ObserverError, SchemeError, GptqError…), kept for programs. */
  readonly cause: { readonly _tag: string } | null;
  /** One readable sentence. */
  readonly detail: string;
}

/** The taps one modifier needs from a layer's calibration pass and how it folds them. */
export interface Calibration<C> {
  /** Local names of linears whose input this modifier observes. */
  readonly linearInputs: ReadonlySet<string>;
  readonly attentionKV: boolean;
  /** Folds the layer's taps (every calibration window, in order) into one value: a reducer or any RxJS fold. */
  readonly fold: OperatorFunction<Tap, C>;
}

/** What a transform decided for one mapping of a layer (reports): AWQ's grid search result, SmoothQuant's scales. */
export interface TransformRecord {
  readonly modifier: string;
  /** The smooth layer (full name) and the balance layers it was balanced against. */
  readonly smooth: string;
  readonly balance: ReadonlyArray<string>;
  /** AWQ: the chosen grid point and its loss, the loss at the first grid point; null for SmoothQuant. */
  readonly ratio: number | null;
  readonly duoScaling: boolean | null;
  readonly loss: number | null;
  readonly initialLoss: number | null;
  /** Range of the applied smoothing scales. */
  readonly scaleMin: number;
  readonly scaleMax: number;
  readonly seconds: number;
}

/** What the pipeline hands a layer's epoch end besides the layer: the run's abort signal. */
export interface EpochContext {
  readonly signal?: AbortSignal | undefined;
}

/** What sequential_epoch_end returns: the next modifier state, the edited layer, and warnings. */
export interface EpochEnd<S> {
  readonly state: S;
  readonly layer: LayerState;
  readonly warnings: ReadonlyArray<string>;
  /** Per-mapping decisions of a transform, for the report. */
  readonly records?: ReadonlyArray<TransformRecord>;
}

/**
 * A modifier value. `S` is its own state (plans, observers, running statistics), `C` what its calibration fold
 * produces for one layer. Every step is pure: it returns a new state (hot loops may mutate buffers the fold created,
 * behind this interface: the in-place Hessian sum). Members are methods so that any `Modifier<S, C>` is a `Modifier`
 * (the pipeline holds modifiers of different states side by side and hands each its own state back).
 */
export interface Modifier<S = unknown, C = unknown> {
  /** llm-compressor class name ("GPTQModifier") or a user's own. */
  readonly type: string;
  /** Whether the sequential pipeline (with calibration data) is needed: LC `requires_calibration_data`. */
  readonly requiresCalibrationData: boolean;
  /** Why, in one phrase, for the error when no data is given ("GPTQ needs calibration data"). */
  readonly calibrationDataReason?: string;
  /** on_initialize: resolve against the model; fails before anything is read. */
  initialize(model: ModelInfo): E.Either<ModifierError, S>;
  /** The modules this modifier will quantize, by full name, with their schemes (two modifiers may not share one). */
  plannedSchemes?(state: S): ReadonlyMap<string, QuantizationScheme>;
  /** on_start (oneshot: right after initialize, as LC's fake batch_start with start ≤ 0 does). */
  onStart?(state: S): E.Either<ModifierError, S>;
  /** calibration_epoch_start, with what all modifiers planned (LC's on_calibration_start sees the attached schemes). */
  onCalibrationEpochStart?(state: S, plan: ModelPlan): E.Either<ModifierError, S>;
  /** The taps and fold for one layer's calibration pass; null when this modifier observes nothing there. */
  calibration?(state: S, layer: LayerState): Calibration<C> | null;
  /** on_sequential_epoch_end: edit (quantize, smooth, rotate…) the layer given the folded calibration. */
  /**
   * A long edit (AWQ's grid search) may return a Promise and yield between steps, so that a signal is handled: it then
   * stops when `context.signal` is aborted (the pipeline reports the abort, not the modifier's Left).
   */
  onSequentialEpochEnd(
    state: S,
    layer: LayerState,
    calibrated: C | null,
    context?: EpochContext,
  ): E.Either<ModifierError, EpochEnd<S>> | Promise<E.Either<ModifierError, EpochEnd<S>>>;
  /**
   * Edits of the tensors outside the decoder layers and the head (the embedding), before the calibration windows are
   * embedded: what LC's on_calibration_start does to the whole model (SpinQuant centres and rotates the embedding).
   */
  editGlobals?(state: S, globals: ReadonlyMap<string, Tensor>): E.Either<ModifierError, { readonly state: S; readonly edits: ReadonlyArray<readonly [string, Tensor]> }>;
  /** What the modifier adds to config.json: top-level keys (tie_word_embeddings) and a transform_config. */
  checkpointConfig?(state: S): { readonly config: Readonly<Record<string, unknown>>; readonly transformConfig: TransformConfig | null };
  onCalibrationEpochEnd?(state: S): E.Either<ModifierError, S>;
  onEnd?(state: S): E.Either<ModifierError, S>;
  onFinalize?(state: S): E.Either<ModifierError, S>;
}

// ----- constructors -----

export const modifierError = (modifier: string, module: string | null, detail: string, cause: { readonly _tag: string } | null = null): ModifierError => ({
  _tag: "ModifierError",
  modifier,
  module,
  cause,
  detail,
});

/** A calibration fold from a pure reducer (`init` is called per layer, per subscription). */
export const reducer =
  <C>(init: () => C, step: (acc: C, tap: Tap) => C): OperatorFunction<Tap, C> =>
  (taps: Observable<Tap>) =>
    defer(() => taps.pipe(reduce(step, init())));

export const formatModifierError = (e: ModifierError): string =>
  `${e.modifier}${e.module !== null ? ` (${e.module})` : ""}: ${e.detail}`;

/** A layer with some tensors replaced (a modifier's edit); everything else shared. */
export const withTensors = (layer: LayerState, edits: ReadonlyArray<readonly [string, Tensor]>): LayerState =>
  edits.length === 0 ? layer : { ...layer, tensors: new Map([...layer.tensors, ...edits]) };

/** A layer with some modules' quantization recorded. */
export const withQuantized = (layer: LayerState, modules: ReadonlyArray<QuantizedModule>): LayerState =>
  modules.length === 0
    ? layer
    : { ...layer, quantized: new Map([...layer.quantized, ...modules.map((m) => [m.module.name.slice(layer.prefix.length), m] as const)]) };
