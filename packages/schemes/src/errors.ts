// ----- model -----

/**
 * Everything that can go wrong in @llmq/schemes. Field paths are dotted (`config_groups.group_0.weights.num_bits`);
 * messages adapt compressed-tensors 0.20.0's wording and always name the allowed values.
 */
export type SchemeError =
  | { readonly _tag: "InvalidField"; readonly path: string; readonly expected: string; readonly got: string }
  | { readonly _tag: "MissingField"; readonly path: string }
  | { readonly _tag: "UnknownField"; readonly path: string; readonly allowed: ReadonlyArray<string> }
  /** A post-validation rule of QuantizationArgs/QuantizationScheme failed (pydantic model_validator). */
  | { readonly _tag: "InvalidArgs"; readonly path: string; readonly rule: SchemeRule; readonly message: string }
  | { readonly _tag: "UnknownPreset"; readonly path: string; readonly name: string; readonly available: ReadonlyArray<string> }
  | { readonly _tag: "InvalidTarget"; readonly target: string; readonly detail: string }
  /** The args cannot be applied to this tensor (shape, dtype, unsupported combination). */
  | { readonly _tag: "Unsupported"; readonly op: string; readonly detail: string }
  | { readonly _tag: "NonFinite"; readonly tensor: string; readonly index: number; readonly value: number };

/** Which compressed-tensors rule rejected the value (stable ids for tests and tooling). */
export type SchemeRule =
  | "group_size_invalid"
  | "token_requires_dynamic"
  | "group_requires_group_size"
  | "group_size_requires_group"
  | "block_requires_structure"
  | "structure_requires_block"
  | "dynamic_strategy"
  | "local_requires_tensor_group"
  | "float_num_bits"
  | "actorder_removed"
  | "activation_strategy"
  | "activation_actorder"
  | "mixed_precision_format"
  | "preset_conflict";

// ----- constructors -----

export const invalidField = (path: string, expected: string, got: unknown): SchemeError => ({
  _tag: "InvalidField",
  path,
  expected,
  got: describe(got),
});
export const missingField = (path: string): SchemeError => ({ _tag: "MissingField", path });
export const unknownField = (path: string, allowed: ReadonlyArray<string>): SchemeError => ({ _tag: "UnknownField", path, allowed });
export const invalidArgs = (path: string, rule: SchemeRule, message: string): SchemeError => ({ _tag: "InvalidArgs", path, rule, message });
export const unknownPreset = (path: string, name: string, available: ReadonlyArray<string>): SchemeError => ({
  _tag: "UnknownPreset",
  path,
  name,
  available,
});
export const invalidTarget = (target: string, detail: string): SchemeError => ({ _tag: "InvalidTarget", target, detail });
export const unsupported = (op: string, detail: string): SchemeError => ({ _tag: "Unsupported", op, detail });
export const nonFinite = (tensor: string, index: number, value: number): SchemeError => ({ _tag: "NonFinite", tensor, index, value });

/** Python-ish rendering of a JSON value for messages. */
export const describe = (v: unknown): string => {
  if (v === undefined) return "nothing";
  if (typeof v === "string") return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
};

const at = (path: string): string => (path === "" ? "(root)" : path);

export const formatSchemeError = (e: SchemeError): string => {
  switch (e._tag) {
    case "InvalidField":
      return `${at(e.path)}: expected ${e.expected}, got ${e.got}`;
    case "MissingField":
      return `${at(e.path)}: field required`;
    case "UnknownField":
      return `${at(e.path)}: unknown field (extra fields are not permitted); allowed: ${e.allowed.join(", ")}`;
    case "InvalidArgs":
      return `${at(e.path)}: ${e.message}`;
    case "UnknownPreset":
      return `${at(e.path)}: unknown preset scheme name ${JSON.stringify(e.name)}; available: ${e.available.join(", ")}`;
    case "InvalidTarget":
      return `target ${JSON.stringify(e.target)}: ${e.detail}`;
    case "Unsupported":
      return `${e.op}: ${e.detail}`;
    case "NonFinite":
      return `${e.tensor}: non-finite value ${e.value} at flat index ${e.index}; refusing to derive quantization parameters from it`;
  }
};
