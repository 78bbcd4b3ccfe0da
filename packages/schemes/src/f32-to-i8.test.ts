import { describe, expect, it } from "vitest";
import { i8Scratch } from "./f32-to-i8.js";

describe("wasm f32 → int8 conversion", () => {
  it("equals an Int8Array assignment on integer codes, NaN and signed zeros, including the non-multiple-of-16 tail", () => {
    const vals = [-128, -127, -8, -1, -0, 0, 1, 7, 127, Number.NaN];
    for (const n of [1, 15, 16, 17, 100, 1000]) {
      const s = i8Scratch(n);
      expect(s).not.toBeNull();
      if (s === null) return;
      for (let i = 0; i < n; i++) s.f32[i] = vals[(i * 7) % vals.length]!;
      const expected = Int8Array.from(s.f32.subarray(0, n));
      expect(Array.from(s.convert(n))).toEqual(Array.from(expected));
    }
  });
  it("grows its memory for larger chunks", () => {
    const s = i8Scratch(3_000_000);
    expect(s?.f32.length).toBe(3_000_000);
    if (s === null) return;
    s.f32.fill(-3);
    expect(s.convert(3_000_000).every((v) => v === -3)).toBe(true);
  });
});
