import type { QuantizationArgs } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type ObserverError, unknownObserver } from "./errors.js";
import { histogram, minMaxOrHistogram } from "./histogram.js";
import { imatrixMse, nvfp4ExpandedImatrix } from "./imatrix.js";
import { memorylessMinMax, movingAverageMinMax, staticMinMax } from "./min-max.js";
import { memorylessMse, movingAverageMse, nvfp4ExpandedMse } from "./mse.js";
import type { Observer, ObserverFactory, ObserverOptions } from "./observer.js";

/**
 * Every observer by registry name: llm-compressor 0.14's `Observer.register` names, then msModelSlim's activation
 * observers — act_method 1 (StatMinMaxObserver, running per-tensor min/max) is "static_minmax", act_method 2
 * (torch.ao HistogramObserver port) is "histogram", act_method 3 (automatic mix by max/std) is
 * "minmax_or_histogram".
 */
export const OBSERVERS = {
  memoryless_minmax: memorylessMinMax,
  static_minmax: staticMinMax,
  minmax: movingAverageMinMax,
  memoryless_mse: memorylessMse,
  mse: movingAverageMse,
  nvfp4_expanded_mse: nvfp4ExpandedMse,
  imatrix_mse: imatrixMse,
  nvfp4_expanded_imatrix: nvfp4ExpandedImatrix,
  histogram,
  minmax_or_histogram: minMaxOrHistogram,
} as const satisfies Readonly<Record<string, ObserverFactory>>;

export type ObserverName = keyof typeof OBSERVERS;
export const OBSERVER_NAMES = Object.keys(OBSERVERS) as ReadonlyArray<ObserverName>;

/** LC's registry aliases ("fouroversix" is registered as a loader of nvfp4_expanded_mse). */
const ALIASES: Readonly<Record<string, ObserverName>> = { fouroversix: "nvfp4_expanded_mse" };

/**
 * Resolves a name like LC's registry does (case-insensitive, "-" ≡ "_", so "MSE" and "memoryless-minmax" work).
 */
export const resolveObserverName = (name: string): E.Either<ObserverError, ObserverName> => {
  const key = name.trim().toLowerCase().replaceAll("-", "_");
  if (Object.hasOwn(OBSERVERS, key)) return E.right(key as ObserverName);
  const alias = ALIASES[key];
  return alias !== undefined ? E.right(alias) : E.left(unknownObserver(name, [...OBSERVER_NAMES, ...Object.keys(ALIASES)]));
};

/**
 * The observer named `name` (or `args.observer`, or "memoryless_minmax" when neither is set, LC's default for
 * weights) for these args.
 */
export const createObserver = (args: QuantizationArgs, options: ObserverOptions, name?: string): E.Either<ObserverError, Observer> =>
  E.flatMap(resolveObserverName(name ?? args.observer ?? "memoryless_minmax"), (n) => OBSERVERS[n](args, options) as E.Either<ObserverError, Observer>);
