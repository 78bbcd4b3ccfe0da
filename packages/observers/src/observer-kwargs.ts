import * as E from "fp-ts/lib/Either.js";
import { type ObserverError, invalidObserverKwarg } from "./errors.js";

/**
 * Reads a numeric observer kwarg with LC's default. LC reads kwargs with `dict.get(key, default)`, so unknown keys
 * are ignored; a present key of the wrong type is an error here (LC would fail later inside torch).
 */
export const numberKwarg = (
  observer: string,
  kwargs: Readonly<Record<string, unknown>>,
  key: string,
  fallback: number,
  check: (v: number) => boolean = Number.isFinite,
  expected = "a finite number",
): E.Either<ObserverError, number> => {
  const v = kwargs[key];
  if (v === undefined || v === null) return E.right(fallback);
  return typeof v === "number" && check(v) ? E.right(v) : E.left(invalidObserverKwarg(observer, key, expected, v));
};

/** LC merges constructor kwargs over `args.observer_kwargs`. */
export const mergedKwargs = (
  fromArgs: Readonly<Record<string, unknown>>,
  extra: Readonly<Record<string, unknown>> | undefined,
): Readonly<Record<string, unknown>> => ({ ...fromArgs, ...(extra ?? {}) });
