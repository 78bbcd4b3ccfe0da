import * as E from "fp-ts/lib/Either.js";
import { parseDocument } from "yaml";
import { type RecipeError, invalidRecipe, recipeSyntax } from "./recipe-errors.js";
import { type ModifierConfig, decodeModifier } from "./recipe-modifiers.js";
import { hasQuantizationConfig, needsCalibrationData, resolveQuantizationConfig } from "./recipe-resolve.js";
import { isPlainObject, join } from "./wire.js";

// ----- model -----

/** A modifier of a recipe, with the stage it was declared in (LC keeps only the last stage name; llmq keeps each). */
export type RecipeModifier = ModifierConfig & { readonly stage: string };

/**
 * An llm-compressor recipe: `<name>_stage:` → `<group>_modifiers:` → `ModifierName: {args}`, in declaration order.
 * `stage` is the name LC serializes under (the last stage parsed, "default" for modifier lists).
 */
export interface Recipe {
  readonly args: Readonly<Record<string, unknown>>;
  readonly stage: string;
  readonly modifiers: ReadonlyArray<RecipeModifier>;
}

/** `target_stage` of LC's Recipe.create_instance (oneshot `stage=`): only top-level keys starting with it are read. */
export interface RecipeOptions {
  readonly targetStage?: string;
}

// ----- constructors -----

const QUANTIZATION_MIXINS = ["QuantizationModifier", "GPTQModifier"];

/** Per-modifier checks LC runs while constructing the modifier (model validators that resolve the config). */
const validateModifier = (m: ModifierConfig, path: string): E.Either<RecipeError, ModifierConfig> => {
  if (m.type !== "QuantizationModifier" && m.type !== "GPTQModifier") return E.right(m);
  const c = resolveQuantizationConfig(m, path);
  if (E.isLeft(c)) return c;
  return E.right(m.requires_calibration_data || !needsCalibrationData(c.right) ? m : { ...m, requires_calibration_data: true });
};

/** Recipe-level rule (LC Recipe.validate_model_after): AWQ is a transform and needs a later quantization modifier. */
const validateOrder = (mods: ReadonlyArray<RecipeModifier>): E.Either<RecipeError, ReadonlyArray<RecipeModifier>> => {
  for (const [i, m] of mods.entries())
    if (m.type === "AWQModifier" && !mods.slice(i + 1).some((x) => QUANTIZATION_MIXINS.includes(x.type)))
      return E.left(
        invalidRecipe(
          `${m.stage}_stage`,
          `Recipe includes AWQModifier with no subsequent quantization modifier: [${mods.map((x) => x.type).join(", ")}]. AWQ must be run with a subsequent quantization modifier (QuantizationModifier or GPTQModifier)`,
        ),
      );
  return E.right(mods);
};

/**
 * Decodes a recipe object (parsed YAML/JSON) like llm-compressor 0.14's `Recipe.from_dict`: top-level keys ending
 * in `_stage` hold groups ending in `_modifiers`, which map modifier class names to arguments; other keys (e.g.
 * `run_type`, stage-level metadata) are ignored, `args` is kept. A modifier's `group` defaults to its group key
 * without `_modifiers`. Unlike LC, a recipe in which no modifier is found is an error (LC silently runs nothing),
 * and an explicit `group:` argument is accepted (LC raises a duplicate-keyword TypeError).
 */
export const decodeRecipe = (u0: unknown, options: RecipeOptions = {}): E.Either<RecipeError, Recipe> => {
  if (!isPlainObject(u0)) return E.left(recipeSyntax(`a recipe must be a mapping of <name>_stage keys, got ${Array.isArray(u0) ? "a list" : typeof u0}`));
  const target = options.targetStage;
  // LC filter_dict: keep only top-level keys that start with the target stage
  const u = target === undefined || target === "" ? u0 : Object.fromEntries(Object.entries(u0).filter(([k]) => k.startsWith(target)));
  const args = u.args ?? {};
  if (!isPlainObject(args)) return E.left({ _tag: "InvalidField", path: "args", expected: "a mapping", got: JSON.stringify(args) });
  const mods: RecipeModifier[] = [];
  let stage = "default";
  for (const [stageKey, stageVal] of Object.entries(u)) {
    if (!stageKey.endsWith("_stage") || !isPlainObject(stageVal)) continue;
    stage = stageKey.replaceAll("_stage", "");
    for (const [groupKey, groupVal] of Object.entries(stageVal)) {
      if (!groupKey.endsWith("_modifiers") || !isPlainObject(groupVal)) continue;
      const inferred = groupKey.replaceAll("_modifiers", "");
      for (const [name, modArgs] of Object.entries(groupVal)) {
        const path = join(join(stageKey, groupKey), name);
        const m = E.flatMap(decodeModifier(name, modArgs, path), (x) => validateModifier(x, path));
        if (E.isLeft(m)) return m;
        mods.push({ ...m.right, group: m.right.group ?? inferred, stage });
      }
    }
  }
  if (mods.length === 0)
    return E.left(recipeSyntax("no modifiers found: expected <name>_stage: → <group>_modifiers: → ModifierName: {args}, e.g. quant_stage.quant_modifiers.GPTQModifier"));
  return E.map((m: ReadonlyArray<RecipeModifier>) => ({ args, stage, modifiers: m }))(validateOrder(mods));
};

