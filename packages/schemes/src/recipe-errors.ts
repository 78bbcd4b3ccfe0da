import type { SchemeError } from "./errors.js";
import { formatSchemeError } from "./errors.js";

// ----- model -----

/**
 * Everything recipe parsing can reject. Field-level problems reuse {@link SchemeError} (InvalidField, UnknownField,
 * MissingField… with the dotted path, e.g. `quant_stage.quant_modifiers.GPTQModifier.block_size`).
 */
export type RecipeError =
  | SchemeError
  | { readonly _tag: "RecipeSyntax"; readonly detail: string }
  /** Not an llm-compressor 0.14 modifier at all. */
  | { readonly _tag: "UnknownModifier"; readonly path: string; readonly name: string; readonly known: ReadonlyArray<string> }
  /** An llm-compressor modifier llmq does not implement (pruning, AutoRound, …). */
  | { readonly _tag: "UnsupportedModifier"; readonly path: string; readonly name: string; readonly supported: ReadonlyArray<string> }
  /** A recipe- or modifier-level rule (LC validators): scheme XOR config_groups, AWQ needs a quantization modifier, … */
  | { readonly _tag: "InvalidRecipe"; readonly path: string; readonly message: string };

// ----- constructors -----

export const recipeSyntax = (detail: string): RecipeError => ({ _tag: "RecipeSyntax", detail });
export const unknownModifier = (path: string, name: string, known: ReadonlyArray<string>): RecipeError => ({
  _tag: "UnknownModifier",
  path,
  name,
  known,
});
export const unsupportedModifier = (path: string, name: string, supported: ReadonlyArray<string>): RecipeError => ({
  _tag: "UnsupportedModifier",
  path,
  name,
  supported,
});
export const invalidRecipe = (path: string, message: string): RecipeError => ({ _tag: "InvalidRecipe", path, message });

// ----- destructors -----

/** One readable sentence for a recipe error. */
export const formatRecipeError = (e: RecipeError): string => {
  switch (e._tag) {
    case "RecipeSyntax":
      return `recipe: ${e.detail}`;
    case "UnknownModifier":
      return `${e.path}: no modifier of type ${JSON.stringify(e.name)}; known modifiers: ${e.known.join(", ")}`;
    case "UnsupportedModifier":
      return `${e.path}: ${e.name} is an llm-compressor modifier that llmq does not implement; supported: ${e.supported.join(", ")}`;
    case "InvalidRecipe":
      return `${e.path}: ${e.message}`;
    default:
      return formatSchemeError(e);
  }
};
