// ----- model -----

/**
 * What building a transformers quantization config, dispatching it or running its quantizer can reject, as values.
 * `field` names the config key (or "quant_method") and `pythonType` the exception transformers raises for the same
 * input (TypeError, ValueError, AssertionError, KeyError), so a message can say which rule was broken.
 */
export type HfQuantizerError =
  | { readonly _tag: "InvalidHfConfig"; readonly className: string; readonly field: string; readonly pythonType: string; readonly message: string }
  | { readonly _tag: "UnknownQuantMethod"; readonly method: string | null; readonly known: ReadonlyArray<string>; readonly message: string }
  | { readonly _tag: "DuplicateRegistration"; readonly kind: "config" | "quantizer"; readonly name: string; readonly message: string }
  /** The quantizer cannot run this config in llmq (validate_environment's typed answer). */
  | { readonly _tag: "UnsupportedHfQuantization"; readonly method: string; readonly message: string }
  /** Writing or reading tensors failed (the serialization layer's message). */
  | { readonly _tag: "HfQuantizeFailed"; readonly method: string; readonly message: string };

export type HfQuantizerErrorTag = HfQuantizerError["_tag"];

// ----- constructors -----

export const invalidHfConfig = (className: string, field: string, pythonType: string, message: string): HfQuantizerError => ({
  _tag: "InvalidHfConfig",
  className,
  field,
  pythonType,
  message,
});

export const unknownQuantMethod = (method: string | null, known: ReadonlyArray<string>, message: string): HfQuantizerError => ({
  _tag: "UnknownQuantMethod",
  method,
  known,
  message,
});

export const duplicateRegistration = (kind: "config" | "quantizer", name: string): HfQuantizerError => ({
  _tag: "DuplicateRegistration",
  kind,
  name,
  message: kind === "config" ? `Config '${name}' already registered` : `Quantizer '${name}' already registered`,
});

export const unsupportedHfQuantization = (method: string, message: string): HfQuantizerError => ({ _tag: "UnsupportedHfQuantization", method, message });

export const hfQuantizeFailed = (method: string, message: string): HfQuantizerError => ({ _tag: "HfQuantizeFailed", method, message });

/** One line for the CLI: the config class and field first where there is one. */
export const formatHfQuantizerError = (e: HfQuantizerError): string =>
  e._tag === "InvalidHfConfig" ? `${e.className}.${e.field}: ${e.message}` : e.message;
