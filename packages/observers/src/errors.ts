import { type SchemeError, formatSchemeError } from "@llmq/schemes";

// ----- model -----

/** Everything an observer can reject, as values. Messages name the observed tensor and the allowed values. */
export type ObserverError =
  | { readonly _tag: "UnknownObserver"; readonly name: string; readonly valid: ReadonlyArray<string> }
  /** A NaN or ±Inf reached the statistics; never folded silently into scales. */
  | { readonly _tag: "NonFiniteTensor"; readonly tensor: string; readonly index: number; readonly value: number }
  | { readonly _tag: "UnsupportedStrategy"; readonly observer: string; readonly tensor: string; readonly strategy: string; readonly detail: string }
  | { readonly _tag: "ObservedShape"; readonly tensor: string; readonly shape: ReadonlyArray<number>; readonly detail: string }
  | { readonly _tag: "InvalidObserverKwarg"; readonly observer: string; readonly key: string; readonly expected: string; readonly got: string }
  | { readonly _tag: "NoObservations"; readonly observer: string; readonly tensor: string }
  | { readonly _tag: "QParams"; readonly tensor: string; readonly cause: SchemeError };

// ----- constructors -----

export const unknownObserver = (name: string, valid: ReadonlyArray<string>): ObserverError => ({ _tag: "UnknownObserver", name, valid });
export const nonFiniteTensor = (tensor: string, index: number, value: number): ObserverError => ({
  _tag: "NonFiniteTensor",
  tensor,
  index,
  value,
});
export const unsupportedStrategy = (observer: string, tensor: string, strategy: string, detail: string): ObserverError => ({
  _tag: "UnsupportedStrategy",
  observer,
  tensor,
  strategy,
  detail,
});
export const observedShape = (tensor: string, shape: ReadonlyArray<number>, detail: string): ObserverError => ({
  _tag: "ObservedShape",
  tensor,
  shape,
  detail,
});
export const invalidObserverKwarg = (observer: string, key: string, expected: string, got: unknown): ObserverError => ({
  _tag: "InvalidObserverKwarg",
  observer,
  key,
  expected,
  got: JSON.stringify(got) ?? String(got),
});
export const noObservations = (observer: string, tensor: string): ObserverError => ({ _tag: "NoObservations", observer, tensor });
export const qparamsError = (tensor: string, cause: SchemeError): ObserverError => ({ _tag: "QParams", tensor, cause });

// ----- destructors -----

/** One readable sentence for an observer error. */
export const formatObserverError = (e: ObserverError): string => {
  switch (e._tag) {
    case "UnknownObserver":
      return `unknown observer ${JSON.stringify(e.name)}; valid observers: ${e.valid.join(", ")}`;
    case "NonFiniteTensor":
      return `${e.tensor}: observed value ${e.value} at flat index ${e.index} is not finite; NaN/Inf would corrupt the quantization scales`;
    case "UnsupportedStrategy":
      return `${e.tensor}: observer ${e.observer} cannot calibrate strategy ${JSON.stringify(e.strategy)}: ${e.detail}`;
    case "ObservedShape":
      return `${e.tensor}: observed shape [${e.shape.join(", ")}]: ${e.detail}`;
    case "InvalidObserverKwarg":
      return `observer ${e.observer}: observer_kwargs.${e.key}: expected ${e.expected}, got ${e.got}`;
    case "NoObservations":
      return `${e.tensor}: observer ${e.observer} has no statistics (no non-empty tensor was observed)`;
    case "QParams":
      return `${e.tensor}: computing qparams failed: ${formatSchemeError(e.cause)}`;
  }
};
