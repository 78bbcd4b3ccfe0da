import * as E from "fp-ts/lib/Either.js";
import { parse as parseYaml } from "yaml";
import { describe } from "./errors.js";

// msModelSlim's LLM PTQ configuration ("v0" API: `QuantConfig(...)` plus its fluent builders, and the Calibrator's
// `disable_level` / `save(save_type)`), typed with every constructor parameter and default of msModelSlim
// (reference/formats.md §1.2, MSL llm_ptq_tools/quant_config). The documented ranges and couplings are validation
// errors naming the parameter and the rule; every builder re-validates as msModelSlim's do. What llmq runs of it is
// decided by the umbrella's mapping onto modifiers, not here.

// ----- model -----

export type MsWMethod = "MinMax" | "GPTQ" | "HQQ" | "NF";
export type MsDevType = "cpu" | "npu" | "gpu";
export type MsSaveType = "numpy" | "safe_tensor" | "ascendV1";

/** msModelSlim's model_quant_type strings (QuantType.get_quant_type). */
export type MsQuantType =
  | "W8A8"
  | "W8A8S"
  | "W8A16"
  | "W4A16"
  | "NF4"
  | "W8A8_DYNAMIC"
  | "W4A8_DYNAMIC"
  | "W4A4_FLATQUANT_DYNAMIC"
  | "FLOAT";

export interface MsQuantConfig {
  readonly w_bit: number;
  readonly a_bit: number;
  readonly disable_names: ReadonlyArray<string>;
  readonly dev_type: MsDevType;
  readonly dev_id: number | null;
  readonly act_method: number;
  readonly pr: number;
  readonly w_sym: boolean;
  readonly mm_tensor: boolean;
  readonly w_method: MsWMethod;
  readonly co_sparse: boolean;
  readonly fraction: number;
  readonly nonuniform: boolean;
  readonly is_lowbit: boolean;
  readonly do_smooth: boolean;
  readonly use_sigma: boolean;
  readonly sigma_factor: number;
  readonly disable_last_linear: boolean;
  readonly use_kvcache_quant: boolean;
  readonly is_dynamic: boolean;
  readonly open_outlier: boolean;
  readonly group_size: number;
  readonly percdamp: number;
  readonly pdmix: boolean;
  /** NF4 block size (`weight_quant(block_size)`). */
  readonly block_size: number;
  /** `kv_quant(kv_sym)`. */
  readonly kv_sym: boolean;
  /** `simulate_tp(tp_size, …)`; null = off. */
  readonly simulate_tp: { readonly tp_size: number; readonly enable_communication_quant: boolean; readonly enable_per_device_quant: boolean } | null;
  /** Calibrator(…, disable_level): "L<n>" rolls back the n most sensitive layers. */
  readonly disable_level: string;
  /** Calibrator.save(save_type): msModelSlim's code default is ["numpy"]. */
  readonly save_type: ReadonlyArray<MsSaveType>;
  /** Calibrator.save(part_file_size): shard the weights into files of at most this many GiB (int ≥ 1); null = one file. */
  readonly part_file_size: number | null;
  /** Parameters the user set (rules about parameters that only matter in one mode apply to explicit values only). */
  readonly explicit: ReadonlySet<string>;
}

export interface MsConfigError {
  readonly _tag: "MsConfigError";
  readonly parameter: string;
  readonly rule: string;
  readonly message: string;
}

// ----- constructors -----

export const msConfigError = (parameter: string, rule: string, message: string): MsConfigError => ({ _tag: "MsConfigError", parameter, rule, message });

export const formatMsConfigError = (e: MsConfigError): string => `msModelSlim QuantConfig: ${e.parameter}: ${e.message}`;

type Kind = "bool" | "int" | "number" | "string" | "strings" | "intOrNull" | "params";

