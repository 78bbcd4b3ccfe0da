import { describe, expect, it } from "vitest";
import {
  bf16FromNumber,
  bf16ToNumber,
  f16FromNumber,
  f16ToNumber,
  fp8e4m3FromNumber,
  fp8e5m2FromNumber,
  FP8_E4M3FN_VALUES,
  FP4_E2M1_VALUES,
  roundHalfEven,
} from "./dtype.js";

describe("roundHalfEven", () => {
  it("rounds ties to even and keeps the sign of zero", () => {
    expect([0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4999, -7.5, 7.5].map(roundHalfEven)).toEqual([0, 2, 2, -0, -2, -2, 2, -8, 8]);
    expect(Object.is(roundHalfEven(-0.4), -0)).toBe(true);
  });
});

describe("16-bit floats", () => {
  it("bf16 rounds to nearest even", () => {
    // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: even mantissa is 1.
    expect(bf16ToNumber(bf16FromNumber(1 + 2 ** -8))).toBe(1);
    expect(bf16ToNumber(bf16FromNumber(1 + 3 * 2 ** -8))).toBe(1 + 2 ** -6);
    expect(Number.isNaN(bf16ToNumber(bf16FromNumber(Number.NaN)))).toBe(true);
  });
  it("f16 handles overflow, subnormals and ties", () => {
    expect(f16ToNumber(f16FromNumber(65504))).toBe(65504);
    expect(f16ToNumber(f16FromNumber(65519))).toBe(65504);
    expect(f16ToNumber(f16FromNumber(65520))).toBe(Infinity);
    expect(f16ToNumber(f16FromNumber(2 ** -24))).toBe(2 ** -24);
    expect(f16ToNumber(f16FromNumber(2 ** -25))).toBe(0);
    expect(f16ToNumber(f16FromNumber(3 * 2 ** -25))).toBe(2 ** -23);
    expect(f16FromNumber(-0)).toBe(0x8000);
  });
});

describe("fp8 / fp4", () => {
  it("e4m3fn: 448 max, tie at 464 to even, beyond is NaN", () => {
    expect(FP8_E4M3FN_VALUES[fp8e4m3FromNumber(448)]).toBe(448);
    expect(FP8_E4M3FN_VALUES[fp8e4m3FromNumber(464)]).toBe(448);
    expect(Number.isNaN(FP8_E4M3FN_VALUES[fp8e4m3FromNumber(470)]!)).toBe(true);
    expect(FP8_E4M3FN_VALUES[fp8e4m3FromNumber(2 ** -9)]).toBe(2 ** -9);
    expect(fp8e4m3FromNumber(-1)).toBe(0xb8);
  });
  it("e5m2 overflows to inf", () => {
    expect(fp8e5m2FromNumber(1e6)).toBe(0x7c);
  });
  it("fp4 table", () => {
    expect(Array.from(FP4_E2M1_VALUES.slice(0, 8))).toEqual([0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  });
});
