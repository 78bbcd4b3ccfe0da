import { readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { decodeQuantizationConfig } from "./decode-quantization-config.js";
import { decodeQuantizationScheme } from "./decode-quantization-scheme.js";
import { type Recipe, checkHasQuantizationConfig, parseRecipe, parseRecipeMarkdown, quantizationModifiers, recipeFromModifiers } from "./recipe.js";
import { formatRecipeError } from "./recipe-errors.js";
import { resolveQuantizationConfig } from "./recipe-resolve.js";
import { encodeRecipe, encodeRecipeYaml } from "./recipe-yaml.js";

// Expected values from llm-compressor 0.14's own recipe parser: tools/gen_recipe_fixtures.py
interface LcModifier {
  readonly type: string;
  readonly group: string | null;
  readonly index: number | null;
  readonly start: number | null;
  readonly end: number | null;
  readonly update: number | null;
  readonly fields: Record<string, unknown>;
  readonly resolved_config?: Record<string, unknown>;
}
interface Expected {
  readonly valid: Record<string, { stage: string; modifiers: LcModifier[]; recipe_yaml: string }>;
  readonly invalid: Record<string, { error: string | null; message?: string }>;
}
const dir = new URL("../fixtures/recipes/", import.meta.url);
const expected: Expected = JSON.parse(readFileSync(new URL("expected.json", dir), "utf8"));
const read = (name: string): string => readFileSync(new URL(name, dir), "utf8");

const ok = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

/** fields_set is bookkeeping of how a value was written, not part of the value. */
const strip = (v: unknown): unknown => {
  if (Array.isArray(v)) return v.map(strip);
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).filter(([k]) => k !== "fields_set").map(([k, x]) => [k, strip(x)]));
  return v;
};

// LC mutates config_groups in place when it resolves observers, so its dumped `observer` reflects resolution (checked
// through resolved_config instead).
const withoutObserver = (g: Record<string, unknown>): Record<string, unknown> =>
  Object.fromEntries(
    Object.entries(g).map(([k, s]) => [
      k,
      Object.fromEntries(
        Object.entries(s as Record<string, unknown>).map(([f, a]) =>
          a !== null && typeof a === "object" && !Array.isArray(a) ? [f, Object.fromEntries(Object.entries(a).filter(([x]) => x !== "observer"))] : [f, a],
        ),
      ),
    ]),
  );

const compareField = (name: string, ours: unknown, lc: unknown) => {
  if (name === "config_groups" && lc !== null) {
    const dec = Object.fromEntries(Object.entries(lc as Record<string, unknown>).map(([k, s]) => [k, ok(decodeQuantizationScheme(s))]));
    expect(withoutObserver(strip(ours) as Record<string, unknown>), name).toEqual(withoutObserver(strip(dec) as Record<string, unknown>));
  } else if (name === "kv_cache_scheme" && lc !== null) expect(strip(ours), name).toEqual(strip(ok(decodeQuantizationArgs(lc))));
  else if (name === "offload_device" && lc === "not_provided") expect(ours, name).toBeNull();
  else expect(ours, name).toEqual(lc);
};

describe("recipes match llm-compressor 0.14's parser (fixtures/recipes/expected.json)", () => {
  it.each(Object.keys(expected.valid))("%s", (file) => {
    const lc = expected.valid[file]!;
    const r = ok(parseRecipe(read(file)));
    expect(r.stage).toBe(lc.stage);
    expect(r.modifiers.map((m) => [m.type, m.group])).toEqual(lc.modifiers.map((m) => [m.type, m.group]));
    r.modifiers.forEach((m, i) => {
      const want = lc.modifiers[i]!;
      const rec = m as unknown as Record<string, unknown>;
      for (const [k, v] of Object.entries(want.fields)) if (k !== "calibration_function") compareField(k, rec[k], v);
      if (want.resolved_config !== undefined && (m.type === "QuantizationModifier" || m.type === "GPTQModifier")) {
        const ours = ok(resolveQuantizationConfig(m));
        expect(strip(ours)).toEqual(strip(ok(decodeQuantizationConfig(want.resolved_config))));
      }
    });
  });

  it.each(Object.keys(expected.valid))("%s: encodeRecipeYaml round-trips and writes LC's modifier args", (file) => {
    const r = ok(parseRecipe(read(file)));
    const text = encodeRecipeYaml(r);
    const back = ok(parseRecipe(text));
    // LC writes its defaulted actorder as "static", which reads back as an explicit value (same resolution)
    const norm = (ms: Recipe["modifiers"]) => strip(ms.map((m) => ({ ...m, actorderDefaulted: undefined })));
    expect(norm(back.modifiers)).toEqual(norm(r.modifiers));
    // same modifiers, same argument keys (LC writes every non-None field; its AWQ offload sentinel is not a value)
    const lcDoc = parseYaml(expected.valid[file]!.recipe_yaml, { logLevel: "error" }) as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
    const lcArgs = Object.values(lcDoc).flatMap((s) => Object.values(s).flatMap((g) => Object.entries(g)));
    const ourArgs = Object.values(encodeRecipe(r)).flatMap((s) => Object.values(s).flatMap((g) => Object.entries(g)));
    expect(ourArgs.map(([t, a]) => [t, Object.keys(a)])).toEqual(lcArgs.map(([t, a]) => [t, Object.keys(a).filter((k) => k !== "offload_device")]));
    for (const [[, ours], [, theirs]] of ourArgs.map((x, i) => [x, lcArgs[i]!] as const))
      for (const k of ["targets", "ignore", "scheme", "block_size", "dampening_frac", "actorder", "smoothing_strength", "duo_scaling", "n_grid", "rotations", "transform_type", "index", "start", "end", "requires_calibration_data"])
        if (k in theirs) expect(ours[k], k).toEqual(theirs[k]);
  });
});

