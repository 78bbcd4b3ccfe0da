import { readFileSync } from "node:fs";
import { type QuIPModifierConfig, type SpinQuantModifierConfig, decodeModifier, decodeTransformConfig, encodeTransformConfig, formatSchemeError } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { quipTransformConfig, spinQuantTransformConfig } from "./rotation-config.js";

// The TransformConfig llm-compressor 0.14 builds in SpinQuantModifier / QuIPModifier.on_initialize, dumped by
// compressed-tensors 0.20 (fixtures/rotations/transform-configs.json, tools/gen_rotation_fixtures.py), with the
// config.json CT's ModelCompressor.update_config writes for it.

interface Spec {
  readonly model: string;
  readonly modifier: "SpinQuantModifier" | "QuIPModifier";
  readonly kwargs: Record<string, unknown>;
  readonly dump: Record<string, unknown>;
  readonly config_json: string;
}

const FX = new URL("../fixtures/rotations/", import.meta.url).pathname;
const SPECS = JSON.parse(readFileSync(`${FX}transform-configs.json`, "utf8")) as ReadonlyArray<Spec>;
const HEAD_DIM: Readonly<Record<string, number>> = { "tiny-gqa": 16, "tiny-hd80": 80 };

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

describe("SpinQuant / QuIP transform configs (llm-compressor 0.14)", () => {
  for (const s of SPECS) {
    it(`${s.modifier}(${JSON.stringify(s.kwargs)}) on ${s.model}`, () => {
      const cfg = right(decodeModifier(s.modifier, s.kwargs, "m"));
      const tc =
        s.modifier === "SpinQuantModifier"
          ? right(spinQuantTransformConfig(cfg as SpinQuantModifierConfig, HEAD_DIM[s.model]!))
          : right(quipTransformConfig(cfg as QuIPModifierConfig));
      expect(encodeTransformConfig(tc)).toEqual(s.dump);
      // the dump decodes to the same value (the config.json side)
      const qc = (JSON.parse(s.config_json) as { quantization_config: { transform_config: unknown } }).quantization_config;
      expect(encodeTransformConfig(right(decodeTransformConfig(qc.transform_config)))).toEqual(s.dump);
    });
  }
});

describe("TransformConfig decoding (pydantic rules of compressed-tensors 0.20)", () => {
  const dec = (u: unknown): string => {
    const r = decodeTransformConfig(u);
    return E.isLeft(r) ? formatSchemeError(r.left) : JSON.stringify(encodeTransformConfig(r.right));
  };

  it("applies defaults, wraps single targets and canonicalizes the precision", () => {
    const r = right(decodeTransformConfig({ config_groups: { a: { type: "hadamard", precision: "float", apply: [{ targets: "Linear", location: "input" }] } } }));
    expect(r.config_groups.a).toEqual({
      type: "hadamard",
      apply: [{ targets: ["Linear"], location: "input", inverse: false, ignore: [] }],
      randomize: false,
      requires_grad: false,
      head_dim: null,
      precision: "torch.float32",
    });
  });

  it("refuses extra fields, unknown locations, missing targets and unknown dtypes", () => {
    expect(dec({ config_groups: { a: { type: "hadamard", seed: 1 } } })).toMatch(/config_groups\.a\.seed/);
    expect(dec({ config_groups: { a: { type: "hadamard", apply: [{ targets: ["Linear"], location: "Input" }] } } })).toMatch(/config_groups\.a\.apply\[0\]\.location/);
    expect(dec({ config_groups: { a: { type: "hadamard", apply: [{ location: "input" }] } } })).toMatch(/apply\[0\]\.targets/);
    expect(dec({ config_groups: { a: { type: "hadamard", precision: "torch.float7" } } })).toMatch(/No such torch dtype `torch\.float7`/);
    expect(dec({ config_groups: { a: { apply: [] } } })).toMatch(/config_groups\.a\.type/);
    expect(dec({})).toMatch(/config_groups/);
  });
});
