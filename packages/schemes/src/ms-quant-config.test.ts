import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import {
  type MsQuantConfig,
  decodeMsQuantConfig,
  formatMsConfigError,
  msBuilder,
  msPerGroup,
  msQuantConfig,
  msQuantType,
  parseMsQuantConfig,
} from "./ms-quant-config.js";

// msModelSlim QuantConfig (reference/formats.md §1.2): defaults, builders, and one test per validation rule with the
// message it gives.

const ok = (r: E.Either<unknown, MsQuantConfig>): MsQuantConfig => {
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};
const fails = (r: E.Either<{ _tag: "MsConfigError"; parameter: string; rule: string; message: string }, MsQuantConfig>) => {
  if (E.isRight(r)) throw new Error("accepted");
  return { ...r.left, text: formatMsConfigError(r.left) };
};

describe("QuantConfig defaults and quant types", () => {
  it("has msModelSlim's constructor defaults", () => {
    const c = ok(msQuantConfig());
    expect(c).toMatchObject({
      w_bit: 8, a_bit: 8, disable_names: [], dev_type: "cpu", dev_id: null, act_method: 1, pr: 1.0, w_sym: true, mm_tensor: true,
      w_method: "MinMax", co_sparse: false, fraction: 0.01, nonuniform: false, is_lowbit: false, do_smooth: false, use_sigma: false,
      sigma_factor: 3.0, disable_last_linear: true, use_kvcache_quant: false, is_dynamic: false, open_outlier: true, group_size: 64,
      percdamp: 0.01, pdmix: false, disable_level: "L0", save_type: ["numpy"], part_file_size: null, simulate_tp: null,
    });
    expect(msQuantType(c)).toBe("W8A8");
  });
  it("resolves the model_quant_type like QuantType.get_quant_type", () => {
    const t = (k: Record<string, unknown>) => msQuantType(ok(msQuantConfig(k)));
    expect(t({ a_bit: 16 })).toBe("W8A16");
    expect(t({ w_bit: 4, a_bit: 16 })).toBe("W4A16");
    expect(t({ w_bit: 4, a_bit: 16, w_method: "NF" })).toBe("NF4");
    expect(t({ is_dynamic: true })).toBe("W8A8_DYNAMIC");
    expect(t({ co_sparse: true })).toBe("W8A8S");
    expect(t({ w_bit: 4, a_bit: 8, is_lowbit: true })).toBe("W8A8S");
  });
});

describe("builders", () => {
  const base = ok(msQuantConfig({ w_bit: 4, a_bit: 16 }));
  it("weight_quant sets the weight method and resets unspecified ones to its defaults", () => {
    const c = ok(msBuilder(ok(msQuantConfig({ a_bit: 16, mm_tensor: false })), "weight_quant", { w_method: "GPTQ" }));
    expect([c.w_method, c.mm_tensor, c.w_sym, c.explicit.has("group_size")]).toEqual(["GPTQ", true, true, false]);
  });
  it("weight_activation_quant sets act_method, pr and is_dynamic", () => {
    const c = ok(msBuilder(ok(msQuantConfig()), "weight_activation_quant", { act_method: 2 }));
    expect([c.act_method, c.pr, c.is_dynamic]).toEqual([2, 1.0, false]);
  });
  it("sparse_quant turns on co_sparse, which forces W4A8 and pr 1 (type W8A8S)", () => {
    const c = ok(msBuilder(ok(msQuantConfig({ pr: 0.5 })), "sparse_quant", { fraction: 0.05 }));
    expect([c.co_sparse, c.w_bit, c.a_bit, c.pr, c.fraction, msQuantType(c)]).toEqual([true, 4, 8, 1.0, 0.05, "W8A8S"]);
  });
  it("co_sparse is switched off by is_lowbit", () => {
    const c = ok(msBuilder(ok(msQuantConfig()), "sparse_quant", { is_lowbit: true }));
    expect(c.co_sparse).toBe(false);
  });
  it("kv_quant sets use_kvcache_quant and kv_sym", () => {
    const c = ok(msBuilder(ok(msQuantConfig()), "kv_quant", { kv_sym: false }));
    expect([c.use_kvcache_quant, c.kv_sym]).toEqual([true, false]);
  });
  it("simulate_tp records tp_size with both flags on by default", () => {
    expect(ok(msBuilder(base, "simulate_tp", { tp_size: 4 })).simulate_tp).toEqual({ tp_size: 4, enable_communication_quant: true, enable_per_device_quant: true });
  });
  it("per-group (is_lowbit, open_outlier off) forces mm_tensor off", () => {
    const c = ok(msQuantConfig({ w_bit: 4, a_bit: 16, is_lowbit: true, open_outlier: false, group_size: 128 }));
    expect([msPerGroup(c), c.mm_tensor, c.group_size]).toEqual([true, false, 128]);
  });
});

