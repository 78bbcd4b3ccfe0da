import * as E from "fp-ts/lib/Either.js";
import { type SchemeError, invalidField, missingField } from "./errors.js";
import { canonicalTorchDType } from "./torch-dtype.js";
import { checkNoExtra, has, isPlainObject, join, readBool, readEnum, readInt, readString, readStringList } from "./wire.js";

// compressed-tensors 0.20.0's transform data model (transform/transform_{args,scheme,config}.py): pydantic models with
// extra="forbid", decoded with the same lax rules and defaults, and dumped as `model_dump()` does (field order kept:
// recipe.yaml is not key-sorted; config.json is).

// ----- model -----

/** Where a transform weight applies on a module (TransformLocation values). */
export type TransformLocation = "input" | "weight_input" | "weight_output" | "output" | "k_cache" | "q_attn";

export const TRANSFORM_LOCATIONS: ReadonlyArray<TransformLocation> = ["input", "weight_input", "weight_output", "output", "k_cache", "q_attn"];

/** The transform types compressed-tensors 0.20.0 registers (TransformFactory registry). */
export const TRANSFORM_TYPES = ["hadamard", "random-hadamard", "random-matrix"] as const;

export interface TransformArgs {
  readonly targets: ReadonlyArray<string>;
  readonly location: TransformLocation;
  readonly inverse: boolean;
  readonly ignore: ReadonlyArray<string>;
}

export interface TransformScheme {
  /** Any string decodes (CT looks the factory up when applying); llmq applies the TRANSFORM_TYPES. */
  readonly type: string;
  readonly apply: ReadonlyArray<TransformArgs>;
  readonly randomize: boolean;
  readonly requires_grad: boolean;
  /** Block size of a block-diagonal transform; null = the full size. */
  readonly head_dim: number | null;
  /** Canonical torch dtype name ("torch.float64"): the dtype of online transforms (offline fusing is f64). */
  readonly precision: string;
}

export interface TransformConfig {
  readonly config_groups: Readonly<Record<string, TransformScheme>>;
}

/** Online locations act on activations at run time; the others are fused into weights. */
export const isOnlineLocation = (l: TransformLocation): boolean => l !== "weight_input" && l !== "weight_output";

// ----- decoders -----

type D<A> = E.Either<SchemeError, A>;

const ARGS_FIELDS = ["targets", "location", "inverse", "ignore"];
const SCHEME_FIELDS = ["type", "apply", "randomize", "requires_grad", "head_dim", "precision"];

/** `targets` / `ignore`: a string is wrapped in a list (wrap_singleton). */
const readTargets = (u: unknown, path: string): D<ReadonlyArray<string>> => (typeof u === "string" ? E.right([u]) : readStringList(u, path));

const object = (u: unknown, path: string, what: string, fields: ReadonlyArray<string>): D<Record<string, unknown>> => {
  if (!isPlainObject(u)) return E.left(invalidField(path, what, u));
  return E.map(() => u)(checkNoExtra(u, fields, path));
};

const optional = <A>(o: Record<string, unknown>, k: string, path: string, read: (u: unknown, p: string) => D<A>, dflt: A): D<A> =>
  has(o, k) ? read(o[k], join(path, k)) : E.right(dflt);

const required = <A>(o: Record<string, unknown>, k: string, path: string, read: (u: unknown, p: string) => D<A>): D<A> =>
  has(o, k) ? read(o[k], join(path, k)) : E.left(missingField(join(path, k)));

export const decodeTransformArgs = (u: unknown, path = ""): D<TransformArgs> => {
  const o = object(u, path, "a mapping of TransformArgs fields", ARGS_FIELDS);
  if (E.isLeft(o)) return o;
  const targets = required(o.right, "targets", path, readTargets);
  if (E.isLeft(targets)) return targets;
  const location = required(o.right, "location", path, (x, p) => readEnum(x, TRANSFORM_LOCATIONS, p));
  if (E.isLeft(location)) return location;
  const inverse = optional(o.right, "inverse", path, readBool, false);
  if (E.isLeft(inverse)) return inverse;
  const ignore = optional(o.right, "ignore", path, readTargets, [] as ReadonlyArray<string>);
  if (E.isLeft(ignore)) return ignore;
  return E.right({ targets: targets.right, location: location.right, inverse: inverse.right, ignore: ignore.right });
};