describe("invalid recipes are rejected like llm-compressor 0.14 (fixtures/recipes/invalid)", () => {
  const cases: ReadonlyArray<[string, string, string]> = [
    ["unknown_modifier.yaml", "UnknownModifier", "quant_stage.quant_modifiers.GPTQModifer"],
    ["unknown_arg.yaml", "UnknownField", "quant_stage.quant_modifiers.GPTQModifier.sequential_update"],
    ["scheme_and_config_groups.yaml", "InvalidRecipe", "quant_stage.quant_modifiers.QuantizationModifier"],
    ["unknown_preset.yaml", "UnknownPreset", "quant_stage.quant_modifiers.QuantizationModifier.scheme"],
    ["bad_args.yaml", "InvalidArgs", "quant_stage.quant_modifiers.QuantizationModifier.config_groups.group_0.weights"],
    ["awq_without_quantization.yaml", "InvalidRecipe", "quant_stage"],
    ["bad_observer_key.yaml", "UnknownField", "quant_stage.quant_modifiers.QuantizationModifier.observer.weight"],
    ["gptq_actorder_conflict.yaml", "InvalidArgs", "quant_stage.quant_modifiers.GPTQModifier.config_groups.group_0.weights.actorder"],
    // LC 0.14 silently finds no modifiers here; llmq refuses to run an empty recipe
    ["stage_without_modifiers_suffix.yaml", "RecipeSyntax", ""],
  ];
  it("every invalid fixture is covered", () => expect(cases.map((c) => c[0]).sort()).toEqual(Object.keys(expected.invalid).sort()));
  it.each(cases)("%s → %s at %s", (file, tag, path) => {
    const r = parseRecipe(read(`invalid/${file}`));
    if (E.isRight(r)) throw new Error("expected an error");
    expect(r.left._tag).toBe(tag);
    if (path !== "") expect((r.left as { path: string }).path.startsWith(path)).toBe(true);
    expect(formatRecipeError(r.left).length).toBeGreaterThan(10);
    // LC rejects all of these except the empty-stage one
    expect(expected.invalid[file]!.error === null).toBe(file === "stage_without_modifiers_suffix.yaml");
  });

  it("an unknown modifier lists the known ones; an LC modifier llmq lacks is UnsupportedModifier", () => {
    const u = parseRecipe("s_stage:\n  g_modifiers:\n    FooModifier: {}\n");
    expect(E.isLeft(u) && formatRecipeError(u.left)).toContain("QuantizationModifier, GPTQModifier, SmoothQuantModifier, AWQModifier, SpinQuantModifier, QuIPModifier");
    const w = parseRecipe("s_stage:\n  g_modifiers:\n    WandaPruningModifier: {sparsity: 0.5}\n");
    expect(E.isLeft(w) && w.left._tag).toBe("UnsupportedModifier");
  });

  it("wrong value types name the field path and the expected type", () => {
    const r = parseRecipe("q_stage:\n  q_modifiers:\n    GPTQModifier:\n      scheme: W4A16\n      block_size: big\n");
    expect(r).toEqual(E.left({ _tag: "InvalidField", path: "q_stage.q_modifiers.GPTQModifier.block_size", expected: "an integer", got: '"big"' }));
  });

  it("YAML syntax errors are RecipeSyntax errors", () => {
    const r = parseRecipe("q_stage: [unclosed");
    expect(E.isLeft(r) && r.left._tag).toBe("RecipeSyntax");
  });
});