/** QuantConfig's constructor parameters with their kinds and defaults (MSL quant_config.py). */
const CONSTRUCTOR: Readonly<Record<string, readonly [Kind, unknown]>> = {
  w_bit: ["int", 8],
  a_bit: ["int", 8],
  disable_names: ["strings", []],
  dev_type: ["string", "cpu"],
  dev_id: ["intOrNull", null],
  act_method: ["int", 1],
  pr: ["number", 1.0],
  w_sym: ["bool", true],
  mm_tensor: ["bool", true],
  w_method: ["string", "MinMax"],
  co_sparse: ["bool", false],
  fraction: ["number", 0.01],
  nonuniform: ["bool", false],
  is_lowbit: ["bool", false],
  do_smooth: ["bool", false],
  use_sigma: ["bool", false],
  sigma_factor: ["number", 3.0],
  disable_last_linear: ["bool", true],
  use_kvcache_quant: ["bool", false],
  is_dynamic: ["bool", false],
  open_outlier: ["bool", true],
  group_size: ["int", 64],
  percdamp: ["number", 0.01],
  pdmix: ["bool", false],
};

const specOf = (names: ReadonlyArray<string>): Readonly<Record<string, readonly [Kind, unknown]>> => Object.fromEntries(names.map((n) => [n, CONSTRUCTOR[n]!]));

/** The builders and their parameters with defaults (MSL quant_config.py; each returns self after re-validating). */
export const MS_BUILDERS: Readonly<Record<string, Readonly<Record<string, readonly [Kind, unknown]>>>> = {
  weight_quant: { ...specOf(["w_method", "mm_tensor", "w_sym", "group_size"]), block_size: ["int", 64] },
  weight_activation_quant: specOf(["act_method", "pr", "is_dynamic"]),
  sparse_quant: specOf(["act_method", "fraction", "nonuniform", "is_lowbit", "do_smooth", "use_sigma", "sigma_factor"]),
  kv_quant: { kv_sym: ["bool", true] },
  simulate_tp: { tp_size: ["int", null], enable_communication_quant: ["bool", true], enable_per_device_quant: ["bool", true] },
};

/** Calibrator / save options accepted beside the constructor parameters in a config file. */
const CALIBRATOR: Readonly<Record<string, readonly [Kind, unknown]>> = {
  disable_level: ["string", "L0"],
  save_type: ["strings", ["numpy"]],
  part_file_size: ["intOrNull", null],
};

export const MS_PARAMETERS: ReadonlyArray<string> = [...Object.keys(CONSTRUCTOR), ...Object.keys(MS_BUILDERS), ...Object.keys(CALIBRATOR)];

const defaults = (): MsQuantConfig =>
  ({
    ...Object.fromEntries(Object.entries(CONSTRUCTOR).map(([k, [, d]]) => [k, d])),
    block_size: 64,
    kv_sym: true,
    simulate_tp: null,
    disable_level: "L0",
    save_type: ["numpy"],
    part_file_size: null,
    explicit: new Set<string>(),
  }) as unknown as MsQuantConfig;

const KIND_CHECK: Readonly<Record<Kind, (v: unknown) => boolean>> = {
  bool: (v) => typeof v === "boolean",
  int: (v) => typeof v === "number" && Number.isInteger(v),
  number: (v) => typeof v === "number" && Number.isFinite(v),
  string: (v) => typeof v === "string",
  strings: (v) => Array.isArray(v) && v.every((s) => typeof s === "string"),
  intOrNull: (v) => v === null || (typeof v === "number" && Number.isInteger(v)),
  params: (v) => v !== null && typeof v === "object" && !Array.isArray(v),
};

const KIND_TEXT: Readonly<Record<Kind, string>> = {
  bool: "true or false",
  int: "an integer",
  number: "a number",
  string: "a string",
  strings: "a list of strings",
  intOrNull: "an integer or null",
  params: "an object of the builder's parameters",
};

/** Typed fields of a parameter object; unknown names and wrong kinds are errors naming the parameter. */
const readFields = (
  where: string,
  raw: unknown,
  spec: Readonly<Record<string, readonly [Kind, unknown]>>,
): E.Either<MsConfigError, Readonly<Record<string, unknown>>> => {
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) return E.left(msConfigError(where, "type", `expected an object of parameters, got ${describe(raw)}`));
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(raw)) {
    const s = spec[k];
    const name = where === "" ? k : `${where}.${k}`;
    if (s === undefined) return E.left(msConfigError(name, "unknown", `unknown parameter (known: ${Object.keys(spec).join(", ")})`));
    if (!KIND_CHECK[s[0]](v)) return E.left(msConfigError(name, "type", `must be ${KIND_TEXT[s[0]]}, got ${describe(v)}`));
    out[k] = v;
  }
  return E.right(out);
};

