import { readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { recipeFromYaml } from "./recipe.js";

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

describe("command-line overrides", () => {
  it("--targets on a recipe whose quantization modifier uses config_groups is reported as having no effect", () => {
    const text = readFileSync(new URL("../../../fixtures/recipes/stories260k-w4a16-g32.yaml", import.meta.url), "utf8");
    const r = right(recipeFromYaml(text, { targets: ["re:("] }));
    expect(r.warnings.join("\n")).toMatch(/--targets has no effect on QuantizationModifier with config_groups/);
    expect(right(recipeFromYaml(text)).warnings).toEqual([]);
  });
});

describe("transform fields llmq accepts without effect", () => {
  it("SmoothQuantModifier.num_calibration_steps and AWQModifier.offload_device are named in warnings", () => {
    const r = right(
      recipeFromYaml(
        [
          "s_stage:",
          "  m_modifiers:",
          "    SmoothQuantModifier: {smoothing_strength: 0.5, num_calibration_steps: 16}",
          "    AWQModifier: {offload_device: cpu}",
          "    QuantizationModifier: {targets: [Linear], scheme: W4A16, ignore: [lm_head]}",
          "",
        ].join("\n"),
      ),
    );
    expect(r.warnings).toEqual([
      "SmoothQuantModifier.num_calibration_steps = 16 has no effect (llm-compressor 0.14 ignores it too; every calibration sample is used)",
      "AWQModifier.offload_device = cpu has no effect in llmq (the cached activations stay in memory on the CPU)",
    ]);
  });
});