describe("recipe objects and resolution", () => {
  it("JSON recipes parse like YAML", () => {
    const r = ok(parseRecipe(JSON.stringify({ quant_stage: { quant_modifiers: { QuantizationModifier: { scheme: "FP8_DYNAMIC", ignore: ["lm_head"] } } } })));
    expect(r.modifiers[0]!.type).toBe("QuantizationModifier");
  });

  it("recipeFromModifiers builds a default-stage recipe like Recipe.from_modifiers", () => {
    const r: Recipe = ok(recipeFromModifiers([{ type: "GPTQModifier", targets: "Linear", scheme: "W4A16", ignore: ["lm_head"] }]));
    expect(r.stage).toBe("default");
    // the verified saved recipe of GPTQModifier(targets="Linear", scheme="W4A16", ignore=["lm_head"]) (reference §10.3)
    expect(parseYaml(encodeRecipeYaml(r))).toEqual(parseYaml(expected.valid["w4a16_gptq.yaml"]!.recipe_yaml));
  });

  it("a QuantizationModifier with no quantization field is rejected at initialization", () => {
    const r = ok(recipeFromModifiers([{ type: "QuantizationModifier" }]));
    expect(E.isLeft(checkHasQuantizationConfig(quantizationModifiers(r)[0]!))).toBe(true);
  });

  it("resolveQuantizationConfig expands a preset with the modifier targets, ignore and kv cache", () => {
    const r = ok(parseRecipe(read("w8a8_smoothquant_gptq.yaml")));
    const c = ok(resolveQuantizationConfig(quantizationModifiers(r)[0]!));
    expect(Object.keys(c.config_groups)).toEqual(["group_0"]);
    expect(c.ignore).toEqual(["lm_head"]);
    expect(c.kv_cache_scheme?.type).toBe("float");
    expect(c.config_groups.group_0!.weights?.actorder).toBe("static");
  });

  it("both individual observer overrides and the observer dict is an error", () => {
    const r = parseRecipe("q_stage:\n  q_modifiers:\n    QuantizationModifier:\n      scheme: W8A8\n      weight_observer: mse\n      observer: {input: mse}\n");
    expect(E.isLeft(r) && r.left._tag).toBe("InvalidRecipe");
  });

  it("targetStage keeps only the stages whose key starts with it (LC filter_dict)", () => {
    const text = read("multi_stage_gptq_actorder.yaml");
    expect(ok(parseRecipe(text, { targetStage: "quant" })).modifiers.map((m) => m.type)).toEqual(["GPTQModifier"]);
    expect(ok(parseRecipe(text, { targetStage: "smooth" })).modifiers.map((m) => m.type)).toEqual(["SmoothQuantModifier"]);
    expect(ok(parseRecipe(text)).modifiers.length).toBe(2);
  });

  it("recipe cards (markdown front matter) parse like LC's .md recipes", () => {
    const card = `---\n${read("fp8_dynamic.yaml")}---\n# FP8 dynamic\nSome prose.\n`;
    expect(ok(parseRecipeMarkdown(card)).modifiers[0]!.type).toBe("QuantizationModifier");
    expect(E.isLeft(parseRecipeMarkdown("# no front matter"))).toBe(true);
  });
});

describe("AWQModifier with quantization fields (llm-compressor's old helper signature)", () => {
  it("is refused with the way to write it now", () => {
    const r = parseRecipe("s_stage:\n  m_modifiers:\n    AWQModifier: {scheme: W4A16_ASYM, targets: [Linear], ignore: [lm_head]}\n    QuantizationModifier: {scheme: W4A16}\n");
    expect(E.isLeft(r) && formatRecipeError(r.left)).toMatch(/AWQModifier is a transform and takes no quantization fields .*move scheme \/ targets \/ ignore into a QuantizationModifier after it/);
  });
});

describe("SmoothQuantModifier.calibration_function (a Python callable in llm-compressor)", () => {
  it("null, as llm-compressor writes it into saved recipes, is accepted; a value is refused", () => {
    const text = (v: string) => `s_stage:\n  m_modifiers:\n    SmoothQuantModifier: {calibration_function: ${v}}\n`;
    expect(E.isRight(parseRecipe(text("null")))).toBe(true);
    const r = parseRecipe(text("my_forward"));
    expect(E.isLeft(r) && formatRecipeError(r.left)).toMatch(/calibration_function is a Python callable in llm-compressor, which a recipe cannot give/);
  });
});

describe("SpinQuantModifier.mappings / norm_mappings (replaced by llm-compressor 0.14's on_initialize)", () => {
  it("null is accepted; a value is refused with the reason instead of being ignored", () => {
    const text = (k: string, v: string) => `s_stage:\n  m_modifiers:\n    SpinQuantModifier: {${k}: ${v}}\n`;
    expect(E.isRight(parseRecipe(text("mappings", "null")))).toBe(true);
    const m = parseRecipe(text("mappings", "{embedding: 're:.*embed_tokens$'}"));
    expect(E.isLeft(m) && formatRecipeError(m.left)).toMatch(/mappings: llm-compressor 0\.14's SpinQuantModifier\.on_initialize replaces it/);
    const n = parseRecipe(text("norm_mappings", "[{norm: model.norm, linears: [lm_head]}]"));
    expect(E.isLeft(n) && formatRecipeError(n.left)).toMatch(/norm_mappings: .*has no effect/);
  });
});
