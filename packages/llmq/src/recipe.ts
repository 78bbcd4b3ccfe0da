import { GPTQModifier } from "@llmq/gptq";
import { KvCacheModifier } from "@llmq/kv-cache";
import { type Modifier, QuantizationModifier, combineModifiers } from "@llmq/observers";
import { AWQModifier, type AwqLoss, QuIPModifier, SmoothQuantModifier, SpinQuantModifier } from "@llmq/transforms";
import { type Recipe as LcRecipe, type RecipeModifier, encodeRecipeYaml, formatRecipeError, parseRecipe, recipeFromModifiers } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LlmqError, recipeError } from "./errors.js";
import type { ProgressSink } from "./progress.js";

// An llm-compressor recipe turned into modifier values, in recipe order (stages in order, modifiers of a stage in
// order), each built by the package that owns its math. What llmq cannot run yet is refused here, before anything
// is read; base fields that oneshot ignores in llm-compressor too (start/end/update) are accepted with a warning.

// ----- model -----

/** What the pipeline runs: the recipe's modifiers as values, its saved YAML, and warnings about ignored fields. */
export interface Recipe {
  readonly modifiers: ReadonlyArray<Modifier>;
  /** The decoded recipe (stages, modifier configs with LC defaults). */
  readonly source: LcRecipe;
  /** A label for reports: the preset name(s), or "custom" for config_groups. */
  readonly schemeName: string;
  /** The recipe as llm-compressor YAML (saved as recipe.yaml beside the checkpoint). */
  readonly yaml: string;
  readonly warnings: ReadonlyArray<string>;
}

export interface SchemeRecipeOptions {
  readonly scheme: string;
  readonly method: "rtn" | "gptq";
  readonly targets?: ReadonlyArray<string> | undefined;
  readonly ignore?: ReadonlyArray<string> | undefined;
}

/** Modifiers llmq can run today; the others parse (their configs are validated) but are refused with this list. */
export const RUNNABLE_MODIFIERS = ["QuantizationModifier", "GPTQModifier", "SmoothQuantModifier", "AWQModifier", "SpinQuantModifier", "QuIPModifier"] as const;

/** What the modifiers take besides their recipe entry: progress hooks (the CLI's progress bar) and AWQ's loss. */
export interface ModifierOptions {
  readonly onGridPoint?: (mapping: string, done: number, total: number) => void;
  /** AutoAWQ's grid loss for transformers' AwqConfig; recipes keep llm-compressor's. */
  readonly awqLoss?: AwqLoss;
}

/** The progress bar's line for one AWQ grid point. */
export const awqProgress =
  (progress: ProgressSink) =>
  (mapping: string, done: number, total: number): void =>
    progress({ kind: "detail", stage: "quantize", label: `AWQ ${mapping} · grid ${done}/${total}` });

// ----- constructors -----

/**
 * QuantizationMixin's modifiers: the weight / activation part, and with a kv_cache_scheme its kv part from
 * @llmq/kv-cache (a kv-only QuantizationModifier, which LC accepts, is just the kv part).
 */
const mixinModifiers = (m: Extract<RecipeModifier, { type: "QuantizationModifier" | "GPTQModifier" }>): ReadonlyArray<Modifier> => {
  const kv = m.kv_cache_scheme;
  const weights = { ...m, kv_cache_scheme: null };
  const main = m.type === "GPTQModifier" ? GPTQModifier(weights as typeof m) : QuantizationModifier(weights as Extract<RecipeModifier, { type: "QuantizationModifier" }>);
  if (kv === null) return [main as Modifier];
  const kvOnly = m.type === "QuantizationModifier" && m.scheme === null && m.config_groups === null;
  return [combineModifiers(m.type, [...(kvOnly ? [] : [main as Modifier]), KvCacheModifier(kv, m.type) as Modifier]) as Modifier];
};

/** The modifier values of one recipe entry (the registry of runnable modifiers). */
const modifierOf = (hooks: ModifierOptions) => (m: RecipeModifier): E.Either<LlmqError, ReadonlyArray<Modifier>> => {
  switch (m.type) {
    case "QuantizationModifier":
    case "GPTQModifier":
      return E.right(mixinModifiers(m));
    case "SmoothQuantModifier":
      return E.right([SmoothQuantModifier(m) as Modifier]);
    case "AWQModifier":
      return E.right([AWQModifier(m, { ...(hooks.onGridPoint ? { onGridPoint: hooks.onGridPoint } : {}), ...(hooks.awqLoss ? { loss: hooks.awqLoss } : {}) }) as Modifier]);
    case "SpinQuantModifier":
      return E.right([SpinQuantModifier(m) as Modifier]);
    case "QuIPModifier":
      return E.right([QuIPModifier(m) as Modifier]);
    default: {
      const u = m as RecipeModifier;
      return E.left(
        recipeError(`${u.stage}_stage: ${u.type} is not supported by llmq yet (runnable modifiers: ${RUNNABLE_MODIFIERS.join(", ")}); nothing was read or written`),
      );
    }
  }
};

