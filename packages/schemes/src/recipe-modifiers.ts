import * as E from "fp-ts/lib/Either.js";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { decodeQuantizationScheme } from "./decode-quantization-scheme.js";
import { invalidField } from "./errors.js";
import { PRESET_NAMES, isPresetScheme } from "./preset-schemes.js";
import type { ActivationOrdering, QuantizationArgs, QuantizationScheme } from "./quantization-args.js";
import { type RecipeError, invalidRecipe, unknownModifier, unsupportedModifier } from "./recipe-errors.js";
import { has, isPlainObject, join, readBool, readInt, readString } from "./wire.js";

// ----- model -----

/** Fields every llm-compressor Modifier has (`start`/`end` are −1 or null for one-shot runs). */
export interface BaseModifierFields {
  readonly index: number | null;
  readonly group: string | null;
  readonly start: number | null;
  readonly end: number | null;
  readonly update: number | null;
  readonly requires_calibration_data: boolean;
}

/** `observer` override dict of QuantizationMixin (keys weights / input / output). */
export interface ObserverOverrides {
  readonly weights?: string;
  readonly input?: string;
  readonly output?: string;
}

/** LC `QuantizationMixin` fields (QuantizationModifier, GPTQModifier). */
export interface QuantizationMixinFields {
  readonly config_groups: Readonly<Record<string, QuantizationScheme>> | null;
  readonly targets: ReadonlyArray<string>;
  readonly ignore: ReadonlyArray<string>;
  /** A preset name, or {preset name: targets}. */
  readonly scheme: string | Readonly<Record<string, ReadonlyArray<string>>> | null;
  readonly kv_cache_scheme: QuantizationArgs | null;
  readonly weight_observer: string | null;
  readonly input_observer: string | null;
  readonly output_observer: string | null;
  readonly observer: ObserverOverrides | null;
  readonly bypass_divisibility_checks: boolean;
}

export interface QuantizationModifierConfig extends BaseModifierFields, QuantizationMixinFields {
  readonly type: "QuantizationModifier";
}

export interface GPTQModifierConfig extends BaseModifierFields, QuantizationMixinFields {
  readonly type: "GPTQModifier";
  readonly block_size: number;
  readonly dampening_frac: number | null;
  /** null = leave args alone. `actorderDefaulted` marks LC's Sentinel("static") default (fills only null args). */
  readonly actorder: ActivationOrdering | null;
  readonly actorderDefaulted: boolean;
  readonly batched_quantization: "auto" | number | null;
}

/** [[balance layer regexes], smooth layer regex] */
export type SmoothQuantMapping = readonly [ReadonlyArray<string>, string];

export interface SmoothQuantModifierConfig extends BaseModifierFields {
  readonly type: "SmoothQuantModifier";
  readonly smoothing_strength: number;
  readonly mappings: ReadonlyArray<SmoothQuantMapping> | null;
  readonly ignore: ReadonlyArray<string> | null;
  readonly num_calibration_steps: number | null;
  readonly algorithm: "smoothquant" | "log_equalization";
}

export interface AWQMapping {
  readonly smooth_layer: string;
  readonly balance_layers: ReadonlyArray<string>;
  readonly activation_hook_target: string | null;
}

export interface AWQModifierConfig extends BaseModifierFields {
  readonly type: "AWQModifier";
  readonly mappings: ReadonlyArray<AWQMapping> | null;
  /** null = LC's "not provided" sentinel (cpu for MoE models). */
  readonly offload_device: string | null;
  readonly duo_scaling: boolean | "both";
  readonly n_grid: number;
}

export type TransformType = "hadamard" | "random-hadamard" | "random-matrix";

export interface SpinQuantModifierConfig extends BaseModifierFields {
  readonly type: "SpinQuantModifier";
  readonly rotations: ReadonlyArray<"R1" | "R2" | "R3" | "R4">;
  readonly transform_type: TransformType;
  readonly randomize: boolean;
  readonly learnable: boolean;
  readonly precision: string;
  readonly transform_block_size: number | null;
  readonly transform_config: Readonly<Record<string, unknown>> | null;
}

