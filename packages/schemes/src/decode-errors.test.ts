import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { decodeQuantizationConfig } from "./decode-quantization-config.js";
import { type SchemeError, formatSchemeError } from "./errors.js";

// Invalid variants: one typed error with the field path and the allowed values.

const group = (weights: Record<string, unknown>) => ({ config_groups: { group_0: { targets: ["Linear"], weights } } });

const left = (r: E.Either<SchemeError, unknown>): SchemeError => {
  if (E.isRight(r)) throw new Error("expected a rejection");
  return r.left;
};

describe("decoder errors", () => {
  const cases: ReadonlyArray<[string, unknown, SchemeError["_tag"], string, string]> = [
    ["float num_bits", group({ num_bits: 16, type: "float" }), "InvalidArgs", "config_groups.group_0.weights.num_bits", "expected 4, 6 or 8 for float, got 16"],
    ["num_bits type", group({ num_bits: "sixteen" }), "InvalidField", "config_groups.group_0.weights.num_bits", "expected an integer"],
    ["strategy enum", group({ strategy: "row" }), "InvalidField", "config_groups.group_0.weights.strategy", '"tensor_group"'],
    ["unknown key", group({ num_bits: 4, bits: 4 }), "UnknownField", "config_groups.group_0.weights.bits", "num_bits"],
    ["group without size", group({ strategy: "group" }), "InvalidArgs", "config_groups.group_0.weights.group_size", "positive integer"],
    ["token static", group({ strategy: "token" }), "InvalidArgs", "config_groups.group_0.weights.dynamic", "dynamic=true"],
    ["actorder removed", group({ group_size: 128, actorder: "group" }), "InvalidArgs", "config_groups.group_0.weights.actorder", '"weight"'],
    ["block structure", group({ strategy: "block", block_structure: [128] }), "InvalidField", "config_groups.group_0.weights.block_structure", "[rows, cols]"],
    ["dynamic channel", group({ strategy: "channel", dynamic: true }), "InvalidArgs", "config_groups.group_0.weights.strategy", '"token", "tensor"'],
    ["scale dtype", group({ scale_dtype: "torch.float128" }), "InvalidField", "config_groups.group_0.weights.scale_dtype", "torch dtype"],
    ["unknown preset", { config_groups: { W4A17: ["Linear"] } }, "UnknownPreset", "config_groups.W4A17", "W4A16_ASYM"],
    ["missing groups", { ignore: [] }, "MissingField", "config_groups", "field required"],
    [
      "nested unwrap keeps the path",
      { quantization_config: { config_groups: { group_0: { targets: ["Linear"], weights: { num_bits: 4, strategy: "tensor_group" } } } } },
      "InvalidArgs",
      "quantization_config.config_groups.group_0.weights.group_size",
      "tensor_group",
    ],
    ["status enum", { config_groups: {}, quantization_status: "done" }, "InvalidField", "quantization_status", '"compressed"'],
  ];
  for (const [what, input, tag, path, text] of cases) {
    it(what, () => {
      const e = left(decodeQuantizationConfig(input));
      expect(e._tag).toBe(tag);
      expect("path" in e ? e.path : undefined).toBe(path);
      const msg = formatSchemeError(e);
      expect(msg.startsWith(`${path}: `)).toBe(true);
      expect(msg).toContain(text);
    });
  }
  it("accepts what CT 0.20 accepts: 16-bit int args, aliases, legacy block strings", () => {
    const a = decodeQuantizationArgs({ num_bits: 16, actorder: false, type: "INT" });
    expect(E.isRight(a) && a.right.zp_dtype).toBe("torch.int16");
    const b = decodeQuantizationArgs({ strategy: "Block", block_structure: "2x4" });
    expect(E.isRight(b) && b.right.block_structure).toEqual([2, 4]);
  });
});
