import type { QuantizationArgs } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type ObserverError, noObservations } from "./errors.js";
import { type CalibrationRows, type ObservedKind, flattenForCalibration } from "./flatten-for-calibration.js";
import type { ImportanceState } from "./imatrix.js";
import { type QParams, qparamsFromStatistics } from "./qparams-from-statistics.js";
import type { MinMaxStatistics } from "./statistics.js";

// ----- model -----

/**
 * Reducer state. `Failed` is sticky: once a batch is rejected (NaN/Inf, wrong shape) later batches are ignored
 * and `finalize` returns the first error, so a stream fold never hides a bad batch.
 */
export type ObserverState<S> =
  | { readonly _tag: "Empty" }
  | { readonly _tag: "Observing"; readonly value: S; readonly batches: number }
  | { readonly _tag: "Failed"; readonly error: ObserverError };

/**
 * An observer as a pure reducer over observed tensors. Weights are f32 [out, in]; activations f32
 * [tokens, features] (leading dims flattened). Nothing is mutated: `step` returns a new state.
 */
export interface Observer<S = unknown> {
  /** Registry name (LC spelling, e.g. "memoryless_minmax"). */
  readonly name: string;
  /** Name of the observed tensor, used in every error (e.g. "model.layers.0.mlp.down_proj.input"). */
  readonly tensor: string;
  readonly kind: ObservedKind;
  readonly args: QuantizationArgs;
  readonly init: ObserverState<S>;
  step(state: ObserverState<S>, x: Tensor<"f32">): ObserverState<S>;
  /** The min/max statistics the qparams come from (LC `get_statistics`). */
  statistics(state: ObserverState<S>): E.Either<ObserverError, MinMaxStatistics>;
  /**
   * qparams from the accumulated statistics (LC `get_qparams`). For tensor_group the global scale comes from the
   * absmax over this observer and `fused` partners (q/k/v, gate/up share one global scale in LC).
   */
  finalize(state: ObserverState<S>, fused?: ReadonlyArray<MinMaxStatistics>): E.Either<ObserverError, QParams>;
}

/** Options every observer factory takes. `kwargs` are merged over `args.observer_kwargs` (LC constructor kwargs). */
export interface ObserverOptions {
  readonly tensor: string;
  readonly kind: ObservedKind;
  readonly kwargs?: Readonly<Record<string, unknown>>;
  /** For imatrix observers: Σx² per input channel of the module's calibration inputs (see `importanceStep`). */
  readonly importance?: ImportanceState;
}

export type ObserverFactory = (args: QuantizationArgs, options: ObserverOptions) => E.Either<ObserverError, Observer>;

// ----- constructors -----

/** Pieces that distinguish one observer from another: how a batch updates the state, and the statistics. */
export interface ObserverSpec<S> {
  readonly name: string;
  readonly update: (prev: S | undefined, rows: CalibrationRows, x: Tensor<"f32">) => E.Either<ObserverError, S>;
  readonly toStatistics: (s: S) => E.Either<ObserverError, MinMaxStatistics>;
}

/** Assembles an {@link Observer} from a spec: shared empty-tensor, weight-once, flattening and failure rules. */
export const makeObserver = <S>(spec: ObserverSpec<S>, args: QuantizationArgs, options: ObserverOptions): Observer<S> => {
  const { tensor, kind } = options;
  const statistics = (state: ObserverState<S>): E.Either<ObserverError, MinMaxStatistics> =>
    state._tag === "Failed"
      ? E.left(state.error)
      : state._tag === "Empty"
        ? E.left(noObservations(spec.name, tensor))
        : spec.toStatistics(state.value);
  return {
    name: spec.name,
    tensor,
    kind,
    args,
    init: { _tag: "Empty" },
    step(state, x) {
      if (state._tag === "Failed" || x.size === 0) return state;
      // LC: a weight observer ignores further calls once it has statistics
      if (kind === "weight" && state._tag === "Observing") return state;
      const prev = state._tag === "Observing" ? state.value : undefined;
      const next = E.flatMap(flattenForCalibration(x, kind, args, spec.name, tensor), (rows) => spec.update(prev, rows, x));
      return E.isLeft(next)
        ? { _tag: "Failed", error: next.left }
        : { _tag: "Observing", value: next.right, batches: state._tag === "Observing" ? state.batches + 1 : 1 };
    },
    statistics,
    finalize(state, fused = []) {
      return E.flatMap(statistics(state), (stats) => qparamsFromStatistics(stats, fused, args, tensor));
    },
  };
};
