import type { QuantizationArgs } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type Observable, type OperatorFunction, map, reduce, scan } from "rxjs";
import type { ObserverError } from "./errors.js";
import type { Observer, ObserverOptions, ObserverState } from "./observer.js";
import type { QParams } from "./qparams-from-statistics.js";
import { createObserver } from "./registry.js";

// ----- operators -----

const resolve = (observer: Observer | string, args?: QuantizationArgs, options?: ObserverOptions): E.Either<ObserverError, Observer> =>
  typeof observer !== "string"
    ? E.right(observer)
    : args === undefined || options === undefined
      ? // unreachable through the overloads: a programmer bug, not input
        (() => {
          throw new Error("llmq internal: observe(name) needs args and options");
        })()
      : createObserver(args, options, observer);

/**
 * Folds an observer over a stream of observed tensors (calibration batches) and emits exactly one value when the
 * source completes: the qparams, or the first error (unknown observer, NaN/Inf in a batch, wrong shape, no
 * batches). Domain errors travel as `Left` values; the stream's error channel is left to infrastructure failures
 * of the source, which pass through untouched. Unsubscribing tears the source down.
 *
 * `observe(observer)` takes a built observer; `observe(name, args, options)` looks the name up in OBSERVERS.
 */
export function observe(observer: Observer): OperatorFunction<Tensor<"f32">, E.Either<ObserverError, QParams>>;
export function observe(name: string, args: QuantizationArgs, options: ObserverOptions): OperatorFunction<Tensor<"f32">, E.Either<ObserverError, QParams>>;
export function observe(
  observer: Observer | string,
  args?: QuantizationArgs,
  options?: ObserverOptions,
): OperatorFunction<Tensor<"f32">, E.Either<ObserverError, QParams>> {
  const built = resolve(observer, args, options);
  return (source: Observable<Tensor<"f32">>) =>
    E.isLeft(built)
      ? source.pipe(
          reduce((s: E.Either<ObserverError, QParams>) => s, E.left(built.left) as E.Either<ObserverError, QParams>),
        )
      : source.pipe(
          reduce((s: ObserverState<unknown>, x: Tensor<"f32">) => built.right.step(s, x), built.right.init),
          map((s) => built.right.finalize(s)),
        );
}

/**
 * The observer state after every batch (LC's running `min_vals`/`max_vals`, e.g. the EMA trace), for progress
 * reporting or for several modules sharing one fold. Emits once per source value.
 */
export const observeStates =
  <S>(observer: Observer<S>): OperatorFunction<Tensor<"f32">, ObserverState<S>> =>
  (source) =>
    source.pipe(scan((s: ObserverState<S>, x: Tensor<"f32">) => observer.step(s, x), observer.init));
