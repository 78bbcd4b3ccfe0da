import type { ModifierError } from "@llmq/observers";

// ----- model -----

/** Failures of the umbrella package, as values. The CLI turns each into one message and exit code 1 (input) or 2. */
export type LlmqError =
  | { readonly _tag: "DatasetError"; readonly path: string; readonly detail: string }
  | { readonly _tag: "RecipeError"; readonly detail: string }
  | { readonly _tag: "ModelError"; readonly detail: string }
  | { readonly _tag: "SchemeError"; readonly detail: string }
  /** A modifier failed; `cause` is the typed error of the package that owns the math (GptqError, ObserverError…). */
  | { readonly _tag: "QuantizationError"; readonly module: string; readonly detail: string; readonly cause?: ModifierError }
  | { readonly _tag: "OutputExists"; readonly path: string }
  | { readonly _tag: "IoError"; readonly path: string; readonly detail: string }
  | { readonly _tag: "Aborted"; readonly detail: string }
  | { readonly _tag: "Internal"; readonly detail: string };

// ----- constructors -----

export const datasetError = (path: string, detail: string): LlmqError => ({ _tag: "DatasetError", path, detail });
export const recipeError = (detail: string): LlmqError => ({ _tag: "RecipeError", detail });
export const modelError = (detail: string): LlmqError => ({ _tag: "ModelError", detail });
export const schemeError = (detail: string): LlmqError => ({ _tag: "SchemeError", detail });
export const quantizationError = (module: string, detail: string): LlmqError => ({ _tag: "QuantizationError", module, detail });
/** A modifier's error as the umbrella's: the module (or the modifier) named, the typed cause kept. */
export const modifierFailure = (e: ModifierError): LlmqError => ({ _tag: "QuantizationError", module: e.module ?? e.modifier, detail: `${e.modifier}: ${e.detail}`, cause: e });
export const outputExists = (path: string): LlmqError => ({ _tag: "OutputExists", path });
export const ioError = (path: string, detail: string): LlmqError => ({ _tag: "IoError", path, detail });
export const aborted = (detail: string): LlmqError => ({ _tag: "Aborted", detail });
/** The Aborted error of a signal, with the reason it was aborted for. */
export const abortedBy = (signal: AbortSignal): LlmqError => aborted(String((signal.reason as Error)?.message ?? "interrupted"));
export const internal = (detail: string): LlmqError => ({ _tag: "Internal", detail });

// ----- destructors -----

export const formatLlmqError = (e: LlmqError): string => {
  switch (e._tag) {
    case "DatasetError":
      return `dataset ${e.path}: ${e.detail}`;
    case "RecipeError":
      return `recipe: ${e.detail}`;
    case "ModelError":
      return `model: ${e.detail}`;
    case "SchemeError":
      return `scheme: ${e.detail}`;
    case "QuantizationError":
      return `quantizing ${e.module}: ${e.detail}`;
    case "OutputExists":
      return `output directory ${e.path} exists and is not empty (pass --overwrite to replace it)`;
    case "IoError":
      return `${e.path}: ${e.detail}`;
    case "Aborted":
      return `aborted: ${e.detail}`;
    case "Internal":
      return `internal error: ${e.detail}`;
  }
};

/** Exit code for an error: 2 for bugs, 1 for everything the user can fix. */
export const exitCodeOf = (e: LlmqError): 1 | 2 => (e._tag === "Internal" ? 2 : 1);
