import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dequantizeModule, quantMethodOf, quantizedFormatOf } from "./quantized-checkpoint.js";
import { bitExactCases, f32Bits as bits } from "./test-support/fixtures.js";
import type { Tensor } from "@llmq/tensor";
import { roundTo } from "./float-rounding.js";

interface Case {
  readonly method: "gptq" | "awq";
  readonly bits?: number;
  readonly group_size: number;
  readonly checkpoint_format?: string;
  readonly version?: string;
  readonly shape: number[];
  readonly v1_quirk_corrupts?: boolean;
}

const configOf = (c: Case): Record<string, unknown> =>
  c.method === "gptq"
    ? { quant_method: "gptq", bits: c.bits, group_size: c.group_size, checkpoint_format: c.checkpoint_format, desc_act: true, sym: true }
    : { quant_method: "awq", bits: 4, group_size: c.group_size, zero_point: true, version: c.version!.toUpperCase() };

// The fixtures hold GPTQModel's convert_gptq_file / AutoAWQ's values in f32 (exact products of the f16 scales).
// Reading a checkpoint rounds them once to the scales' dtype, f16 here, as GPTQModel's QuantLinear (what
// transformers runs) and AutoAWQ multiply: `scales[g_idx] * (q − z)` in half precision.
const toF16 = (t: Tensor) => ({ data: (t.data as Float32Array).map(roundTo("float16")), size: t.size });

describe("GPTQ / AWQ dequantization: bit for bit GPTQModel's convert_gptq_file and AutoAWQ's packers", () => {
  const { tensors } = bitExactCases<Case>("gptq-awq", configOf, (name, c) => `${name}${c.v1_quirk_corrupts === true ? " (v1 −1 quirk: corrupted zeros reproduced)" : ""}`, toF16);

  it("without g_idx, GPTQ groups are k // group_size (equal to the fixture's act-order-free case)", () => {
    const name = "gptq_b4_sym_v1_act0";
    const parts = new Map(["qweight", "qzeros", "scales"].map((p) => [p, tensors.get(`${name}.${p}`)!] as const));
    const fmt = quantizedFormatOf("c", { quant_method: "gptq", bits: 4, group_size: 32 });
    const w = E.isRight(fmt) ? dequantizeModule("c", name, parts, fmt.right) : fmt;
    expect(E.isRight(w) && bits(w.right)).toEqual(bits(toF16(tensors.get(`${name}.expected`)!)));
  });
});

describe("quantization_config dispatch (transformers' AutoQuantizationConfig.from_dict)", () => {
  const m = (qc: unknown) => quantMethodOf("config.json", qc);
  it("load_in_4bit / load_in_8bit win over quant_method", () => {
    expect(m({ quant_method: "gptq", load_in_4bit: true })).toEqual(E.right("bitsandbytes_4bit"));
    expect(m({ quant_method: "bitsandbytes", load_in_8bit: true })).toEqual(E.right("bitsandbytes_8bit"));
  });
  it("missing and unknown methods name the supported ones; known-but-unread ones say so", () => {
    for (const qc of [{}, { quant_method: "nope" }, { quant_method: "quanto" }]) {
      const r = m(qc);
      expect(E.isLeft(r) && r.left._tag).toBe("InvalidConfig");
      expect(E.isLeft(r) && JSON.stringify(r.left)).toContain("gptq, awq, bitsandbytes_4bit, bitsandbytes_8bit, fp8, fbgemm_fp8, hqq, aqlm, eetq, compressed-tensors");
    }
    expect(JSON.stringify(m({ quant_method: "quanto" }))).toContain("transformers knows it");
    expect(m({ quant_method: "awq" })).toEqual(E.right("awq"));
  });
  it("GPTQ/AWQ options: bits, group_size, checkpoint_format / format, version are checked", () => {
    const f = (qc: Record<string, unknown>) => quantizedFormatOf("c", qc);
    expect(f({ quant_method: "gptq", bits: 4, format: "gptq_v2" })).toEqual(E.right({ method: "gptq", options: { bits: 4, groupSize: 128, v1: false } }));
    expect(E.isLeft(f({ quant_method: "gptq", bits: 5 }))).toBe(true);
    expect(E.isLeft(f({ quant_method: "gptq", bits: 4, checkpoint_format: "marlin" }))).toBe(true);
    expect(E.isLeft(f({ quant_method: "awq", version: "exllama" }))).toBe(true);
    expect(E.isLeft(f({ quant_method: "awq", zero_point: false }))).toBe(true);
    expect(E.isLeft(f({ quant_method: "compressed-tensors" }))).toBe(true);
  });
});