/**
 * LC's oneshot passes start = −1 to the session; a PTQ modifier acts on the calibration events whatever its
 * start/end/update (they gate on_start/on_update in training only), so they are ignored here as there. start ≤ 0
 * (from the first step) is what oneshot does anyway, so only a later start, an end or an update is worth a warning.
 */
const baseFieldWarnings = (m: RecipeModifier): ReadonlyArray<string> => [
  ...(["start", "end", "update"] as const)
    .filter((k) => m[k] !== null && m[k] !== -1 && !(k === "start" && m[k]! <= 0))
    .map((k) => `${m.type}.${k} = ${m[k]} has no effect in oneshot (llm-compressor's oneshot ignores it too; it schedules training)`),
  // LC groups modules per accelerator batch; the bits are the same, and llmq quantizes module by module on the CPU.
  ...(m.type === "GPTQModifier" && m.batched_quantization !== null && m.batched_quantization !== "auto"
    ? [`GPTQModifier.batched_quantization = ${m.batched_quantization} has no effect in llmq (it batches modules on a GPU in llm-compressor; results do not depend on it)`]
    : []),
  ...(m.type === "SmoothQuantModifier" && m.num_calibration_steps !== null
    ? [`SmoothQuantModifier.num_calibration_steps = ${m.num_calibration_steps} has no effect (llm-compressor 0.14 ignores it too; every calibration sample is used)`]
    : []),
  ...(m.type === "AWQModifier" && m.offload_device !== null
    ? [`AWQModifier.offload_device = ${m.offload_device} has no effect in llmq (the cached activations stay in memory on the CPU)`]
    : []),
];

const schemeLabel = (mods: ReadonlyArray<RecipeModifier>): string => {
  const names = mods.flatMap((m) =>
    m.type === "QuantizationModifier" || m.type === "GPTQModifier"
      ? [typeof m.scheme === "string" ? m.scheme.toUpperCase() : m.scheme !== null ? Object.keys(m.scheme).join("+") : "custom"]
      : [],
  );
  return [...new Set(names)].join("+") || "custom";
};

/** The runnable Recipe of a decoded llm-compressor recipe. */
export const recipeFromLc = (r: LcRecipe, hooks: ModifierOptions = {}): E.Either<LlmqError, Recipe> =>
  pipe(
    r.modifiers,
    E.traverseArray(modifierOf(hooks)),
    E.map((modifiers) => ({
      modifiers: modifiers.flat(),
      source: r,
      schemeName: schemeLabel(r.modifiers),
      yaml: encodeRecipeYaml(r),
      warnings: r.modifiers.flatMap(baseFieldWarnings),
    })),
  );

/** An llm-compressor recipe YAML; `--targets`/`--ignore` from the command line replace the quantization modifiers' own. */
export const recipeFromYaml = (
  text: string,
  overrides: { readonly targets?: ReadonlyArray<string> | undefined; readonly ignore?: ReadonlyArray<string> | undefined } = {},
  hooks: ModifierOptions = {},
): E.Either<LlmqError, Recipe> =>
  pipe(
    parseRecipe(text),
    E.mapLeft((e) => recipeError(formatRecipeError(e))),
    E.map(
      (r): LcRecipe => ({
        ...r,
        modifiers: r.modifiers.map((m) =>
          m.type === "QuantizationModifier" || m.type === "GPTQModifier"
            ? { ...m, ...(overrides.targets?.length ? { targets: overrides.targets } : {}), ...(overrides.ignore?.length ? { ignore: overrides.ignore } : {}) }
            : m,
        ),
      }),
    ),
    E.chain((r) => recipeFromLc(r, hooks)),
    E.map((r) => ({ ...r, warnings: [...targetsWithoutEffect(r.source, overrides.targets), ...r.warnings] })),
  );

/** `--targets` replaces a modifier's `targets`, which only a `scheme` uses: config groups name their own targets. */
const targetsWithoutEffect = (r: LcRecipe, targets: ReadonlyArray<string> | undefined): ReadonlyArray<string> =>
  targets?.length
    ? r.modifiers
        .filter((m) => (m.type === "QuantizationModifier" || m.type === "GPTQModifier") && m.config_groups !== null && m.scheme === null)
        .map((m) => `--targets has no effect on ${m.type} with config_groups (each group names its own targets); edit the groups in the recipe instead`)
    : [];

/** The recipe `llmq quantize --scheme X --method m` means: `QuantizationModifier(scheme=X, targets, ignore)` or GPTQ. */
export const recipeFromScheme = (o: SchemeRecipeOptions): E.Either<LlmqError, Recipe> =>
  pipe(
    recipeFromModifiers([
      {
        type: o.method === "gptq" ? "GPTQModifier" : "QuantizationModifier",
        scheme: o.scheme,
        targets: o.targets && o.targets.length > 0 ? [...o.targets] : ["Linear"],
        ignore: o.ignore ? [...o.ignore] : ["lm_head"],
      },
    ]),
    E.mapLeft((e) => recipeError(formatRecipeError(e))),
    E.chain((r) => recipeFromLc(r)),
  );
