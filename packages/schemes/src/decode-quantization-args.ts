import * as E from "fp-ts/lib/Either.js";
import { type SchemeError, invalidArgs, invalidField } from "./errors.js";
import {
  type ActivationOrdering,
  type DynamicType,
  QUANTIZATION_ARGS_FIELDS,
  QUANTIZATION_STRATEGIES,
  type QuantizationArgs,
  type QuantizationArgsField,
  type QuantizationStrategy,
  type QuantizationType,
} from "./quantization-args.js";
import { canonicalTorchDType } from "./torch-dtype.js";
import { checkNoExtra, has, isPlainObject, join, readBool, readEnumLower, readInt, readString } from "./wire.js";

// ----- decoding -----

const INT_PART = /^\s*[+-]?\d+\s*$/;

const readBlockStructure = (u: unknown, path: string): E.Either<SchemeError, readonly [number, number]> => {
  const bad = () => invalidField(path, 'a list of two positive ints [rows, cols] (or a legacy "RxC" string)', u);
  let v: unknown = u;
  // compressed-tensors keeps the pre-0.10 "RxC" string form for backward compatibility.
  if (typeof v === "string") {
    const parts = v.split("x");
    if (!parts.every((p) => INT_PART.test(p))) return E.left(bad());
    v = parts.map((p) => Number.parseInt(p, 10));
  }
  // Python's isinstance(True, int) holds, so booleans pass as 1 (and False fails the > 0 check)
  const ints = Array.isArray(v) ? v.map((x) => (typeof x === "boolean" ? Number(x) : x)) : null;
  if (ints === null || ints.length !== 2 || !ints.every((x) => typeof x === "number" && Number.isSafeInteger(x) && x > 0)) return E.left(bad());
  return E.right([ints[0] as number, ints[1] as number] as const);
};

const readDynamic = (u: unknown, path: string): E.Either<SchemeError, DynamicType> => {
  if (typeof u === "boolean") return E.right(u);
  if (u === 0 || u === 1) return E.right(u === 1); // pydantic's lax bool branch of `DynamicType | bool`
  if (typeof u === "string" && u.toLowerCase() === "local") return E.right("local");
  return E.left(invalidField(path, 'true, false or "local"', u));
};

const readActorder = (u: unknown, path: string): E.Either<SchemeError, ActivationOrdering | null> => {
  if (u === null || u === false) return E.right(null);
  if (u === true)
    return E.left(
      invalidArgs(
        path,
        "actorder_removed",
        'actorder=true previously meant "group" activation ordering, which compressed-tensors 0.20 removed; allowed: "weight", "static" or null',
      ),
    );
  if (typeof u === "string") {
    if (u.toLowerCase() === "group" || u.toLowerCase() === "dynamic")
      return E.left(invalidArgs(path, "actorder_removed", `actorder=${JSON.stringify(u)} was removed in compressed-tensors 0.20; allowed: "weight", "static" or null`));
    // The enum itself is matched by value (case-sensitive), unlike type/strategy.
    if (u === "weight" || u === "static") return E.right(u);
  }
  return E.left(invalidField(path, '"weight", "static", false or null', u));
};

const readTorchDType = (u: unknown, path: string): E.Either<SchemeError, string> => {
  if (typeof u === "string") {
    const c = canonicalTorchDType(u);
    if (c !== undefined) return E.right(c);
  }
  return E.left(invalidField(path, 'a torch dtype name such as "torch.float8_e4m3fn", "torch.uint8", "torch.int8"', u));
};

const optional = <T>(o: Record<string, unknown>, k: string, path: string, read: (u: unknown, p: string) => E.Either<SchemeError, T>, dflt: T) =>
  has(o, k) && o[k] !== undefined ? read(o[k], join(path, k)) : E.right(dflt);

const nullable =
  <T>(read: (u: unknown, p: string) => E.Either<SchemeError, T>) =>
  (u: unknown, p: string): E.Either<SchemeError, T | null> =>
    u === null ? E.right(null) : read(u, p);

/** zp dtype compressed-tensors fills in when none is given (`QuantizationArgs.pytorch_dtype()` and the fp4/fp6 rule). */
export const defaultZpDType = (type: QuantizationType, numBits: number): string | undefined => {
  if (type === "float") return numBits === 4 || numBits === 6 || numBits === 8 ? "torch.float8_e4m3fn" : undefined;
  return numBits <= 8 ? "torch.int8" : numBits <= 16 ? "torch.int16" : "torch.int32";
};

/**
 * Validates an unknown JSON value as compressed-tensors 0.20.0 `QuantizationArgs` (pydantic `extra="forbid"`):
 * defaults, case-insensitive `type`/`strategy`/`dynamic`, the legacy "RxC" block structure, strategy inference and
 * every `validate_model_after` rule in CT's order. `path` prefixes the field paths in errors.
 */
