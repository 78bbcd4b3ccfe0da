import { msQuantConfig, parseMsQuantConfig } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { msModelSlimRecipe } from "./ms-model-slim-recipe.js";

const cfg = (kwargs: Record<string, unknown>) => {
  const c = msQuantConfig(kwargs);
  if (E.isLeft(c)) throw new Error(JSON.stringify(c.left));
  return c.right;
};
const recipe = (kwargs: Record<string, unknown>) => {
  const r = msModelSlimRecipe(cfg(kwargs));
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};
const refusal = (kwargs: Record<string, unknown>) => {
  const r = msModelSlimRecipe(cfg(kwargs));
  return E.isLeft(r) && r.left._tag === "RecipeError" ? r.left.detail : "accepted";
};

describe("msModelSlim QuantConfig → llmq modifiers", () => {
  it("W8A8 act_method 2: QuantizationModifier, symmetric int8 per-channel weights, asymmetric static per-tensor int8 inputs by the histogram observer", () => {
    const r = recipe({ act_method: 2, mm_tensor: false, disable_names: ["model.layers.0.mlp.down_proj"] });
    const m = r.source.modifiers[0]!;
    expect(m.type).toBe("QuantizationModifier");
    const g = (m as { config_groups: Record<string, { weights: object; input_activations: object }> }).config_groups.group_0!;
    expect(g.weights).toMatchObject({ num_bits: 8, type: "int", symmetric: true, strategy: "channel" });
    expect(g.input_activations).toMatchObject({ num_bits: 8, symmetric: false, strategy: "tensor", dynamic: false, observer: "histogram" });
    expect((m as { readonly ignore: ReadonlyArray<string> }).ignore).toEqual(["model.layers.0.mlp.down_proj", "lm_head"]);
    expect(r.schemeName).toBe("msModelSlim W8A8");
    expect(r.modifiers).toHaveLength(1);
  });
  it("act_method 1 and 3 pick static_minmax and minmax_or_histogram; is_dynamic per-token dynamic inputs", () => {
    const obs = (k: Record<string, unknown>) => JSON.stringify(recipe(k).source.modifiers[0]);
    expect(obs({})).toContain('"observer":"static_minmax"');
    expect(obs({ act_method: 3 })).toContain('"observer":"minmax_or_histogram"');
    expect(obs({ is_dynamic: true })).toMatch(/"strategy":"token".*"dynamic":true|"dynamic":true.*"strategy":"token"/);
  });
  it("W4A16 GPTQ: GPTQModifier with dampening_frac = percdamp, weight-only, per-channel asymmetric when w_sym is false", () => {
    const m = recipe({ w_bit: 4, a_bit: 16, w_method: "GPTQ", percdamp: 0.05, w_sym: false, mm_tensor: false }).source.modifiers[0]!;
    expect(m).toMatchObject({ type: "GPTQModifier", dampening_frac: 0.05 });
    expect(JSON.stringify(m)).not.toContain("input_activations\":{");
    expect(JSON.stringify(m)).toContain('"symmetric":false');
  });
  it("do_smooth puts SmoothQuant (α 0.5) in front", () => {
    const r = recipe({ do_smooth: true });
    expect(r.source.modifiers.map((m) => m.type)).toEqual(["SmoothQuantModifier", "QuantizationModifier"]);
    expect(r.source.modifiers[0]).toMatchObject({ smoothing_strength: 0.5 });
  });
  it("disable_last_linear false quantizes lm_head too", () => {
    expect((recipe({ disable_last_linear: false }).source.modifiers[0] as { readonly ignore: ReadonlyArray<string> }).ignore).toEqual([]);
  });
  const refused: ReadonlyArray<readonly [string, Record<string, unknown>, string]> = [
    ["W8A8S", { co_sparse: true }, "co_sparse"],
    ["QDrop", { pr: 0.5 }, "pr 0.5"],
    ["NF4", { w_bit: 4, a_bit: 16, w_method: "NF" }, "w_method NF"],
    ["npu", { dev_type: "npu" }, "dev_type npu"],
    ["lowbit", { w_bit: 4, a_bit: 16, is_lowbit: true }, "is_lowbit"],
    ["use_sigma", { use_sigma: true, sigma_factor: 3.5 }, "use_sigma / sigma_factor select weight outliers inside msModelSlim's lowbit / sparse quantizer"],
  ];
  for (const [name, k, text] of refused) it(`refuses ${name} naming the parameter`, () => expect(refusal(k)).toContain(text));
  it("refuses simulate_tp, disable_level and an explicit numpy save_type from a config file", () => {
    const msg = (text: string) => {
      const c = parseMsQuantConfig(text);
      if (E.isLeft(c)) throw new Error(JSON.stringify(c.left));
      const r = msModelSlimRecipe(c.right);
      return E.isLeft(r) && r.left._tag === "RecipeError" ? r.left.detail : "accepted";
    };
    expect(msg('{"kv_quant": {}}')).toBe("accepted");
    expect(msg('{"a_bit": 16, "simulate_tp": {"tp_size": 2}}')).toContain("simulate_tp");
    expect(msg('{"disable_level": "L2"}')).toContain("disable_level L2");
    expect(msg('{"save_type": ["numpy"]}')).toContain("save_type");
    expect(msg("{}")).toBe("accepted");
  });
});
