import * as E from "fp-ts/lib/Either.js";
import { presetScheme } from "./preset-schemes.js";
import type { ActivationOrdering, QuantizationArgs, QuantizationArgsField, QuantizationConfig, QuantizationScheme } from "./quantization-args.js";
import { type RecipeError, invalidRecipe } from "./recipe-errors.js";
import type { GPTQModifierConfig, QuantizationMixinFields, QuantizationModifierConfig } from "./recipe-modifiers.js";
import { join } from "./wire.js";

// ----- observer overrides (LC QuantizationMixin._apply_observer_overrides) -----

const explicitObserver = (a: QuantizationArgs): boolean =>
  a.observer !== null && (a.fields_set === undefined || a.fields_set.includes("observer"));

const withObserver = (a: QuantizationArgs, observer: string | null): QuantizationArgs => ({
  ...a,
  observer,
  // pydantic adds an assigned field to model_fields_set, so the encoder then writes it
  fields_set: [...new Set<QuantizationArgsField>([...(a.fields_set ?? []), "observer"])],
});

const applyObserverOverrides = (m: QuantizationMixinFields, s: QuantizationScheme, path: string): E.Either<RecipeError, QuantizationScheme> => {
  const individual = m.weight_observer !== null || m.input_observer !== null || m.output_observer !== null;
  if (individual && m.observer !== null)
    return E.left(
      invalidRecipe(
        path,
        "Cannot specify both individual observer parameters (weight_observer, input_observer, output_observer) and observer dict. Please use either individual parameters or the observer dict.",
      ),
    );
  const w = m.observer?.weights ?? m.weight_observer;
  const i = m.observer?.input ?? m.input_observer;
  const o = m.observer?.output ?? m.output_observer;
  const one = (a: QuantizationArgs | null, value: string | null, fallback: string): QuantizationArgs | null => {
    if (a === null) return null;
    if (value === null) {
      if (explicitObserver(a)) return a;
      return withObserver(a, a.dynamic === true ? null : fallback);
    }
    return withObserver(a, value);
  };
  return E.right({
    ...s,
    weights: one(s.weights, w, "memoryless_minmax"),
    input_activations: one(s.input_activations, i, "minmax"),
    output_activations: one(s.output_activations, o, "minmax"),
  });
};

// ----- resolution -----

const mixinConfig = (m: QuantizationMixinFields, path: string): E.Either<RecipeError, QuantizationConfig> => {
  if (m.scheme !== null && m.config_groups !== null) return E.left(invalidRecipe(path, "Please specify either `scheme` or `config_groups`"));
  const groups: Record<string, QuantizationScheme> = {};
  if (m.scheme !== null) {
    const entries = typeof m.scheme === "string" ? [[m.scheme, m.targets] as const] : Object.entries(m.scheme);
    for (const [idx, [name, targets]] of entries.entries()) {
      const s = presetScheme(name, targets, join(path, "scheme"));
      if (E.isLeft(s)) return s;
      const o = applyObserverOverrides(m, s.right, path);
      if (E.isLeft(o)) return o;
      groups[`group_${idx}`] = o.right;
    }
  } else if (m.config_groups === null || Object.keys(m.config_groups).length === 0) {
    const o = applyObserverOverrides(m, { targets: m.targets, weights: null, input_activations: null, output_activations: null, format: null }, path);
    if (E.isLeft(o)) return o;
    groups.group_0 = o.right;
  } else {
    for (const [k, s] of Object.entries(m.config_groups)) {
      const o = applyObserverOverrides(m, s, path);
      if (E.isLeft(o)) return o;
      groups[k] = o.right;
    }
  }
  return E.right({
    config_groups: groups,
    quant_method: "compressed-tensors",
    kv_cache_scheme: m.kv_cache_scheme,
    // CT QuantizationConfig's default format before compression
    format: "fakequant",
    quantization_status: "initialized",
    global_compression_ratio: null,
    ignore: m.ignore,
    moe_sparsity_config: null,
  });
};

const GPTQ_ACTORDER_STRATEGIES = ["group", "tensor_group", "channel", "tensor", "block"];

/** GPTQModifier.resolve_quantization_config: the modifier's actorder applied to the weight args. */
const gptqActorder = (m: GPTQModifierConfig, c: QuantizationConfig, path: string): E.Either<RecipeError, QuantizationConfig> => {
  const resolve = (existing: ActivationOrdering | null): E.Either<RecipeError, ActivationOrdering | null> => {
    if (m.actorderDefaulted) return E.right(existing ?? "static");
    if (existing === null || m.actorder === existing) return E.right(m.actorder);
    return E.left(
      invalidRecipe(
        join(path, "actorder"),
        `Cannot resolve activation ordering when both \`GPTQModifier.actorder\` and \`QuantizationScheme.actorder\` are provided and differ (${m.actorder}, ${existing}). Either unset \`GPTQModifier.actorder\` or remove \`actorder\` from config groups.`,
      ),
    );
  };
  const groups: Record<string, QuantizationScheme> = {};
  for (const [k, s] of Object.entries(c.config_groups)) {
    if (s.weights === null || !GPTQ_ACTORDER_STRATEGIES.includes(s.weights.strategy)) {
      groups[k] = s;
      continue;
    }
    const a = resolve(s.weights.actorder);
    if (E.isLeft(a)) return a;
    groups[k] = { ...s, weights: { ...s.weights, actorder: a.right } };
  }
  return E.right({ ...c, config_groups: groups });
};

/**
 * The compressed-tensors QuantizationConfig a QuantizationModifier / GPTQModifier implies, exactly as
 * llm-compressor 0.14 resolves it: `scheme` (preset name or {preset: targets}) expanded into group_0, group_1…
 * with the modifier's targets, or `config_groups` as given, or one empty group on `targets`; observer overrides
 * (`weight_observer`/`input_observer`/`output_observer` or `observer: {weights, input, output}`; unset static
 * args get memoryless_minmax for weights and minmax for activations, dynamic ones none); `ignore` and
 * `kv_cache_scheme` carried over; GPTQ's `actorder` applied to the weights.
 */
export const resolveQuantizationConfig = (m: QuantizationModifierConfig | GPTQModifierConfig, path: string = m.type): E.Either<RecipeError, QuantizationConfig> => {
  const c = mixinConfig(m, path);
  return m.type === "GPTQModifier" ? E.flatMap(c, (cfg) => gptqActorder(m, cfg, path)) : c;
};

/** LC QuantizationMixin.has_config: whether any quantization field was given. */
export const hasQuantizationConfig = (m: QuantizationMixinFields): boolean =>
  !(
    m.config_groups === null &&
    m.targets.length === 1 &&
    m.targets[0] === "Linear" &&
    m.ignore.length === 0 &&
    m.scheme === null &&
    m.kv_cache_scheme === null
  );

/** LC `_set_requires_calibration_data`: kv cache, static/"local" inputs, static outputs or imatrix weights need data. */
export const needsCalibrationData = (c: QuantizationConfig): boolean =>
  c.kv_cache_scheme !== null ||
  Object.values(c.config_groups).some(
    (s) =>
      (s.weights !== null && (s.weights.observer === "imatrix_mse" || s.weights.observer === "nvfp4_expanded_imatrix")) ||
      (s.input_activations !== null && (s.input_activations.dynamic === false || s.input_activations.dynamic === "local")) ||
      (s.output_activations !== null && s.output_activations.dynamic === false),
  );