describe("validation: one rule each, with its message", () => {
  const cases: ReadonlyArray<readonly [string, () => ReturnType<typeof fails>, string, string]> = [
    ["unknown parameter", () => fails(decodeMsQuantConfig({ w_bits: 8 })), "w_bits", "unknown parameter"],
    ["unknown builder parameter", () => fails(decodeMsQuantConfig({ kv_quant: { sym: true } })), "kv_quant.sym", "unknown parameter"],
    ["unknown builder", () => fails(msBuilder(ok(msQuantConfig()), "fa_quant")), "fa_quant", "unknown builder"],
    ["parameter kind", () => fails(msQuantConfig({ w_sym: "yes" })), "w_sym", 'must be true or false, got "yes"'],
    ["w_bit in {4, 8}", () => fails(msQuantConfig({ w_bit: 3 })), "w_bit", "must be one of 4, 8, got 3"],
    ["a_bit in {8, 16}", () => fails(msQuantConfig({ a_bit: 12 })), "a_bit", "must be one of 4, 8, 16, got 12"],
    ["a_bit 4 needs is_dynamic", () => fails(msQuantConfig({ w_bit: 4, a_bit: 4 })), "a_bit", "a_bit 4 (W4A4) requires is_dynamic=True"],
    ["act_method in [1, 3]", () => fails(msQuantConfig({ act_method: 4 })), "act_method", "must be one of 1, 2, 3, got 4"],
    ["act_method 3 not with is_lowbit", () => fails(msQuantConfig({ w_bit: 4, act_method: 3, is_lowbit: true })), "act_method", "cannot be used with is_lowbit"],
    ["w_method names", () => fails(msQuantConfig({ a_bit: 16, w_method: "AWQ" })), "w_method", 'must be one of MinMax, GPTQ, HQQ, NF, got "AWQ"'],
    ["NF needs W4A16", () => fails(msQuantConfig({ a_bit: 16, w_method: "NF" })), "w_method", "NF (NF4) requires w_bit=4 and a_bit=16"],
    ["pr in [0, 1]", () => fails(msQuantConfig({ pr: 1.5 })), "pr", "must be in [0, 1], got 1.5"],
    ["w_sym with a_bit 8", () => fails(msQuantConfig({ w_sym: false })), "w_sym", "must be True when a_bit is 8"],
    ["fraction in [0.01, 0.1]", () => fails(msQuantConfig({ fraction: 0.2 })), "fraction", "must be in [0.01, 0.1], got 0.2"],
    ["sigma_factor in [3, 4]", () => fails(msQuantConfig({ sigma_factor: 2.5 })), "sigma_factor", "must be in [3, 4], got 2.5"],
    ["group_size in {32, 64, 128, 256}", () => fails(msQuantConfig({ group_size: 48 })), "group_size", "must be one of 32, 64, 128, 256, got 48"],
    ["group_size only per-group", () => fails(msQuantConfig({ w_bit: 4, a_bit: 16, group_size: 128 })), "group_size", "is_lowbit=True and open_outlier=False"],
    ["percdamp in [0, 1]", () => fails(msQuantConfig({ a_bit: 16, w_method: "GPTQ", percdamp: 2 })), "percdamp", "must be in [0, 1], got 2"],
    ["percdamp only with GPTQ", () => fails(msQuantConfig({ a_bit: 16, percdamp: 0.1 })), "percdamp", "applies only to w_method GPTQ"],
    ["is_dynamic needs activation bits", () => fails(msQuantConfig({ a_bit: 16, is_dynamic: true })), "is_dynamic", "a_bit other than 16"],
    ["W8A8 only MinMax", () => fails(msQuantConfig({ w_method: "GPTQ" })), "w_method", "W8A8 accepts only w_method MinMax, got GPTQ"],
    ["W4A8_DYNAMIC needs per-group", () => fails(msQuantConfig({ w_bit: 4, is_dynamic: true })), "is_dynamic", "W4A8_DYNAMIC requires per-group"],
    ["W4A4 needs disable_last_linear", () => fails(msQuantConfig({ w_bit: 4, a_bit: 4, is_dynamic: true, disable_last_linear: false })), "a_bit", "W4A4 requires"],
    ["pdmix only W8A8", () => fails(msQuantConfig({ a_bit: 16, pdmix: true })), "pdmix", "applies only to W8A8"],
    ["no quant type", () => fails(msQuantConfig({ w_bit: 4, a_bit: 8 })), "w_bit", "w_bit 4 with a_bit 8 is no msModelSlim quantization type"],
    ["dev_type names", () => fails(msQuantConfig({ dev_type: "tpu" })), "dev_type", 'must be one of cpu, npu, gpu, got "tpu"'],
    ["dev_id non-negative", () => fails(msQuantConfig({ dev_id: -1 })), "dev_id", "non-negative integer"],
    ["block_size range", () => fails(msBuilder(ok(msQuantConfig({ w_bit: 4, a_bit: 16 })), "weight_quant", { w_method: "NF", block_size: 32 })), "block_size", "must be one of 64, 128"],
    ["tp_size in {2, 4, 8, 16}", () => fails(msBuilder(ok(msQuantConfig()), "simulate_tp", { tp_size: 3 })), "simulate_tp.tp_size", "must be one of 2, 4, 8, 16, got 3"],
    ["tp_size required", () => fails(msBuilder(ok(msQuantConfig()), "simulate_tp", {})), "simulate_tp.tp_size", "is required"],
    ["disable_level L<n>", () => fails(decodeMsQuantConfig({ disable_level: "5" })), "disable_level", 'must match L<n> (e.g. "L0", "L5"), got "5"'],
    ["save_type names", () => fails(decodeMsQuantConfig({ save_type: ["onnx"] })), "save_type", "numpy, safe_tensor or ascendV1"],
    ["part_file_size ≥ 1", () => fails(decodeMsQuantConfig({ part_file_size: 0 })), "part_file_size", "must be an integer ≥ 1 (GB per file), got 0"],
    ["not an object", () => fails(decodeMsQuantConfig([1, 2])), "", "expected an object of parameters"],
    ["bad syntax", () => fails(parseMsQuantConfig("{w_bit: [")), "(file)", "not valid JSON or YAML"],
  ];
  for (const [name, run, parameter, message] of cases)
    it(name, () => {
      const e = run();
      expect(e.parameter).toBe(parameter);
      expect(e.text).toContain(message);
      expect(e.text.startsWith(`msModelSlim QuantConfig: ${parameter}: `)).toBe(true);
    });
});

describe("config files", () => {
  it("JSON and YAML give the same config, builders applied in msModelSlim's order", () => {
    const json = ok(parseMsQuantConfig('{"a_bit": 8, "disable_names": ["lm_head"], "weight_activation_quant": {"act_method": 2}, "kv_quant": {}, "save_type": ["safe_tensor"]}'));
    const yaml = ok(parseMsQuantConfig("a_bit: 8\ndisable_names: [lm_head]\nweight_activation_quant:\n  act_method: 2\nkv_quant: {}\nsave_type: [safe_tensor]\n"));
    expect(yaml).toEqual(json);
    expect([json.act_method, json.use_kvcache_quant, json.kv_sym, json.save_type]).toEqual([2, true, true, ["safe_tensor"]]);
  });
});
