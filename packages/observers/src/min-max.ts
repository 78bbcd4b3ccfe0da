import type { QuantizationArgs } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { ObserverError } from "./errors.js";
import { type Observer, type ObserverOptions, type ObserverSpec, makeObserver } from "./observer.js";
import { mergedKwargs, numberKwarg } from "./observer-kwargs.js";
import { type MinMaxStatistics, checkFinite, lerpStatistics, rowMinMax, widen } from "./statistics.js";

// ----- constructors -----

const observed = (rows: Parameters<ObserverSpec<MinMaxStatistics>["update"]>[1], tensor: string) => checkFinite(rowMinMax(rows), rows.data, tensor);

const right = (s: MinMaxStatistics): E.Either<ObserverError, MinMaxStatistics> => E.right(s);

/** LC `memoryless_minmax`: min/max of the latest batch only. */
export const memorylessMinMax = (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<MinMaxStatistics>> =>
  E.right(makeObserver({ name: "memoryless_minmax", update: (_prev, rows) => observed(rows, options.tensor), toStatistics: right }, args, options));

/** LC `static_minmax`: running min of mins and max of maxes over every batch. */
export const staticMinMax = (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<MinMaxStatistics>> =>
  E.right(
    makeObserver(
      {
        name: "static_minmax",
        update: (prev, rows) => pipe(observed(rows, options.tensor), E.map((cur) => (prev === undefined ? cur : widen(prev, cur)))),
        toStatistics: right,
      },
      args,
      options,
    ),
  );

/**
 * LC `minmax`: exponential moving average of per-batch min/max, new = old·(1−c) + cur·c with
 * c = observer_kwargs.averaging_constant (default 0.01). The first batch is taken as is; c = 1 disables
 * averaging.
 */
export const movingAverageMinMax = (args: QuantizationArgs, options: ObserverOptions): E.Either<ObserverError, Observer<MinMaxStatistics>> =>
  pipe(
    numberKwarg("minmax", mergedKwargs(args.observer_kwargs, options.kwargs), "averaging_constant", 0.01),
    E.map((c) =>
      makeObserver(
        {
          name: "minmax",
          update: (prev, rows) =>
            pipe(
              observed(rows, options.tensor),
              E.map((cur) => (prev === undefined || c === 1 ? cur : lerpStatistics(prev, cur, c))),
            ),
          toStatistics: right,
        },
        args,
        options,
      ),
    ),
  );