/** TorchDtype: "torch.xxx" or "xxx" naming a torch dtype, kept as `str(dtype)`. */
export const readTorchDType = (u: unknown, path: string): D<string> =>
  E.flatMap(readString(u, path), (s) => {
    const c = canonicalTorchDType(s);
    return c === undefined ? E.left(invalidField(path, `a torch dtype (No such torch dtype \`torch.${s.replace(/^torch\./, "")}\`)`, u)) : E.right(c);
  });

const readApply = (u: unknown, path: string): D<ReadonlyArray<TransformArgs>> =>
  Array.isArray(u) ? E.traverseArrayWithIndex((i, x: unknown) => decodeTransformArgs(x, `${path}[${i}]`))(u) : E.left(invalidField(path, "a list of TransformArgs", u));

const readHeadDim = (u: unknown, path: string): D<number | null> => (u === null ? E.right(null) : readInt(u, path));

export const decodeTransformScheme = (u: unknown, path = ""): D<TransformScheme> => {
  const o = object(u, path, "a mapping of TransformScheme fields", SCHEME_FIELDS);
  if (E.isLeft(o)) return o;
  const type = required(o.right, "type", path, readString);
  if (E.isLeft(type)) return type;
  const apply = optional(o.right, "apply", path, readApply, [] as ReadonlyArray<TransformArgs>);
  if (E.isLeft(apply)) return apply;
  const randomize = optional(o.right, "randomize", path, readBool, false);
  if (E.isLeft(randomize)) return randomize;
  const requiresGrad = optional(o.right, "requires_grad", path, readBool, false);
  if (E.isLeft(requiresGrad)) return requiresGrad;
  const headDim = optional(o.right, "head_dim", path, readHeadDim, null);
  if (E.isLeft(headDim)) return headDim;
  const precision = optional(o.right, "precision", path, readTorchDType, "torch.float32");
  if (E.isLeft(precision)) return precision;
  return E.right({
    type: type.right,
    apply: apply.right,
    randomize: randomize.right,
    requires_grad: requiresGrad.right,
    head_dim: headDim.right,
    precision: precision.right,
  });
};

export const decodeTransformConfig = (u: unknown, path = ""): D<TransformConfig> => {
  const o = object(u, path, "a mapping with config_groups", ["config_groups"]);
  if (E.isLeft(o)) return o;
  const gpath = join(path, "config_groups");
  if (!has(o.right, "config_groups")) return E.left(missingField(gpath));
  const groups = o.right.config_groups;
  if (!isPlainObject(groups)) return E.left(invalidField(gpath, "a mapping of name → TransformScheme", groups));
  const out: Record<string, TransformScheme> = {};
  for (const [k, v] of Object.entries(groups)) {
    const s = decodeTransformScheme(v, join(gpath, k));
    if (E.isLeft(s)) return s;
    out[k] = s.right;
  }
  return E.right({ config_groups: out });
};

// ----- encoder -----

/** TransformArgs.model_dump(). */
export const encodeTransformArgs = (a: TransformArgs): Record<string, unknown> => ({ targets: [...a.targets], location: a.location, inverse: a.inverse, ignore: [...a.ignore] });

/** TransformScheme.model_dump() (precision as `str(dtype)`). */
export const encodeTransformScheme = (s: TransformScheme): Record<string, unknown> => ({
  type: s.type,
  apply: s.apply.map(encodeTransformArgs),
  randomize: s.randomize,
  requires_grad: s.requires_grad,
  head_dim: s.head_dim,
  precision: s.precision,
});

/** TransformConfig.model_dump(): what compressed-tensors writes as `quantization_config.transform_config`. */
export const encodeTransformConfig = (c: TransformConfig): Record<string, unknown> => ({
  config_groups: Object.fromEntries(Object.entries(c.config_groups).map(([k, s]) => [k, encodeTransformScheme(s)])),
});
