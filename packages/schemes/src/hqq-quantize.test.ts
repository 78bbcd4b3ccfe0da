import { type Tensor, f32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type HqqBits, HQQ_OPT_DEFAULTS, hqqDequantize, hqqQuantize } from "./hqq-quantize.js";
import { type WireTensor, decodeTensor, readFixture } from "./test-support/fixture-io.js";

// Against hqq 0.2.8.post1's Quantizer.quantize on CPU (tools/gen_hqq_quantize_fixtures.py).

interface Case {
  readonly name: string;
  readonly kwargs: { nbits: HqqBits; group_size: number | null; axis: 0 | 1; round_zero?: boolean; optimize?: boolean; channel_wise?: boolean };
  readonly iterations: number;
  readonly weight: WireTensor;
  readonly W_q: WireTensor;
  readonly scale: WireTensor;
  readonly zero: WireTensor;
}

const fx = readFixture<{ meta: { hqq: string }; cases: Case[] }>("hqq-quantize.json");

const ulpDiff = (a: number, b: number) => Math.abs(a - b) / Math.max(Math.abs(b) * 2 ** -23, 2 ** -149);

describe(`hqqQuantize vs hqq ${fx.meta.hqq}`, () => {
  it("covers bits, axes, group sizes, round_zero, flat groups, optimize off and tensor-wise", () => expect(fx.cases.length).toBe(13));
  for (const c of fx.cases)
    it(c.name, () => {
      const k = c.kwargs;
      const r = hqqQuantize(decodeTensor(c.weight), {
        nbits: k.nbits,
        groupSize: k.group_size,
        axis: k.axis,
        roundZero: k.round_zero ?? false,
        optimize: k.optimize ?? true,
        channelWise: k.channel_wise ?? true,
      });
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      const q = r.right;
      expect(q.iterations).toBe(c.iterations);
      const scale = decodeTensor(c.scale) as Tensor<"f32">;
      const zero = decodeTensor(c.zero) as Tensor<"f32">;
      const codes = decodeTensor(c.W_q) as Tensor<"u8">;
      expect(q.codes.shape).toEqual(codes.shape);
      expect(q.scale.shape).toEqual(scale.shape);
      expect(Array.from(q.scale.data)).toEqual(Array.from(scale.data)); // the scale never moves: bit-exact
      // zeros are means of f32 terms: torch's cascade sum and ours may differ in the last bits
      expect(Math.max(...Array.from(q.zero.data, (z, i) => ulpDiff(z, zero.data[i]!)))).toBeLessThanOrEqual(4);
      expect(Array.from(q.codes.data)).toEqual(Array.from(codes.data));
    });
});

describe("hqqDequantize", () => {
  it("is (W_q − zero)·scale per group in f32, in the original shape", () => {
    const w = f32([0.1, -0.2, 0.3, 0.05, 0.7, -0.4, 0.2, 0.0], [2, 4]);
    const q = hqqQuantize(w, { nbits: 4, groupSize: 4, axis: 1, optimize: false });
    if (E.isLeft(q)) throw new Error("quantize");
    const d = hqqDequantize(q.right);
    expect(d.shape).toEqual([2, 4]);
    d.data.forEach((v, i) => {
      const k = Math.floor(i / 4);
      expect(v).toBe(Math.fround(Math.fround(q.right.codes.data[i]! - q.right.zero.data[k]!) * q.right.scale.data[k]!));
      expect(Math.abs(v - w.data[i]!)).toBeLessThanOrEqual(q.right.scale.data[k]! / 2 + 1e-7);
    });
  });
});

describe("hqqQuantize rejects", () => {
  const w = f32(new Array(64).fill(0.5), [4, 16]);
  const msg = (r: ReturnType<typeof hqqQuantize>) => (E.isLeft(r) ? JSON.stringify(r.left) : "accepted");
  it("unsupported bits", () => expect(msg(hqqQuantize(w, { nbits: 7 as HqqBits }))).toContain("nbits=7 not supported"));
  it("a group size that does not divide the tensor", () => expect(msg(hqqQuantize(w, { nbits: 4, groupSize: 48 }))).toContain("got 48"));
  it("a bad axis", () => expect(msg(hqqQuantize(w, { nbits: 4, axis: 2 as 0 }))).toContain("axis should be either 0 or 1"));
  it("a 1-D weight", () => expect(msg(hqqQuantize(f32([1, 2]), { nbits: 4, groupSize: 2 }))).toContain("2-D"));
  it("bad optimizer parameters", () =>
    expect(msg(hqqQuantize(w, { nbits: 4, groupSize: 16, optParams: { ...HQQ_OPT_DEFAULTS, lpNorm: 1.5 } }))).toContain("lpNorm"));
});