export interface QuIPModifierConfig extends BaseModifierFields {
  readonly type: "QuIPModifier";
  readonly rotations: ReadonlyArray<"v" | "u">;
  readonly transform_type: TransformType;
  readonly targets: ReadonlyArray<string>;
  readonly randomize: boolean;
  readonly learnable: boolean;
  readonly precision: string;
  readonly transform_block_size: number | null;
  readonly ignore: ReadonlyArray<string>;
  readonly transform_config: Readonly<Record<string, unknown>> | null;
}

export type ModifierConfig =
  | QuantizationModifierConfig
  | GPTQModifierConfig
  | SmoothQuantModifierConfig
  | AWQModifierConfig
  | SpinQuantModifierConfig
  | QuIPModifierConfig;

export type ModifierType = ModifierConfig["type"];

// ----- field readers -----

type R<A> = E.Either<RecipeError, A>;
type Reader<A> = (u: unknown, path: string) => R<A>;

const nullable =
  <A>(r: Reader<A>): Reader<A | null> =>
  (u, p) =>
    u === null || u === undefined ? E.right(null) : r(u, p);

const readNumber: Reader<number> = (u, p) =>
  typeof u === "number" && Number.isFinite(u)
    ? E.right(u)
    : typeof u === "string" && u.trim() !== "" && Number.isFinite(Number(u))
      ? E.right(Number(u))
      : E.left(invalidField(p, "a number", u));

const readStrOrList: Reader<ReadonlyArray<string>> = (u, p) => {
  if (typeof u === "string") return E.right([u]);
  if (Array.isArray(u) && u.every((x) => typeof x === "string")) return E.right([...u]);
  return E.left(invalidField(p, "a string or a list of strings", u));
};

const readList: Reader<ReadonlyArray<string>> = (u, p) => {
  if (Array.isArray(u) && u.every((x) => typeof x === "string")) return E.right([...u]);
  return E.left(invalidField(p, "a list of strings", u));
};

const readLiteral =
  <T extends string | boolean>(allowed: ReadonlyArray<T>): Reader<T> =>
  (u, p) =>
    allowed.includes(u as T) ? E.right(u as T) : E.left(invalidField(p, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, u));

const readObject: Reader<Readonly<Record<string, unknown>>> = (u, p) => (isPlainObject(u) ? E.right(u) : E.left(invalidField(p, "a mapping", u)));

const ACTORDERS: ReadonlyArray<ActivationOrdering> = ["group", "weight", "static", "dynamic"];

const readScheme: Reader<string | Readonly<Record<string, ReadonlyArray<string>>>> = (u, p) => {
  const msg = "a preset scheme name or a mapping of preset scheme names to targets";
  if (typeof u === "string") return isPresetScheme(u) ? E.right(u) : E.left({ _tag: "UnknownPreset", path: p, name: u, available: PRESET_NAMES });
  if (!isPlainObject(u)) return E.left(invalidField(p, msg, u));
  const out: Record<string, ReadonlyArray<string>> = {};
  for (const [k, v] of Object.entries(u)) {
    if (!isPresetScheme(k)) return E.left({ _tag: "UnknownPreset", path: join(p, k), name: k, available: PRESET_NAMES });
    const t = readStrOrList(v, join(p, k));
    if (E.isLeft(t)) return t;
    out[k] = t.right;
  }
  return E.right(out);
};

const readConfigGroups: Reader<Readonly<Record<string, QuantizationScheme>>> = (u, p) => {
  if (!isPlainObject(u)) return E.left(invalidField(p, "a mapping of group names to QuantizationScheme", u));
  const out: Record<string, QuantizationScheme> = {};
  for (const [k, v] of Object.entries(u)) {
    const s = decodeQuantizationScheme(v, join(p, k));
    if (E.isLeft(s)) return s;
    out[k] = s.right;
  }
  return E.right(out);
};

const OBSERVER_KEYS = ["weights", "input", "output"] as const;
const readObserverOverrides: Reader<ObserverOverrides> = (u, p) => {
  if (!isPlainObject(u)) return E.left(invalidField(p, "a mapping with keys weights, input, output", u));
  const out: { weights?: string; input?: string; output?: string } = {};
  for (const [k, v] of Object.entries(u)) {
    if (!(OBSERVER_KEYS as ReadonlyArray<string>).includes(k)) return E.left({ _tag: "UnknownField", path: join(p, k), allowed: OBSERVER_KEYS });
    if (typeof v !== "string") return E.left(invalidField(join(p, k), "an observer name (string)", v));
    out[k as (typeof OBSERVER_KEYS)[number]] = v;
  }
  return E.right(out);
};

