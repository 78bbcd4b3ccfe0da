import {
  type Recipe as LcRecipe,
  type QuantizationConfig,
  checkHasQuantizationConfig,
  encodeRecipeYaml,
  formatRecipeError,
  parseRecipe,
  quantizationModifiers,
  recipeFromModifiers,
  resolveQuantizationConfig,
} from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LlmqError, recipeError } from "./errors.js";

// ----- model -----

/** GPTQModifier's knobs that act outside the quantization args. */
export interface GptqOptions {
  readonly blockSize: number;
  readonly dampeningFrac: number;
}

/**
 * What the pipeline runs: an llm-compressor recipe reduced to its quantization modifier (QuantizationModifier = RTN
 * weights, or GPTQModifier) and the compressed-tensors config it implies.
 */
export interface Recipe {
  readonly modifierName: "QuantizationModifier" | "GPTQModifier";
  readonly method: "rtn" | "gptq";
  readonly config: QuantizationConfig;
  readonly gptq: GptqOptions;
  /** A label for reports: the preset name, or "custom" for config_groups. */
  readonly schemeName: string;
  /** The recipe as llm-compressor YAML (saved as recipe.yaml beside the checkpoint). */
  readonly yaml: string;
}

export interface SchemeRecipeOptions {
  readonly scheme: string;
  readonly method: "rtn" | "gptq";
  readonly targets?: ReadonlyArray<string> | undefined;
  readonly ignore?: ReadonlyArray<string> | undefined;
}

/** Modifiers llmq can run today; the others parse (their configs are validated) but are refused with this list. */
export const RUNNABLE_MODIFIERS = ["QuantizationModifier", "GPTQModifier"] as const;

// ----- constructors -----

const fromLcRecipe = (r: LcRecipe): E.Either<LlmqError, Recipe> => {
  const other = r.modifiers.filter((m) => !(RUNNABLE_MODIFIERS as ReadonlyArray<string>).includes(m.type));
  if (other.length > 0)
    return E.left(
      recipeError(`${other.map((m) => m.type).join(", ")} ${other.length > 1 ? "are" : "is"} not supported by llmq yet (runnable modifiers: ${RUNNABLE_MODIFIERS.join(", ")})`),
    );
  const qm = quantizationModifiers(r);
  if (qm.length !== 1) return E.left(recipeError(`the recipe must hold exactly one QuantizationModifier or GPTQModifier, found ${qm.length}`));
  const m = qm[0]!;
  return pipe(
    checkHasQuantizationConfig(m),
    E.chain(() => resolveQuantizationConfig(m)),
    E.mapLeft((e) => recipeError(formatRecipeError(e))),
    E.map(
      (config): Recipe => ({
        modifierName: m.type,
        method: m.type === "GPTQModifier" ? "gptq" : "rtn",
        config,
        gptq: m.type === "GPTQModifier" ? { blockSize: m.block_size, dampeningFrac: m.dampening_frac ?? 0.01 } : { blockSize: 128, dampeningFrac: 0.01 },
        schemeName: typeof m.scheme === "string" ? m.scheme.toUpperCase() : m.scheme !== null ? Object.keys(m.scheme).join("+") : "custom",
        yaml: encodeRecipeYaml(r),
      }),
    ),
  );
};

/** An llm-compressor recipe YAML; `--targets`/`--ignore` from the command line replace the modifier's own. */
export const recipeFromYaml = (
  text: string,
  overrides: { readonly targets?: ReadonlyArray<string> | undefined; readonly ignore?: ReadonlyArray<string> | undefined } = {},
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
    E.chain(fromLcRecipe),
  );

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
    E.chain(fromLcRecipe),
  );