// ----- functions -----

const inSet = (p: string, v: number, allowed: ReadonlyArray<number>): MsConfigError | null =>
  allowed.includes(v) ? null : msConfigError(p, "range", `must be one of ${allowed.join(", ")}, got ${v}`);

const inRange = (p: string, v: number, lo: number, hi: number): MsConfigError | null =>
  v >= lo && v <= hi ? null : msConfigError(p, "range", `must be in [${lo}, ${hi}], got ${v}`);

/** msModelSlim's check_per_group: per-group weights iff lowbit without outlier split, weight-only or W4A8. */
export const msPerGroup = (c: MsQuantConfig): boolean => c.is_lowbit && !c.open_outlier && (c.a_bit === 16 || (c.w_bit === 4 && c.a_bit === 8));

/** QuantType.get_quant_type (first match wins); null for msModelSlim's UNKNOWN. */
export const msQuantType = (c: MsQuantConfig): MsQuantType | null => {
  const wa = `${c.w_bit}/${c.a_bit}`;
  if (c.is_dynamic) return wa === "8/8" ? "W8A8_DYNAMIC" : wa === "4/8" ? "W4A8_DYNAMIC" : wa === "4/4" ? "W4A4_FLATQUANT_DYNAMIC" : null;
  if (c.co_sparse) return "W8A8S";
  if (wa === "8/8") return "W8A8";
  if (wa === "8/16") return "W8A16";
  if (wa === "4/16") return c.w_method === "NF" ? "NF4" : "W4A16";
  if (wa === "16/16") return "FLOAT";
  if (c.is_lowbit && wa === "4/8") return "W8A8S";
  return null;
};

/** The value-range rules of single parameters. */
const rangeRules = (c: MsQuantConfig): ReadonlyArray<MsConfigError | null> => [
  inSet("w_bit", c.w_bit, [4, 8]),
  c.a_bit === 4 && !c.is_dynamic ? msConfigError("a_bit", "a_bit_4_dynamic", "a_bit 4 (W4A4) requires is_dynamic=True") : inSet("a_bit", c.a_bit, [4, 8, 16]),
  inSet("act_method", c.act_method, [1, 2, 3]),
  ["MinMax", "GPTQ", "HQQ", "NF"].includes(c.w_method) ? null : msConfigError("w_method", "range", `must be one of MinMax, GPTQ, HQQ, NF, got ${JSON.stringify(c.w_method)}`),
  ["cpu", "npu", "gpu"].includes(c.dev_type) ? null : msConfigError("dev_type", "range", `must be one of cpu, npu, gpu, got ${JSON.stringify(c.dev_type)}`),
  c.dev_id === null || c.dev_id >= 0 ? null : msConfigError("dev_id", "range", `must be a non-negative integer, got ${c.dev_id}`),
  inRange("pr", c.pr, 0, 1),
  inRange("fraction", c.fraction, 0.01, 0.1),
  inRange("sigma_factor", c.sigma_factor, 3.0, 4.0),
  inSet("group_size", c.group_size, [32, 64, 128, 256]),
  inRange("percdamp", c.percdamp, 0, 1),
  inSet("block_size", c.block_size, [64, 128, 256, 512, 1024, 2048, 4096]),
  c.simulate_tp === null ? null : inSet("simulate_tp.tp_size", c.simulate_tp.tp_size, [2, 4, 8, 16]),
  /^L\d+$/.test(c.disable_level) ? null : msConfigError("disable_level", "format", `must match L<n> (e.g. "L0", "L5"), got ${JSON.stringify(c.disable_level)}`),
  c.save_type.every((t) => ["numpy", "safe_tensor", "ascendV1"].includes(t))
    ? null
    : msConfigError("save_type", "range", `each entry must be numpy, safe_tensor or ascendV1, got ${JSON.stringify(c.save_type)}`),
  c.part_file_size === null || c.part_file_size >= 1 ? null : msConfigError("part_file_size", "range", `must be an integer ≥ 1 (GB per file), got ${c.part_file_size}`),
];