const readAwqMapping: Reader<AWQMapping> = (u, p) => {
  if (!isPlainObject(u)) return E.left(invalidField(p, "a mapping {smooth_layer, balance_layers, activation_hook_target}", u));
  const fields = ["smooth_layer", "balance_layers", "activation_hook_target"];
  for (const k of Object.keys(u)) if (!fields.includes(k)) return E.left({ _tag: "UnknownField", path: join(p, k), allowed: fields });
  if (!has(u, "smooth_layer")) return E.left({ _tag: "MissingField", path: join(p, "smooth_layer") });
  if (!has(u, "balance_layers")) return E.left({ _tag: "MissingField", path: join(p, "balance_layers") });
  const s = readString(u.smooth_layer, join(p, "smooth_layer"));
  if (E.isLeft(s)) return s;
  const b = readList(u.balance_layers, join(p, "balance_layers"));
  if (E.isLeft(b)) return b;
  const t = nullable(readString)(u.activation_hook_target, join(p, "activation_hook_target"));
  if (E.isLeft(t)) return t;
  return E.right({ smooth_layer: s.right, balance_layers: b.right, activation_hook_target: t.right });
};

const listOf =
  <A>(r: Reader<A>): Reader<ReadonlyArray<A>> =>
  (u, p) => {
    if (!Array.isArray(u)) return E.left(invalidField(p, "a list", u));
    const out: A[] = [];
    for (let i = 0; i < u.length; i++) {
      const x = r(u[i], `${p}[${i}]`);
      if (E.isLeft(x)) return x;
      out.push(x.right);
    }
    return E.right(out);
  };

const readSmoothMapping: Reader<SmoothQuantMapping> = (u, p) => {
  if (!Array.isArray(u) || u.length !== 2) return E.left(invalidField(p, "a pair [[balance layers], smooth layer]", u));
  const b = readStrOrList(u[0], `${p}[0]`);
  if (E.isLeft(b)) return b;
  const s = readString(u[1], `${p}[1]`);
  if (E.isLeft(s)) return s;
  return E.right([b.right, s.right] as const);
};

// ----- field tables -----

/** One modifier field: wire name, reader and LC 0.14 default. Table order = LC's model field order. */
interface Field {
  readonly name: string;
  readonly read: Reader<unknown>;
  readonly default: () => unknown;
}
const f = <A>(name: string, read: Reader<A>, dflt: A | (() => A)): Field => ({
  name,
  read: read as Reader<unknown>,
  default: typeof dflt === "function" ? (dflt as () => A) : () => dflt,
});

const BASE_FIELDS = (requiresCalibration: boolean): ReadonlyArray<Field> => [
  f("requires_calibration_data", readBool, requiresCalibration),
  f("index", nullable(readInt), null),
  f("group", nullable(readString), null),
  f("start", nullable(readNumber), null),
  f("end", nullable(readNumber), null),
  f("update", nullable(readNumber), null),
];

const MIXIN_FIELDS: ReadonlyArray<Field> = [
  f("config_groups", nullable(readConfigGroups), null),
  f("targets", readStrOrList, () => ["Linear"]),
  f("ignore", readList, () => []),
  f("scheme", nullable(readScheme), null),
  f("kv_cache_scheme", nullable(decodeQuantizationArgs), null),
  f("weight_observer", nullable(readString), null),
  f("input_observer", nullable(readString), null),
  f("output_observer", nullable(readString), null),
  f("observer", nullable(readObserverOverrides), null),
  f("bypass_divisibility_checks", readBool, false),
];

const readActorder: Reader<ActivationOrdering | null> = nullable(readLiteral(ACTORDERS));
const readBatched: Reader<"auto" | number | null> = (u, p) =>
  u === null || u === undefined
    ? E.right(null)
    : u === "auto"
      ? E.right("auto")
      : typeof u === "number" && Number.isSafeInteger(u) && u > 0
        ? E.right(u)
        : E.left(invalidField(p, '"auto", a positive integer or null', u));

const notImplemented =
  (what: string): Reader<boolean> =>
  (u, p) =>
    E.flatMap(readBool(u, p), (b) => (b ? E.left(invalidField(p, `false (${what} is not supported by llm-compressor 0.14)`, u)) : E.right(b)));

