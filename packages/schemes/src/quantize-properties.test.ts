import { Tensor, castFromNumbers, toFloat64 } from "@llmq/tensor";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { formatSchemeError } from "./errors.js";
import type { QuantizationArgs } from "./quantization-args.js";
import { dequantize, fakeQuantize } from "./quantize.js";
import { rtnQuantizeWeight } from "./rtn-quantize-weight.js";

const ok = <T>(r: E.Either<import("./errors.js").SchemeError, T>): T => {
  if (E.isLeft(r)) throw new Error(formatSchemeError(r.left));
  return r.right;
};
const argsOf = (o: Record<string, unknown>): QuantizationArgs => ok(decodeQuantizationArgs(o));

/**
 * Equal values, bit for bit except the sign of zero: CT adds the (zero) zero point, which turns a -0 from the first
 * pass into +0 in the second, exactly as torch does.
 */
const sameValues = (a: Tensor, b: Tensor): boolean => {
  const x = toFloat64(a).data;
  const y = toFloat64(b).data;
  return a.dtype === b.dtype && x.every((v, i) => v === y[i]);
};

const G = 16;
const weights = (dtype: "f32" | "bf16") =>
  fc
    .tuple(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 3 }))
    .chain(([rows, groups]) =>
      fc
        .array(fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), { minLength: rows * groups * G, maxLength: rows * groups * G })
        .map((v) => castFromNumbers(dtype, v, [rows, groups * G])),
    );
const intArgs = fc.record({ bits: fc.integer({ min: 2, max: 8 }), sym: fc.boolean() });

describe("fake-quantization properties (int, group strategy)", () => {
  for (const dtype of ["f32", "bf16"] as const) {
    it(`${dtype}: |x − dq(q(x))| ≤ scale/2 inside the range`, () => {
      fc.assert(
        fc.property(weights(dtype), intArgs, (w, { bits, sym }) => {
          const args = argsOf({ num_bits: bits, group_size: G, symmetric: sym });
          const r = ok(rtnQuantizeWeight(w, args));
          const dq = toFloat64(ok(dequantize(r.quantized, r.scale, r.zeroPoint, args))).data;
          const x = toFloat64(w).data;
          const s = toFloat64(r.scale).data;
          const z = toFloat64(r.zeroPoint).data;
          const qmax = 2 ** (bits - 1) - 1;
          const qmin = -(2 ** (bits - 1));
          for (let i = 0; i < x.length; i++) {
            const g = Math.floor(i / G);
            const y = x[i]! / s[g]! + z[g]!;
            if (y < qmin - 0.5 || y > qmax + 0.5) continue; // outside the representable range: clamped
            // half a step, plus the dtype's rounding: torch rounds x/s to bf16 (8 significant bits), which alone can move
            // a code by up to 2^(bits-8) steps at 8 bits; f32 only adds a few ulps.
            const slack = dtype === "f32" ? 1e-5 * (Math.abs(x[i]!) + s[g]!) : s[g]! * 2 ** (bits - 8) + 2 ** -7 * Math.abs(x[i]!);
            if (Math.abs(x[i]! - dq[i]!) > s[g]! / 2 + slack) return false;
          }
          return true;
        }),
        { numRuns: 150 },
      );
    });
    it(`${dtype}: fake quantization is monotone within a group`, () => {
      fc.assert(
        fc.property(weights(dtype), intArgs, (w, { bits, sym }) => {
          const args = argsOf({ num_bits: bits, group_size: G, symmetric: sym });
          const r = ok(rtnQuantizeWeight(w, args));
          const fq = toFloat64(ok(fakeQuantize(w, r.scale, r.zeroPoint, args))).data;
          const x = toFloat64(w).data;
          for (let g0 = 0; g0 < x.length; g0 += G)
            for (let i = g0; i < g0 + G; i++) for (let j = g0; j < g0 + G; j++) if (x[i]! <= x[j]! && fq[i]! > fq[j]!) return false;
          return true;
        }),
        { numRuns: 150 },
      );
    });
    // bf16 holds 8 significant bits: (q·s rounded to bf16) / s rounds back to q only while q needs few bits, so the
    // bf16 property is stated for ≤ 4-bit codes (torch behaves identically; the fixtures cover 8-bit bf16 exactly).
    const idemArgs = dtype === "f32" ? intArgs : fc.record({ bits: fc.integer({ min: 2, max: 4 }), sym: fc.boolean() });
    it(`${dtype}: fake quantization is idempotent`, () => {
      fc.assert(
        fc.property(weights(dtype), idemArgs, (w, { bits, sym }) => {
          const args = argsOf({ num_bits: bits, group_size: G, symmetric: sym });
          const r = ok(rtnQuantizeWeight(w, args));
          const once = ok(fakeQuantize(w, r.scale, r.zeroPoint, args));
          const twice = ok(fakeQuantize(once, r.scale, r.zeroPoint, args));
          return sameValues(once, twice);
        }),
        { numRuns: 150 },
      );
    });
  }
  it("fp8 / fp4 / NVFP4 / MX fake quantization is idempotent too", () => {
    const all = [
      { num_bits: 8, type: "float", strategy: "channel" },
      { num_bits: 4, type: "float", strategy: "tensor_group", group_size: 16, scale_dtype: "torch.float8_e4m3fn" },
      { num_bits: 4, type: "float", group_size: 16 },
      { num_bits: 6, type: "float", group_size: 32, scale_dtype: "torch.uint8" },
    ];
    fc.assert(
      fc.property(weights("bf16"), fc.constantFrom(...all), (w0, a) => {
        const w = w0.shape[1]! % 32 === 0 || a.group_size !== 32 ? w0 : castFromNumbers("bf16", new Float64Array(w0.shape[0]! * 32).fill(0.5), [w0.shape[0]!, 32]);
        const args = argsOf(a);
        const r = ok(rtnQuantizeWeight(w, args));
        const g = r.globalScale ? { globalScale: r.globalScale } : {};
        const once = ok(fakeQuantize(w, r.scale, r.zeroPoint, args, g));
        const twice = ok(fakeQuantize(once, r.scale, r.zeroPoint, args, g));
        return sameValues(once, twice);
      }),
      { numRuns: 100 },
    );
  });
});

