import { type MsQuantConfig, type MsQuantType, formatRecipeError, msPerGroup, msQuantType, recipeFromModifiers } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LlmqError, recipeError } from "./errors.js";
import { type Recipe, recipeFromLc } from "./recipe.js";

// msModelSlim's QuantConfig mapped onto llmq's modifiers (no second pipeline): the weight method picks
// QuantizationModifier (MinMax) or GPTQModifier (GPTQ, dampening_frac = percdamp), act_method picks the static input
// observer (1 static_minmax, 2 histogram, 3 minmax_or_histogram), do_smooth puts a SmoothQuantModifier (α = 0.5,
// msModelSlim's default_smooth_alpha) in front, disable_names / disable_last_linear become `ignore`. Activations are
// asymmetric per-tensor int8 (msModelSlim's a_sym False), weights signed int of w_bit bits. Whatever of the config
// llmq does not run is refused here with the parameter's name, before anything is read.

/** The msModelSlim types llmq quantizes and writes. */
export const MS_RUNNABLE_TYPES: ReadonlyArray<MsQuantType> = ["W8A8", "W8A16", "W4A16", "W8A8_DYNAMIC"];

const OBSERVER_OF_ACT_METHOD: Readonly<Record<number, string>> = { 1: "static_minmax", 2: "histogram", 3: "minmax_or_histogram" };

/** The first parameter llmq does not run, as a message naming it; null when everything has its effect. */
export const msUnsupported = (c: MsQuantConfig): string | null => {
  const type = msQuantType(c);
  const checks: ReadonlyArray<readonly [boolean, string]> = [
    [c.co_sparse || type === "W8A8S", "co_sparse / sparse_quant (W8A8S sparse quantization) is not implemented in llmq yet"],
    [c.is_lowbit, "is_lowbit (msModelSlim's lowbit algorithm) is not implemented in llmq yet"],
    [c.nonuniform, "nonuniform (power) weight quantization is not implemented in llmq yet"],
    [
      c.use_sigma,
      "use_sigma / sigma_factor select weight outliers inside msModelSlim's lowbit / sparse quantizer (quant_one_weight_by_outliers_low_bit, a compiled .so whose selection rule is not published); llmq does not run that path, so it cannot honour them",
    ],
    [c.w_method === "HQQ" && c.a_bit !== 16, "w_method HQQ is weight-only: set a_bit 16 (W4A16 / W8A16)"],
    [c.w_method === "HQQ" && c.do_smooth, "do_smooth with w_method HQQ is not implemented in llmq yet"],
    [c.w_method === "NF", "w_method NF (NF4) is not implemented in llmq yet"],
    [type !== null && !MS_RUNNABLE_TYPES.includes(type), `model_quant_type ${type} is not written by llmq yet (runnable: ${MS_RUNNABLE_TYPES.join(", ")})`],
    [c.pr !== 1, `pr ${c.pr}: QDrop calibration (activations fake-quantized with probability pr) is not implemented in llmq; use pr 1.0`],
    [c.simulate_tp !== null, "simulate_tp is not implemented in llmq yet"],
    [c.pdmix, "pdmix (W8A8_MIX) is not implemented in llmq yet"],
    [c.dev_type !== "cpu", `dev_type ${c.dev_type}: llmq quantizes on the CPU; use dev_type cpu`],
    [
      c.save_type.includes("numpy") && !c.save_type.includes("ascendV1") && c.explicit.has("save_type"),
      `save_type ${JSON.stringify(c.save_type)}: numpy is not written by llmq (msModelSlim's .npy files are np.save'd dicts of pickled torch.Tensor objects, a torch serialization llmq does not reproduce); use safe_tensor or ascendV1`,
    ],
  ];
  const hit = checks.find(([bad]) => bad);
  return hit ? hit[1] : null;
};

const weightArgs = (c: MsQuantConfig): Record<string, unknown> => {
  const strategy = msPerGroup(c) ? { strategy: "group", group_size: c.group_size } : { strategy: c.mm_tensor ? "tensor" : "channel" };
  return { num_bits: c.w_bit, type: "int", symmetric: c.w_sym, ...strategy };
};

const inputArgs = (c: MsQuantConfig): Record<string, unknown> | null =>
  c.a_bit === 16
    ? null
    : c.is_dynamic
      ? { num_bits: c.a_bit, type: "int", symmetric: false, strategy: "token", dynamic: true }
      : { num_bits: c.a_bit, type: "int", symmetric: false, strategy: "tensor", dynamic: false, observer: OBSERVER_OF_ACT_METHOD[c.act_method] };

/** The modules kept in float: disable_names as given, and lm_head when disable_last_linear. */
export const msIgnore = (c: MsQuantConfig): ReadonlyArray<string> => [...new Set([...c.disable_names, ...(c.disable_last_linear ? ["lm_head"] : [])])];

/** The llm-compressor modifiers (as recipe entries) one QuantConfig means. */
export const msModifierEntries = (c: MsQuantConfig): ReadonlyArray<{ readonly type: string } & Readonly<Record<string, unknown>>> => {
  const input = inputArgs(c);
  const group = { targets: ["Linear"], weights: weightArgs(c), ...(input !== null ? { input_activations: input } : {}) };
  const quant = {
    type: c.w_method === "GPTQ" ? "GPTQModifier" : "QuantizationModifier",
    config_groups: { group_0: group },
    ignore: [...msIgnore(c)],
    ...(c.w_method === "GPTQ" ? { dampening_frac: c.percdamp, actorder: null } : {}),
  };
  return [...(c.do_smooth ? [{ type: "SmoothQuantModifier", smoothing_strength: 0.5 }] : []), quant];
};

/** The Recipe llmq runs for a QuantConfig; a parameter llmq cannot honour is a RecipeError naming it. */
export const msModelSlimRecipe = (c: MsQuantConfig): E.Either<LlmqError, Recipe> => {
  const bad =
    msUnsupported(c) ??
    (c.w_method === "HQQ" ? "w_method HQQ runs as llmq's HqqModifier, which no llm-compressor recipe names (use quantizeWithMsModelSlim)" : null) ??
    (c.disable_level !== "L0" ? `disable_level ${c.disable_level} picks the float linears from calibration statistics, which a recipe cannot name (use quantizeWithMsModelSlim / llmq quantize --msmodelslim-config)` : null);
  if (bad !== null) return E.left(recipeError(`msModelSlim QuantConfig: ${bad}; nothing was read or written`));
  return pipe(
    recipeFromModifiers(msModifierEntries(c)),
    E.mapLeft((e) => recipeError(`msModelSlim QuantConfig mapped to an invalid recipe: ${formatRecipeError(e)}`)),
    E.chain((r) => recipeFromLc(r)),
    E.map((r) => ({ ...r, schemeName: `msModelSlim ${msQuantType(c)}` })),
  );
};
