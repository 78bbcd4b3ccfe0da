// ----- model -----

/**
 * Everything GPTQ rejects, as values. Each carries the module name (e.g. "model.layers.3.self_attn.q_proj") so a
 * pipeline can report which layer failed without wrapping.
 */
export type GptqError =
  | { readonly _tag: "EmptyCalibration"; readonly module: string }
  | { readonly _tag: "NonFiniteHessian"; readonly module: string; readonly row: number; readonly col: number; readonly value: number }
  | { readonly _tag: "NonFiniteWeight"; readonly module: string; readonly row: number; readonly col: number; readonly value: number }
  | { readonly _tag: "GroupSizeMismatch"; readonly module: string; readonly field: string; readonly columns: number; readonly groupSize: number }
  | { readonly _tag: "ShapeMismatch"; readonly module: string; readonly field: string; readonly expected: ReadonlyArray<number>; readonly got: ReadonlyArray<number> }
  | { readonly _tag: "UnsupportedArgs"; readonly module: string; readonly field: string; readonly value: string; readonly allowed: ReadonlyArray<string> }
  | { readonly _tag: "InvalidOption"; readonly module: string; readonly field: string; readonly detail: string }
  | { readonly _tag: "QParamsFailed"; readonly module: string; readonly detail: string };

// ----- constructors -----

export const emptyCalibration = (module: string): GptqError => ({ _tag: "EmptyCalibration", module });
export const nonFiniteHessian = (module: string, row: number, col: number, value: number): GptqError => ({
  _tag: "NonFiniteHessian",
  module,
  row,
  col,
  value,
});
export const nonFiniteWeight = (module: string, row: number, col: number, value: number): GptqError => ({
  _tag: "NonFiniteWeight",
  module,
  row,
  col,
  value,
});
export const groupSizeMismatch = (module: string, field: string, columns: number, groupSize: number): GptqError => ({
  _tag: "GroupSizeMismatch",
  module,
  field,
  columns,
  groupSize,
});
export const shapeMismatch = (module: string, field: string, expected: ReadonlyArray<number>, got: ReadonlyArray<number>): GptqError => ({
  _tag: "ShapeMismatch",
  module,
  field,
  expected,
  got,
});
export const unsupportedArgs = (module: string, field: string, value: string, allowed: ReadonlyArray<string>): GptqError => ({
  _tag: "UnsupportedArgs",
  module,
  field,
  value,
  allowed,
});
export const invalidOption = (module: string, field: string, detail: string): GptqError => ({ _tag: "InvalidOption", module, field, detail });
export const qparamsFailed = (module: string, detail: string): GptqError => ({ _tag: "QParamsFailed", module, detail });

// ----- destructors -----

const shape = (s: ReadonlyArray<number>): string => `[${s.join(", ")}]`;

/** One readable sentence naming the module, the field and what is allowed. */
export const formatGptqError = (e: GptqError): string => {
  switch (e._tag) {
    case "EmptyCalibration":
      return `gptq ${e.module}: no calibration samples reached this module (nSamples = 0); GPTQ needs at least one batch`;
    case "NonFiniteHessian":
      return `gptq ${e.module}: Hessian entry [${e.row}, ${e.col}] is ${e.value}; calibration activations contain NaN/Inf`;
    case "NonFiniteWeight":
      return `gptq ${e.module}: weight entry [${e.row}, ${e.col}] is ${e.value}; weights must be finite`;
    case "GroupSizeMismatch":
      return `gptq ${e.module}: ${e.field} = ${e.groupSize} does not divide the ${e.columns} input columns`;
    case "ShapeMismatch":
      return `gptq ${e.module}: ${e.field} must have shape ${shape(e.expected)}, got ${shape(e.got)}`;
    case "UnsupportedArgs":
      return `gptq ${e.module}: ${e.field} = ${e.value} is not supported (allowed: ${e.allowed.join(", ")})`;
    case "InvalidOption":
      return `gptq ${e.module}: invalid ${e.field}: ${e.detail}`;
    case "QParamsFailed":
      return `gptq ${e.module}: computing the weight qparams failed: ${e.detail}`;
  }
};