const TRANSFORM_TYPES: ReadonlyArray<TransformType> = ["hadamard", "random-hadamard", "random-matrix"];
const SPIN_ROTATIONS = ["R1", "R2", "R3", "R4"] as const;
const QUIP_ROTATIONS = ["v", "u"] as const;

const readRotations =
  <T extends string>(allowed: ReadonlyArray<T>, norm: (s: string) => string): Reader<ReadonlyArray<T>> =>
  (u, p) =>
    listOf((x, q) => (typeof x === "string" ? readLiteral(allowed)(norm(x), q) : E.left(invalidField(q, "a string", x))))(u, p);

/** The modifiers llmq implements, with their fields (after the base fields) in LC 0.14 order and defaults. */
export const MODIFIER_FIELDS: Readonly<Record<ModifierType, ReadonlyArray<Field>>> = {
  QuantizationModifier: [...MIXIN_FIELDS, ...BASE_FIELDS(false)],
  GPTQModifier: [
    ...MIXIN_FIELDS,
    ...BASE_FIELDS(true),
    f("block_size", readInt, 128),
    f("dampening_frac", nullable(readNumber), 0.01),
    f("actorder", readActorder, "static"),
    f("batched_quantization", readBatched, "auto"),
  ],
  SmoothQuantModifier: [
    ...BASE_FIELDS(true),
    f("smoothing_strength", readNumber, 0.5),
    f("mappings", nullable(listOf(readSmoothMapping)), null),
    f("ignore", nullable(readList), null),
    f("num_calibration_steps", nullable(readInt), null),
    f("algorithm", readLiteral(["smoothquant", "log_equalization"] as const), "smoothquant"),
  ],
  AWQModifier: [
    ...BASE_FIELDS(true),
    f("mappings", nullable(listOf(readAwqMapping)), null),
    f("offload_device", nullable(readString), null),
    f("duo_scaling", readLiteral([true, false, "both"] as const), true),
    f("n_grid", readInt, 20),
  ],
  SpinQuantModifier: [
    ...BASE_FIELDS(false),
    f<ReadonlyArray<string>>("rotations", readRotations(SPIN_ROTATIONS, (s) => s.toUpperCase()), () => ["R1", "R2"]),
    f("transform_type", readLiteral(TRANSFORM_TYPES), "hadamard"),
    f("randomize", notImplemented("randomize"), false),
    f("learnable", notImplemented("learnable"), false),
    f("precision", readString, "torch.float64"),
    f("transform_block_size", nullable(readInt), null),
    f("transform_config", nullable(readObject), null),
  ],
  QuIPModifier: [
    ...BASE_FIELDS(false),
    f<ReadonlyArray<string>>("rotations", readRotations(QUIP_ROTATIONS, (s) => s.toLowerCase()), () => ["v"]),
    f("transform_type", readLiteral(TRANSFORM_TYPES), "random-hadamard"),
    f("targets", readStrOrList, () => ["Linear"]),
    f("randomize", notImplemented("randomize"), false),
    f("learnable", notImplemented("learnable"), false),
    f("precision", readString, "torch.float64"),
    f("transform_block_size", nullable(readInt), null),
    f("ignore", readStrOrList, () => ["lm_head"]),
    f("transform_config", nullable(readObject), null),
  ],
};

export const MODIFIER_TYPES = Object.keys(MODIFIER_FIELDS) as ReadonlyArray<ModifierType>;

/** Every modifier class llm-compressor 0.14's ModifierFactory registers (for telling "unsupported" from "unknown"). */
export const LLM_COMPRESSOR_MODIFIERS: ReadonlyArray<string> = [
  "AWQModifier",
  "AutoRoundModifier",
  "ConstantPruningModifier",
  "GPTQModifier",
  "LogarithmicEqualizationModifier",
  "MagnitudePruningModifier",
  "QuIPModifier",
  "QuantizationModifier",
  "REAPPruningModifier",
  "SmoothQuantModifier",
  "SparseGPTModifier",
  "SpinQuantModifier",
  "WandaPruningModifier",
];

