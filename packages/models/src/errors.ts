// ----- model -----

/** Everything loading, converting or running a model can reject, as values. Messages name the file or tensor. */
export type ModelError =
  | { readonly _tag: "FileNotFound"; readonly path: string; readonly what: string }
  | { readonly _tag: "InvalidJson"; readonly path: string; readonly detail: string }
  | { readonly _tag: "InvalidConfig"; readonly path: string; readonly field: string; readonly detail: string }
  | { readonly _tag: "UnsupportedArchitecture"; readonly path: string; readonly found: string; readonly supported: ReadonlyArray<string> }
  | { readonly _tag: "MissingTensor"; readonly name: string; readonly where: string }
  | { readonly _tag: "TensorShapeMismatch"; readonly name: string; readonly expected: ReadonlyArray<number>; readonly got: ReadonlyArray<number> }
  | { readonly _tag: "UnsupportedDType"; readonly name: string; readonly dtype: string; readonly supported: ReadonlyArray<string> }
  | { readonly _tag: "InvalidCheckpoint"; readonly path: string; readonly detail: string }
  | { readonly _tag: "InvalidInput"; readonly arg: string; readonly detail: string }
  | { readonly _tag: "IoError"; readonly path: string; readonly detail: string }
  | { readonly _tag: "TokenizerError"; readonly path: string; readonly detail: string }
  | { readonly _tag: "OutputExists"; readonly path: string }
  | { readonly _tag: "CheckpointError"; readonly path: string; readonly tensor: string | null; readonly detail: string }
  /** Tensors the config implies that are missing or have another shape or dtype; `problems` names each one. */
  | { readonly _tag: "ModelMismatch"; readonly path: string; readonly problems: ReadonlyArray<string> }
  /** A hook of the layer forward refused its input (e.g. a NaN activation that cannot be quantized). */
  | { readonly _tag: "ForwardFailed"; readonly module: string; readonly detail: string };

// ----- constructors -----

export const fileNotFound = (path: string, what: string): ModelError => ({ _tag: "FileNotFound", path, what });
export const invalidJson = (path: string, detail: string): ModelError => ({ _tag: "InvalidJson", path, detail });
export const invalidConfig = (path: string, field: string, detail: string): ModelError => ({ _tag: "InvalidConfig", path, field, detail });
export const unsupportedArchitecture = (path: string, found: string, supported: ReadonlyArray<string>): ModelError => ({
  _tag: "UnsupportedArchitecture",
  path,
  found,
  supported,
});
export const missingTensor = (name: string, where: string): ModelError => ({ _tag: "MissingTensor", name, where });
export const tensorShapeMismatch = (name: string, expected: ReadonlyArray<number>, got: ReadonlyArray<number>): ModelError => ({
  _tag: "TensorShapeMismatch",
  name,
  expected,
  got,
});
export const unsupportedDType = (name: string, dtype: string, supported: ReadonlyArray<string>): ModelError => ({
  _tag: "UnsupportedDType",
  name,
  dtype,
  supported,
});
export const invalidCheckpoint = (path: string, detail: string): ModelError => ({ _tag: "InvalidCheckpoint", path, detail });
export const invalidInput = (arg: string, detail: string): ModelError => ({ _tag: "InvalidInput", arg, detail });
export const ioError = (path: string, detail: string): ModelError => ({ _tag: "IoError", path, detail });
export const tokenizerError = (path: string, detail: string): ModelError => ({ _tag: "TokenizerError", path, detail });
export const outputExists = (path: string): ModelError => ({ _tag: "OutputExists", path });
/** A safetensors read/write failure from @llmq/serialization, with its message. */
export const forwardFailed = (module: string, detail: string): ModelError => ({ _tag: "ForwardFailed", module, detail });
export const modelMismatch = (path: string, problems: ReadonlyArray<string>): ModelError => ({ _tag: "ModelMismatch", path, problems });
export const checkpointError = (path: string, tensor: string | null, detail: string): ModelError => ({ _tag: "CheckpointError", path, tensor, detail });

// ----- destructors -----

const fmt = (s: ReadonlyArray<number>): string => `[${s.join(", ")}]`;

/** One readable sentence for a model error. */
export const formatModelError = (e: ModelError): string => {
  switch (e._tag) {
    case "FileNotFound":
      return `${e.path}: ${e.what} not found`;
    case "InvalidJson":
      return `${e.path}: not valid JSON: ${e.detail}`;
    case "InvalidConfig":
      return `${e.path}: field ${e.field}: ${e.detail}`;
    case "UnsupportedArchitecture":
      return `${e.path}: unsupported architecture ${e.found} (supported: ${e.supported.join(", ")})`;
    case "MissingTensor":
      return `tensor ${e.name} is missing from ${e.where}`;
    case "TensorShapeMismatch":
      return `tensor ${e.name} has shape ${fmt(e.got)}, expected ${fmt(e.expected)}`;
    case "UnsupportedDType":
      return `tensor ${e.name} has dtype ${e.dtype} (supported: ${e.supported.join(", ")})`;
    case "InvalidCheckpoint":
      return `${e.path}: invalid checkpoint: ${e.detail}`;
    case "InvalidInput":
      return `invalid ${e.arg}: ${e.detail}`;
    case "IoError":
      return `${e.path}: ${e.detail}`;
    case "TokenizerError":
      return `${e.path}: tokenizer: ${e.detail}`;
    case "OutputExists":
      return `${e.path}: output directory exists and is not empty (pass overwrite to replace it)`;
    case "CheckpointError":
      return e.detail;
    case "ModelMismatch":
      return `${e.path}: the weights do not match config.json: ${e.problems.slice(0, 3).join("; ")}${e.problems.length > 3 ? `; and ${e.problems.length - 3} more` : ""}`;
    case "ForwardFailed":
      return `${e.module}: ${e.detail}`;
  }
};