export const decodeQuantizationArgs = (u: unknown, path = ""): E.Either<SchemeError, QuantizationArgs> => {
  if (!isPlainObject(u)) return E.left(invalidField(path, "an object of QuantizationArgs fields", u));
  const fieldsSet = QUANTIZATION_ARGS_FIELDS.filter((k) => has(u, k) && u[k] !== undefined) as QuantizationArgsField[];
  const p = (k: string) => join(path, k);

  const numBits = optional(u, "num_bits", path, readInt, 8);
  if (E.isLeft(numBits)) return numBits;
  const type = optional<QuantizationType>(u, "type", path, (v, q) => readEnumLower(v, ["int", "float"] as const, q), "int");
  if (E.isLeft(type)) return type;
  const symmetric = optional(u, "symmetric", path, readBool, true);
  if (E.isLeft(symmetric)) return symmetric;
  // CT's before-validator compares `value < -1` first, so a string group size is a TypeError there: ints only.
  const groupSize = optional(
    u,
    "group_size",
    path,
    nullable((v, q) =>
      typeof v === "number" && Number.isSafeInteger(v)
        ? E.right(v)
        : typeof v === "boolean"
          ? E.right(v ? 1 : 0)
          : E.left(invalidField(q, "an integer (> 0 for group, -1 for channel)", v)),
    ),
    null,
  );
  if (E.isLeft(groupSize)) return groupSize;
  if (groupSize.right !== null && groupSize.right < -1)
    return E.left(
      invalidArgs(p("group_size"), "group_size_invalid", `invalid group size ${groupSize.right}; use group_size > 0 for strategy "group" and -1 for "channel"`),
    );
  const strategy0 = optional(u, "strategy", path, nullable((v, q) => readEnumLower(v, QUANTIZATION_STRATEGIES, q)), null);
  if (E.isLeft(strategy0)) return strategy0;
  const block = optional(u, "block_structure", path, nullable(readBlockStructure), null);
  if (E.isLeft(block)) return block;
  const dynamic = optional(u, "dynamic", path, readDynamic, false);
  if (E.isLeft(dynamic)) return dynamic;
  const actorder = optional(u, "actorder", path, readActorder, null);
  if (E.isLeft(actorder)) return actorder;
  const scaleDType = optional(u, "scale_dtype", path, nullable(readTorchDType), null);
  if (E.isLeft(scaleDType)) return scaleDType;
  const zpDType0 = optional(u, "zp_dtype", path, nullable(readTorchDType), null);
  if (E.isLeft(zpDType0)) return zpDType0;
  const observer = optional(u, "observer", path, nullable(readString), null);
  if (E.isLeft(observer)) return observer;
  const kw = optional<Record<string, unknown>>(
    u,
    "observer_kwargs",
    path,
    (v, q) => (isPlainObject(v) ? E.right({ ...v }) : E.left(invalidField(q, "an object (dict)", v))),
    {},
  );
  if (E.isLeft(kw)) return kw;
  // pydantic reports extra keys after the field errors, and runs the model rules only when both are clean
  const ex = checkNoExtra(u, QUANTIZATION_ARGS_FIELDS, path);
  if (E.isLeft(ex)) return ex;

  const gs = groupSize.right;
  const dyn = dynamic.right;
  // 1. strategy inference
  let strategy: QuantizationStrategy;
  if (strategy0.right !== null) strategy = strategy0.right;
  else if (gs === null) strategy = "tensor";
  else if (gs > 0) strategy = "group";
  else if (gs === -1) strategy = "channel";
  else
    return E.left(invalidArgs(p("group_size"), "group_size_invalid", `invalid group size ${gs}; use group_size > 0 for strategy "group" and -1 for "channel"`));
  // 2. token
  if (strategy === "token" && !dyn)
    return E.left(invalidArgs(p("dynamic"), "token_requires_dynamic", 'cannot perform static token quantization: strategy "token" requires dynamic=true'));
  // 3. group sizes
  if ((strategy === "group" || strategy === "tensor_group") && (gs === null || gs <= 0))
    return E.left(
      invalidArgs(p("group_size"), "group_requires_group_size", `strategy "${strategy}" requires group_size to be a positive integer, got ${gs === null ? "null" : gs}`),
    );
  if (gs !== null && gs > 0 && strategy !== "group" && strategy !== "tensor_group")
    return E.left(
      invalidArgs(p("group_size"), "group_size_requires_group", `group_size ${gs} requires strategy "group" or "tensor_group", got strategy "${strategy}"`),
    );
  // 4. block
  if (strategy === "block" && block.right === null)
    return E.left(invalidArgs(p("block_structure"), "block_requires_structure", 'strategy "block" requires block_structure [rows, cols]'));
  if (block.right !== null && strategy !== "block")
    return E.left(invalidArgs(p("strategy"), "structure_requires_block", `block_structure requires strategy "block", got strategy "${strategy}"`));
  // 5. dynamic
  if (dyn !== false) {
    const ok: ReadonlyArray<QuantizationStrategy> = ["token", "tensor", "tensor_group", "group"];
    if (!ok.includes(strategy))
      return E.left(
        invalidArgs(p("strategy"), "dynamic_strategy", `dynamic quantization requires strategy "token", "tensor", "tensor_group" or "group", got "${strategy}"`),
      );
    if (dyn === "local" && strategy !== "tensor_group")
      return E.left(invalidArgs(p("dynamic"), "local_requires_tensor_group", `dynamic "local" is only supported for strategy "tensor_group", got "${strategy}"`));
  }
  // 6. zp dtype default (pytorch_dtype() raises for float widths other than 8, 4 and 6)
  let zpDType = zpDType0.right;
  if (zpDType === null) {
    const d = defaultZpDType(type.right, numBits.right);
    if (d === undefined)
      return E.left(invalidArgs(p("num_bits"), "float_num_bits", `expected 4, 6 or 8 for float, got ${numBits.right}`));
    zpDType = d;
  }
  return E.right({
    num_bits: numBits.right,
    type: type.right,
    symmetric: symmetric.right,
    group_size: gs,
    strategy,
    block_structure: block.right,
    dynamic: dyn,
    actorder: actorder.right,
    scale_dtype: scaleDType.right,
    zp_dtype: zpDType,
    observer: observer.right,
    observer_kwargs: kw.right,
    fields_set: fieldsSet,
  });
};