// The quantization keys LC's deprecated `llmcompressor.modifiers.awq.AWQModifier(...)` helper split off into a
// QuantizationModifier; the recipe class AWQModifier (a transform since LC 0.9) refuses them as extra fields.
const AWQ_SHIM_KEYS: ReadonlyArray<string> = [
  "config_groups",
  "targets",
  "ignore",
  "scheme",
  "kv_cache_scheme",
  "weight_observer",
  "input_observer",
  "output_observer",
  "observer",
  "bypass_divisibility_checks",
];
const AWQ_SHIM_HINT =
  "AWQModifier is a transform and takes no quantization fields (llm-compressor 0.14 refuses them too: extra inputs are not permitted); move scheme / targets / ignore into a QuantizationModifier after it, e.g. AWQModifier: {duo_scaling: true} then QuantizationModifier: {scheme: W4A16_ASYM, targets: [Linear], ignore: [lm_head]}";

// Fields LC accepts but that are runtime objects (Python callables): a recipe can only leave them null, as LC's own
// saved recipes do; any other value is refused (LC's pydantic refuses a non-callable too).
const EXTRA_ACCEPTED: Readonly<Partial<Record<ModifierType, ReadonlyArray<string>>>> = {
  SmoothQuantModifier: ["calibration_function"],
};

// Fields LC accepts but replaces before use: SpinQuantModifier.on_initialize overwrites `mappings` / `norm_mappings` with
// the ones it infers from the model class (llm-compressor 0.14), so a value would silently do nothing there. null is
// accepted; a value is refused with this reason rather than ignored.
const WITHOUT_EFFECT: Readonly<Partial<Record<ModifierType, Readonly<Record<string, string>>>>> = {
  SpinQuantModifier: {
    mappings: "llm-compressor 0.14's SpinQuantModifier.on_initialize replaces it with the mapping inferred from the model class (LlamaForCausalLM's, also its fallback), so it has no effect; llmq uses that mapping too",
    norm_mappings: "llm-compressor 0.14's SpinQuantModifier.on_initialize replaces it with the norm mappings inferred from the model class, so it has no effect; llmq fuses the Llama norms (input_layernorm → q/k/v, post_attention_layernorm → up/gate, model.norm → lm_head)",
  },
};

// ----- decoder -----

/**
 * Decodes `args` of modifier `name` (pydantic `extra="forbid"`: an unknown key is an UnknownField error with its
 * path and the allowed fields) and applies LC 0.14 defaults.
 */
export const decodeModifier = (name: string, u: unknown, path: string): E.Either<RecipeError, ModifierConfig> => {
  if (!Object.hasOwn(MODIFIER_FIELDS, name))
    return E.left(LLM_COMPRESSOR_MODIFIERS.includes(name) ? unsupportedModifier(path, name, MODIFIER_TYPES) : unknownModifier(path, name, MODIFIER_TYPES));
  const type = name as ModifierType;
  const fields = MODIFIER_FIELDS[type];
  const args = u === null || u === undefined ? {} : u;
  if (!isPlainObject(args)) return E.left(invalidField(path, `a mapping of ${name} arguments`, u));
  const names = fields.map((x) => x.name);
  const extra = EXTRA_ACCEPTED[type] ?? [];
  for (const k of Object.keys(args)) {
    if (names.includes(k)) continue;
    if (extra.includes(k)) {
      if (args[k] === null) continue;
      return E.left(invalidRecipe(join(path, k), `${k} is a Python callable in llm-compressor, which a recipe cannot give; leave it out (or null)`));
    }
    const noEffect = WITHOUT_EFFECT[type]?.[k];
    if (noEffect !== undefined) {
      if (args[k] === null) continue;
      return E.left(invalidRecipe(join(path, k), `${k}: ${noEffect}; leave it out (or null)`));
    }
    if (type === "AWQModifier" && AWQ_SHIM_KEYS.includes(k))
      return E.left(invalidRecipe(join(path, k), AWQ_SHIM_HINT));
    return E.left({ _tag: "UnknownField", path: join(path, k), allowed: names });
  }
  const out: Record<string, unknown> = { type };
  for (const fd of fields) {
    if (has(args, fd.name) && !(args[fd.name] === undefined)) {
      const v = fd.read(args[fd.name], join(path, fd.name));
      if (E.isLeft(v)) return v;
      out[fd.name] = v.right;
    } else out[fd.name] = fd.default();
  }
  if (type === "GPTQModifier") out.actorderDefaulted = !has(args, "actorder");
  return E.right(out as unknown as ModifierConfig);
};