/** The couplings between parameters (MSL config_utils / quant_config checks). */
const couplingRules = (c: MsQuantConfig): ReadonlyArray<MsConfigError | null> => {
  const type = msQuantType(c);
  const rule = (ok: boolean, p: string, id: string, m: string) => (ok ? null : msConfigError(p, id, m));
  return [
    rule(!(c.act_method === 3 && c.is_lowbit), "act_method", "act_method_3_lowbit", "act_method 3 (automatic mix) cannot be used with is_lowbit=True"),
    rule(c.w_method !== "NF" || (c.w_bit === 4 && c.a_bit === 16), "w_method", "nf_w4a16", "w_method NF (NF4) requires w_bit=4 and a_bit=16"),
    rule(c.a_bit !== 8 || c.w_sym, "w_sym", "w_sym_a8", "w_sym must be True when a_bit is 8"),
    rule(!c.explicit.has("group_size") || msPerGroup(c), "group_size", "group_size_per_group", "group_size applies only to per-group quantization: set is_lowbit=True and open_outlier=False (weight-only or W4A8)"),
    rule(!c.explicit.has("percdamp") || c.w_method === "GPTQ", "percdamp", "percdamp_gptq", "percdamp applies only to w_method GPTQ"),
    rule(!c.is_dynamic || ([4, 8].includes(c.w_bit) && c.a_bit !== 16), "is_dynamic", "dynamic_bits", "is_dynamic needs w_bit 4 or 8 and a_bit other than 16"),
    rule(!(type === "W8A8" || type === "W8A8S") || c.w_method === "MinMax", "w_method", "w8a8_minmax", `${type} accepts only w_method MinMax, got ${c.w_method}`),
    rule(type !== "W4A8_DYNAMIC" || (msPerGroup(c) && c.w_sym), "is_dynamic", "w4a8_dynamic", "W4A8_DYNAMIC requires per-group weights (is_lowbit=True, open_outlier=False) and w_sym=True"),
    rule(
      type !== "W4A4_FLATQUANT_DYNAMIC" || (c.w_method === "MinMax" && c.w_sym && c.disable_last_linear),
      "a_bit",
      "w4a4",
      "W4A4 requires w_method MinMax, w_sym=True and disable_last_linear=True",
    ),
    rule(!c.pdmix || type === "W8A8", "pdmix", "pdmix_w8a8", "pdmix applies only to W8A8"),
    rule(type !== null, "w_bit", "quant_type", `w_bit ${c.w_bit} with a_bit ${c.a_bit} is no msModelSlim quantization type (W8A8, W8A16, W4A16, W8A8S via co_sparse or is_lowbit, *_DYNAMIC via is_dynamic)`),
  ];
};

/** Every rule, in msModelSlim's order; the first failure is reported. Applies the forced values first. */
export const validateMsQuantConfig = (input: MsQuantConfig): E.Either<MsConfigError, MsQuantConfig> => {
  const c = normalize(input);
  const bad = [...rangeRules(c), ...couplingRules(c)].find((e) => e !== null);
  return bad ? E.left(bad) : E.right(c);
};

/** msModelSlim's forced values: co_sparse → W4A8 with pr 1 (off when is_lowbit); per-group → per-channel scales. */
const normalize = (c: MsQuantConfig): MsQuantConfig => {
  const sparse = c.co_sparse && !c.is_lowbit;
  const forced = sparse ? { ...c, w_bit: 4, a_bit: 8, pr: 1.0 } : { ...c, co_sparse: false };
  return msPerGroup(forced) ? { ...forced, mm_tensor: false } : forced;
};

const withFields = (c: MsQuantConfig, fields: Readonly<Record<string, unknown>>): MsQuantConfig =>
  ({ ...c, ...fields, explicit: new Set([...c.explicit, ...Object.keys(fields)]) }) as MsQuantConfig;

