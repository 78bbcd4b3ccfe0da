import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeQuantizationConfig } from "./decode-quantization-config.js";
import { isIgnored, matchTargets, matchesTarget, pythonRegex, resolveSchemeForModule } from "./match-target.js";
import type { QuantizationConfig } from "./quantization-args.js";

// Semantics of compressed-tensors 0.20.0 utils/match.py and lifecycle/apply.py.

const right = <T>(r: E.Either<unknown, T>): T => {
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

const config = (groups: Record<string, unknown>, ignore: string[] = []): QuantizationConfig =>
  right(decodeQuantizationConfig({ config_groups: groups, ignore }));

const w = (bits: number) => ({ num_bits: bits, group_size: 128 });

describe("matchesTarget", () => {
  it("matches exact names, class names and LinearBase as Linear", () => {
    expect(right(matchesTarget("model.layers.0.mlp.down_proj", ["Linear"], "model.layers.0.mlp.down_proj"))).toBe(true);
    expect(right(matchesTarget("model.layers.0.mlp.down_proj", ["Linear"], "down_proj"))).toBe(false);
    expect(right(matchesTarget("x", ["QKVParallelLinear", "ColumnParallelLinear", "LinearBase"], "Linear"))).toBe(true);
    expect(right(matchesTarget("x", ["Embedding"], "Linear"))).toBe(false);
  });
  it("uses Python re.match: anchored at the start, not at the end", () => {
    expect(right(matchesTarget("model.layers.0.self_attn.q_proj", [], "re:.*q_proj"))).toBe(true);
    expect(right(matchesTarget("model.layers.0.self_attn.q_proj", [], "re:q_proj"))).toBe(false);
    expect(right(matchesTarget("model.layers.0.self_attn.q_proj", [], "re:model\\.layers\\.0"))).toBe(true);
    expect(right(matchesTarget("model.layers.10.self_attn.q_proj", [], "re:.*layers\\.1\\."))).toBe(false);
    expect(right(matchesTarget("model.layers.0.mlp.gate_proj", [], "re:.*mlp\\.(gate|up)_proj$"))).toBe(true);
  });
  it("translates Python-only regex syntax", () => {
    expect(right(matchesTarget("LM_HEAD", [], "re:(?i)lm_head"))).toBe(true);
    expect(right(matchesTarget("a.b.a", [], "re:(?P<x>a)\\.b\\.(?P=x)"))).toBe(true);
    expect(right(matchesTarget("lm_head", [], "re:\\Alm_head\\Z"))).toBe(true);
    expect(right(matchesTarget("lm_head.x", [], "re:\\Alm_head\\Z"))).toBe(false);
  });
  it("rejects what JavaScript cannot express, naming the target", () => {
    for (const bad of ["re:(?x) a b", "re:(?>a)", "re:a++", "re:(a", "re:x(?i)y", "re:(?(1)a|b)"]) {
      const r = matchesTarget("a", [], bad);
      expect(E.isLeft(r) && r.left._tag === "InvalidTarget" && r.left.target === bad, bad).toBe(true);
    }
    expect(E.isLeft(pythonRegex("[z-a]"))).toBe(true);
  });
});

describe("matchTargets / resolveSchemeForModule", () => {
  it("orders exact names, then regexes (sorted), then class names", () => {
    const t = ["Linear", "re:.*proj", "re:.*q_proj", "model.q_proj"];
    expect(right(matchTargets("model.q_proj", ["Linear"], t))).toEqual(["model.q_proj", "re:.*proj", "re:.*q_proj", "Linear"]);
  });
  it("prefers exact > regex > class, whatever the group order", () => {
    const c = config({
      group_0: { targets: ["Linear"], weights: w(4) },
      group_1: { targets: ["re:.*down_proj"], weights: w(8) },
      group_2: { targets: ["model.layers.0.mlp.down_proj"], weights: w(2) },
    });
    expect(right(resolveSchemeForModule(c, "model.layers.0.mlp.down_proj", ["Linear"]))?.group).toBe("group_2");
    expect(right(resolveSchemeForModule(c, "model.layers.1.mlp.down_proj", ["Linear"]))?.group).toBe("group_1");
    expect(right(resolveSchemeForModule(c, "model.layers.1.mlp.up_proj", ["Linear"]))?.group).toBe("group_0");
    expect(right(resolveSchemeForModule(c, "model.embed_tokens", ["Embedding"]))).toBeNull();
  });
  it("gives a target listed by two groups to the later group (CT's dict target → scheme)", () => {
    const c = config({ group_0: { targets: ["Linear"], weights: w(4) }, group_1: { targets: ["Linear"], weights: w(8) } });
    const r = right(resolveSchemeForModule(c, "a.b", ["Linear"]));
    expect(r?.group).toBe("group_1");
    expect(r?.scheme.weights?.num_bits).toBe(8);
  });
  it("sorts regexes by string among themselves", () => {
    const c = config({ group_0: { targets: ["re:.*proj"], weights: w(4) }, group_1: { targets: ["re:.*down"], weights: w(8) } });
    // "re:.*down" < "re:.*proj"
    expect(right(resolveSchemeForModule(c, "mlp.down_proj", ["Linear"]))?.group).toBe("group_1");
  });
  it("honours ignore by name, regex and class", () => {
    const c = config({ group_0: { targets: ["Linear", "Embedding"], weights: w(4) } }, ["lm_head", "re:.*router", "Embedding"]);
    expect(right(resolveSchemeForModule(c, "lm_head", ["Linear"]))).toBeNull();
    expect(right(resolveSchemeForModule(c, "model.layers.3.mlp.router", ["Linear"]))).toBeNull();
    expect(right(resolveSchemeForModule(c, "model.embed_tokens", ["Embedding"]))).toBeNull();
    // re.match is not anchored at the end: a child of an ignored name matches the same pattern
    expect(right(resolveSchemeForModule(c, "model.layers.3.mlp.router.x", ["Linear"]))).toBeNull();
    expect(right(resolveSchemeForModule(c, "model.layers.3.mlp.gate", ["Linear"]))?.group).toBe("group_0");
    expect(right(isIgnored("lm_head", ["Linear"], c.ignore))).toBe(true);
    expect(right(isIgnored("model.lm_head", ["Linear"], c.ignore))).toBe(false);
  });
  it("reports a broken regex in the config", () => {
    const c = config({ group_0: { targets: ["re:(unclosed"], weights: w(4) } });
    const r = resolveSchemeForModule(c, "a", ["Linear"]);
    expect(E.isLeft(r) && r.left._tag).toBe("InvalidTarget");
  });
});
