// ----- model -----

/** Everything a tensor op can reject, as values. Messages name the op, the shapes and the offending argument. */
export type TensorError =
  | { readonly _tag: "ShapeMismatch"; readonly op: string; readonly shapes: ReadonlyArray<ReadonlyArray<number>>; readonly detail: string }
  | { readonly _tag: "DTypeMismatch"; readonly op: string; readonly expected: string; readonly got: string; readonly arg: string }
  | { readonly _tag: "AxisOutOfRange"; readonly op: string; readonly axis: number; readonly rank: number }
  | { readonly _tag: "InvalidArgument"; readonly op: string; readonly arg: string; readonly detail: string }
  | { readonly _tag: "NotPositiveDefinite"; readonly op: string; readonly pivot: number; readonly n: number }
  | { readonly _tag: "UnsupportedDType"; readonly op: string; readonly dtype: string; readonly supported: ReadonlyArray<string> };

// ----- constructors -----

export const shapeMismatch = (op: string, shapes: ReadonlyArray<ReadonlyArray<number>>, detail: string): TensorError => ({
  _tag: "ShapeMismatch",
  op,
  shapes,
  detail,
});
export const dtypeMismatch = (op: string, arg: string, expected: string, got: string): TensorError => ({
  _tag: "DTypeMismatch",
  op,
  arg,
  expected,
  got,
});
export const axisOutOfRange = (op: string, axis: number, rank: number): TensorError => ({ _tag: "AxisOutOfRange", op, axis, rank });
export const invalidArgument = (op: string, arg: string, detail: string): TensorError => ({ _tag: "InvalidArgument", op, arg, detail });
export const notPositiveDefinite = (op: string, pivot: number, n: number): TensorError => ({ _tag: "NotPositiveDefinite", op, pivot, n });
export const unsupportedDType = (op: string, dtype: string, supported: ReadonlyArray<string>): TensorError => ({
  _tag: "UnsupportedDType",
  op,
  dtype,
  supported,
});

// ----- destructors -----

const fmt = (s: ReadonlyArray<number>): string => `[${s.join(", ")}]`;

/** One readable sentence for a tensor error. */
export const formatTensorError = (e: TensorError): string => {
  switch (e._tag) {
    case "ShapeMismatch":
      return `${e.op}: shape mismatch ${e.shapes.map(fmt).join(" vs ")}: ${e.detail}`;
    case "DTypeMismatch":
      return `${e.op}: argument ${e.arg} must be ${e.expected}, got ${e.got}`;
    case "AxisOutOfRange":
      return `${e.op}: axis ${e.axis} is out of range for a tensor of rank ${e.rank}`;
    case "InvalidArgument":
      return `${e.op}: invalid ${e.arg}: ${e.detail}`;
    case "NotPositiveDefinite":
      return `${e.op}: matrix of size ${e.n} is not positive definite (pivot ${e.pivot} is not > 0)`;
    case "UnsupportedDType":
      return `${e.op}: dtype ${e.dtype} is not supported (supported: ${e.supported.join(", ")})`;
  }
};

/** Thrown only for programmer errors (violated preconditions of unchecked kernels), never for user input. */
export const assert: (cond: boolean, msg: () => string) => asserts cond = (cond, msg) => {
  if (!cond) throw new Error(`llmq internal: ${msg()}`);
};
