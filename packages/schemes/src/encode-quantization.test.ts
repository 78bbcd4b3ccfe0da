import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { encodeQuantizationArgs } from "./encode-quantization.js";
import type { QuantizationArgs } from "./quantization-args.js";

const dec = (u: unknown): QuantizationArgs => {
  const r = decodeQuantizationArgs(u);
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

describe("encodeQuantizationArgs on derived values", () => {
  it("writes an observer set later (pydantic adds attribute assignments to fields_set)", () => {
    const a = { ...dec({ num_bits: 4, group_size: 128 }), observer: "mse" };
    expect(encodeQuantizationArgs(a)).toEqual({ num_bits: 4, type: "int", symmetric: true, group_size: 128, strategy: "group", dynamic: false, observer: "mse" });
  });
  it("writes zp_dtype only when given explicitly (CT fills the default in)", () => {
    expect(encodeQuantizationArgs(dec({ num_bits: 4, group_size: 128, symmetric: false }))).not.toHaveProperty("zp_dtype");
    expect(encodeQuantizationArgs(dec({ num_bits: 4, group_size: 128, symmetric: false, zp_dtype: "int8" }))).toHaveProperty("zp_dtype", "torch.int8");
    const hand: QuantizationArgs = {
      num_bits: 4,
      type: "int",
      symmetric: false,
      group_size: 128,
      strategy: "group",
      block_structure: null,
      dynamic: false,
      actorder: null,
      scale_dtype: null,
      zp_dtype: "torch.int16",
      observer: null,
      observer_kwargs: {},
    };
    expect(encodeQuantizationArgs(hand)).toHaveProperty("zp_dtype", "torch.int16");
    expect(encodeQuantizationArgs({ ...hand, zp_dtype: "torch.int8" })).not.toHaveProperty("zp_dtype");
  });
});