/**
 * Parses recipe text: YAML (a superset of JSON, so JSON recipes parse too), then {@link decodeRecipe}.
 */
export const parseRecipe = (text: string, options: RecipeOptions = {}): E.Either<RecipeError, Recipe> => {
  let obj: unknown;
  try {
    // The yaml library reports unresolved tags (`!foo`) as warnings on stderr; a recipe with one is refused instead.
    const doc = parseDocument(text, { logLevel: "silent" });
    const problem = doc.errors[0] ?? doc.warnings[0];
    if (problem !== undefined) return E.left(recipeSyntax(`could not parse recipe YAML/JSON: ${problem.message}`));
    obj = doc.toJS();
  } catch (err) {
    return E.left(recipeSyntax(`could not parse recipe YAML/JSON: ${(err as Error).message}`));
  }
  return decodeRecipe(obj, options);
};

// LC _parse_recipe_from_md: the first block between --- (or +++) delimiters
const FRONT_MATTER = /^\s*(?:---|\+\+\+)([\s\S]*?)(?:---|\+\+\+)/m;

/** A recipe card (markdown with YAML front matter between `---` lines), as LC reads `*.md` recipe files. */
export const parseRecipeMarkdown = (text: string, options: RecipeOptions = {}): E.Either<RecipeError, Recipe> => {
  const m = FRONT_MATTER.exec(text);
  return m === null ? E.left(recipeSyntax("could not extract YAML front matter from the recipe card")) : parseRecipe(m[1]!, options);
};

/**
 * A recipe from modifier objects `{ ModifierName: args }` or `{ type, ...args }` values, as LC's
 * `Recipe.from_modifiers` does for Modifier instances: one stage ("default" unless named), groups from the
 * modifiers' `group` (else the stage).
 */
export const recipeFromModifiers = (
  modifiers: ReadonlyArray<{ readonly type: string } & Readonly<Record<string, unknown>>>,
  stage = "default",
): E.Either<RecipeError, Recipe> => {
  const mods: RecipeModifier[] = [];
  for (const [i, { type, ...rest }] of modifiers.entries()) {
    const path = `modifiers[${i}].${type}`;
    const m = E.flatMap(decodeModifier(type, rest, path), (x) => validateModifier(x, path));
    if (E.isLeft(m)) return m;
    mods.push({ ...m.right, stage });
  }
  return E.map((m: ReadonlyArray<RecipeModifier>) => ({ args: {}, stage, modifiers: m }))(validateOrder(mods));
};

/** The QuantizationModifier / GPTQModifier entries, which carry quantization configs. */
export const quantizationModifiers = (r: Recipe): ReadonlyArray<Extract<RecipeModifier, { type: "QuantizationModifier" | "GPTQModifier" }>> =>
  r.modifiers.filter((m): m is Extract<RecipeModifier, { type: "QuantizationModifier" | "GPTQModifier" }> => QUANTIZATION_MIXINS.includes(m.type));

/** LC QuantizationModifier.on_initialize: a QuantizationModifier without any quantization field is an error. */
export const checkHasQuantizationConfig = (m: Extract<RecipeModifier, { type: "QuantizationModifier" | "GPTQModifier" }>): E.Either<RecipeError, void> =>
  m.type === "QuantizationModifier" && !hasQuantizationConfig(m)
    ? E.left(invalidRecipe(`${m.stage}_stage.${m.group ?? m.stage}_modifiers.${m.type}`, "QuantizationModifier requires that quantization fields be specified"))
    : E.right(undefined);