describe("bad tensors", () => {
  it("names the tensor holding NaN/Inf instead of propagating it into scales", () => {
    const w = new Tensor("f32", [2, 16], new Float32Array(32).fill(0.5));
    w.data[21] = Number.NaN;
    const r = rtnQuantizeWeight(w, argsOf({ num_bits: 4, group_size: 16 }), { name: "model.layers.0.mlp.up_proj.weight" });
    expect(E.isLeft(r) && r.left).toEqual({ _tag: "NonFinite", tensor: "model.layers.0.mlp.up_proj.weight", index: 21, value: Number.NaN });
    w.data[21] = Number.POSITIVE_INFINITY;
    const inf = rtnQuantizeWeight(w, argsOf({ num_bits: 8, strategy: "channel" }));
    expect(E.isLeft(inf) && formatSchemeError(inf.left)).toContain("weight: non-finite value Infinity at flat index 21");
  });
  it("rejects a group size that does not divide the columns, as CT does", () => {
    const w = new Tensor("f32", [2, 24], new Float32Array(48).fill(1));
    const r = rtnQuantizeWeight(w, argsOf({ num_bits: 4, group_size: 16 }));
    expect(E.isLeft(r) && formatSchemeError(r.left)).toContain("divisible by the given group_size 16 but got 24");
  });
  it("rejects asymmetric fp4 like calculate_qparams", () => {
    const w = new Tensor("f32", [1, 16], new Float32Array(16).fill(1));
    const r = rtnQuantizeWeight(w, argsOf({ num_bits: 4, type: "float", group_size: 16, symmetric: false }));
    expect(E.isLeft(r) && r.left._tag).toBe("Unsupported");
  });
});
