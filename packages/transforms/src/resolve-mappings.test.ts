import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { lowestCommonAncestor, mappingsOfLayer, resolveMappings } from "./resolve-mappings.js";
import { llamaInfo } from "./test-model.js";

describe("lowestCommonAncestor (compressed-tensors get_lowest_common_ancestor_name)", () => {
  it("gives the cases of its docstring", () => {
    expect(lowestCommonAncestor(["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"])).toBe("self_attn");
    expect(lowestCommonAncestor(["self_attn.o_proj"])).toBe("self_attn.o_proj");
    expect(lowestCommonAncestor(["abc", "ab"])).toBe("");
    expect(lowestCommonAncestor(["ab", "ab.a"])).toBe("ab");
    expect(lowestCommonAncestor(["self_attn.q_proj", "mlp.gate_proj"])).toBe("");
  });
});

describe("resolveMappings", () => {
  const model = llamaInfo(3);

  it("resolves llm-compressor's regex mappings once per decoder layer, in recipe order within a layer", () => {
    const r = resolveMappings("AWQModifier", model, [
      { smooth: "re:.*input_layernorm$", balance: ["re:.*q_proj$", "re:.*k_proj$", "re:.*v_proj$"] },
      { smooth: "re:.*up_proj$", balance: ["re:.*down_proj$"] },
    ]);
    expect(E.isRight(r)).toBe(true);
    const ms = E.isRight(r) ? r.right : [];
    expect(ms.length).toBe(6);
    expect(mappingsOfLayer(ms, 1)).toEqual([
      { layer: 1, smooth: "input_layernorm", balance: ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"] },
      { layer: 1, smooth: "mlp.up_proj", balance: ["mlp.down_proj"] },
    ]);
  });

  it("exact names match one layer only", () => {
    const r = resolveMappings("SmoothQuantModifier", model, [{ smooth: "model.layers.2.post_attention_layernorm", balance: ["model.layers.2.mlp.gate_proj"] }]);
    expect(E.isRight(r) && r.right).toEqual([{ layer: 2, smooth: "post_attention_layernorm", balance: ["mlp.gate_proj"] }]);
  });

  it("a mapping that matches nothing is an error listing the modules of a layer", () => {
    const r = resolveMappings("AWQModifier", model, [{ smooth: "re:.*self_attn_layer_norm$", balance: ["re:.*fc1$"] }]);
    expect(E.isLeft(r) && r.left.detail).toMatch(/matches no module of the model \(modules of each decoder layer: input_layernorm, post_attention_layernorm, self_attn\.q_proj.*mlp\.down_proj, under model\.layers\.0\.\)/);
  });

  it("a partial match (smooth layer found, a balance target not) is an error naming what is missing", () => {
    const r = resolveMappings("AWQModifier", model, [{ smooth: "re:.*input_layernorm$", balance: ["re:.*q_proj$", "re:.*qkv_proj$"] }]);
    expect(E.isLeft(r) && r.left.detail).toMatch(/matches only part of model\.layers\.0: nothing for re:\.\*qkv_proj\$/);
  });

  it("two smooth layers in one decoder layer are refused", () => {
    const r = resolveMappings("SmoothQuantModifier", model, [{ smooth: "re:.*layernorm$", balance: ["re:.*q_proj$"] }]);
    expect(E.isLeft(r) && r.left.detail).toMatch(/needs one smooth layer per decoder layer/);
  });

  it("a bad regex is a typed error, not an exception", () => {
    const r = resolveMappings("AWQModifier", model, [{ smooth: "re:(", balance: ["re:.*q_proj$"] }]);
    expect(E.isLeft(r)).toBe(true);
  });
});