/** `QuantConfig(**kwargs)`: defaults, the given constructor parameters, validation. */
export const msQuantConfig = (kwargs: Readonly<Record<string, unknown>> = {}): E.Either<MsConfigError, MsQuantConfig> =>
  pipe2(readFields("", kwargs, CONSTRUCTOR), (f) => validateMsQuantConfig(withFields(defaults(), f)));

const pipe2 = <A, B>(a: E.Either<MsConfigError, A>, f: (a: A) => E.Either<MsConfigError, B>): E.Either<MsConfigError, B> => (E.isLeft(a) ? a : f(a.right));

/** One builder call (`cfg.weight_quant(**kwargs)` …) with its own defaults for parameters not given. */
export const msBuilder = (c: MsQuantConfig, builder: string, kwargs: Readonly<Record<string, unknown>> = {}): E.Either<MsConfigError, MsQuantConfig> => {
  const spec = MS_BUILDERS[builder];
  if (spec === undefined) return E.left(msConfigError(builder, "unknown", `unknown builder (known: ${Object.keys(MS_BUILDERS).join(", ")})`));
  return pipe2(readFields(builder, kwargs, spec), (given) => {
    const all = { ...Object.fromEntries(Object.entries(spec).map(([k, [, d]]) => [k, d])), ...given };
    switch (builder) {
      case "sparse_quant":
        return validateMsQuantConfig(withFields(c, { ...all, co_sparse: true }));
      case "kv_quant":
        return validateMsQuantConfig(withFields(c, { kv_sym: all.kv_sym, use_kvcache_quant: true }));
      case "simulate_tp":
        if (typeof all.tp_size !== "number") return E.left(msConfigError("simulate_tp.tp_size", "missing", "is required (2, 4, 8 or 16)"));
        return validateMsQuantConfig({ ...c, simulate_tp: all as unknown as NonNullable<MsQuantConfig["simulate_tp"]> });
      default:
        // weight_quant passes group_size only for per-group use; its default is not an explicit choice
        return validateMsQuantConfig(withFields(c, builder === "weight_quant" && !("group_size" in given) ? omit(all, "group_size") : all));
    }
  });
};

const omit = (o: Readonly<Record<string, unknown>>, k: string) => Object.fromEntries(Object.entries(o).filter(([n]) => n !== k));

/**
 * A config file (JSON or YAML object): QuantConfig's constructor parameters, builder calls as objects of their
 * parameters (`"kv_quant": {"kv_sym": true}`, applied in the order weight_quant, weight_activation_quant,
 * sparse_quant, kv_quant, simulate_tp), and the Calibrator's `disable_level`, `save_type` and `part_file_size`.
 */
export const decodeMsQuantConfig = (raw: unknown): E.Either<MsConfigError, MsQuantConfig> =>
  pipe2(readFields("", raw, FILE_FIELDS), (fields) => {
    const pick = (spec: object) => Object.fromEntries(Object.entries(fields).filter(([k]) => k in spec));
    let c = msQuantConfig(pick(CONSTRUCTOR));
    for (const b of Object.keys(MS_BUILDERS)) if (b in fields) c = pipe2(c, (x) => msBuilder(x, b, fields[b] as Readonly<Record<string, unknown>>));
    return pipe2(c, (x) => validateMsQuantConfig(withFields(x, pick(CALIBRATOR))));
  });

const FILE_FIELDS: Readonly<Record<string, readonly [Kind, unknown]>> = {
  ...CONSTRUCTOR,
  ...CALIBRATOR,
  ...Object.fromEntries(Object.keys(MS_BUILDERS).map((b) => [b, ["params", null] as const])),
};

/** decodeMsQuantConfig of a JSON or YAML text (YAML is a superset of JSON). */
export const parseMsQuantConfig = (text: string): E.Either<MsConfigError, MsQuantConfig> => {
  let raw: unknown;
  try {
    raw = parseYaml(text);
  } catch (e) {
    return E.left(msConfigError("(file)", "syntax", `not valid JSON or YAML: ${(e as Error).message.split("\n")[0]}`));
  }
  return decodeMsQuantConfig(raw);
};
