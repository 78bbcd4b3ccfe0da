import { PyFloat } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import {
  BitsAndBytesConfig,
  Bnb4BitQuantizer,
  type ModelFacts,
  autoQuantizationConfig,
  autoQuantizer,
  defaultKeysToNotConvert,
  modulesToNotConvert,
  registerQuantizationConfig,
  registerQuantizer,
  shouldConvertModule,
} from "./index.js";

describe("registry (register_quantization_config / register_quantizer)", () => {
  it("refuses a name already taken, built in or registered", () => {
    const a = registerQuantizationConfig("gptq", BitsAndBytesConfig);
    expect(E.isLeft(a) && a.left.message).toBe("Config 'gptq' already registered");
    const b = registerQuantizer("bitsandbytes_4bit", Bnb4BitQuantizer);
    expect(E.isLeft(b) && b.left.message).toBe("Quantizer 'bitsandbytes_4bit' already registered");
    expect(E.isRight(registerQuantizationConfig("registry-test", BitsAndBytesConfig))).toBe(true);
    expect(E.isLeft(registerQuantizationConfig("registry-test", BitsAndBytesConfig))).toBe(true);
  });

  it("dispatches bitsandbytes by load_in_* over quant_method, as AutoQuantizationConfig does", () => {
    const c = autoQuantizationConfig({ quant_method: "gptq", load_in_8bit: true, llm_int8_threshold: new PyFloat(6) });
    expect(E.isRight(c) && c.right.className).toBe("BitsAndBytesConfig");
    const q = E.isRight(c) ? autoQuantizer(c.right) : null;
    expect(q && E.isRight(q) && q.right.name).toBe("bitsandbytes_8bit");
  });
});

describe("modules_to_not_convert (get_keys_to_not_convert + should_convert_module)", () => {
  const tied: ModelFacts = { linears: [], tiedKeys: ["lm_head.weight", "model.embed_tokens.weight"], lastParameter: "model.norm.weight", outputEmbedding: "lm_head" };
  const untied: ModelFacts = { ...tied, tiedKeys: [], lastParameter: "lm_head.weight" };
  it("tied and untied heads", () => {
    expect(defaultKeysToNotConvert(tied)).toEqual(["lm_head", "model.embed_tokens", "model.norm"]);
    expect(defaultKeysToNotConvert(untied)).toEqual(["lm_head"]);
  });
  it("a config's skip list replaces the defaults for bitsandbytes (add_default_skips=False)", () => {
    const c = BitsAndBytesConfig.create({ load_in_8bit: true, llm_int8_skip_modules: ["mlp.down_proj"] });
    if (E.isLeft(c)) throw new Error(c.left.message);
    expect(modulesToNotConvert(Bnb4BitQuantizer, c.right, untied)).toEqual(["mlp.down_proj"]);
  });
  it("matches from the start to a module boundary, as a regex, or as a suffix", () => {
    expect(shouldConvertModule("model.layers.1.mlp", ["model.layers.1"])).toBe(false);
    expect(shouldConvertModule("model.layers.11.mlp", ["model.layers.1"])).toBe(true);
    expect(shouldConvertModule("model.layers.11.mlp", ["model.layers.*"])).toBe(false);
    expect(shouldConvertModule("model.layers.3.mlp.gate_proj", ["mlp.gate"])).toBe(true);
    expect(shouldConvertModule("model.layers.3.mlp.down_proj", ["down_proj"])).toBe(false);
    expect(shouldConvertModule("lm_head", null)).toBe(true);
  });
});
