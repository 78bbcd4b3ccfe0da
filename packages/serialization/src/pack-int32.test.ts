import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { packColsToInt32, packRowsToInt32, packedWords, unpackColsFromInt32, unpackRowsFromInt32 } from "./pack-int32.js";

describe("dense int32 packing", () => {
  it("matches compressed-tensors' worked vectors (legacy layout for 4 and 8 bits)", () => {
    expect([...packRowsToInt32([1], 1, 1, 4)]).toEqual([9]);
    expect([...packRowsToInt32([1, 2, 3, 4], 1, 4, 4)]).toEqual([52137]);
    expect([...packRowsToInt32([-8, -7, -6, -5, -4, -3, -2, -1], 1, 8, 4)]).toEqual([1985229328]);
    expect([...packRowsToInt32([1], 1, 1, 8)]).toEqual([129]);
    expect([...packRowsToInt32([1, 2, 3, 4], 1, 4, 8)]).toEqual([-2071756159]);
    expect([...packRowsToInt32([-128, -127, -126, -125], 1, 4, 8)]).toEqual([50462976]);
  });

  it("uses ceil(cols·b/32) words and lets values cross word boundaries", () => {
    expect(packedWords(11, 3)).toBe(2);
    // 3-bit: element 10 sits at bits 30..32, its top bit goes to bit 0 of word 1
    const codes = new Array(11).fill(-4);
    codes[10] = 3; // unsigned 7 = 0b111
    const p = packRowsToInt32(codes, 1, 11, 3);
    expect(p[0]! >>> 30).toBe(0b11);
    expect(p[1]! & 1).toBe(1);
  });

  it("round-trips any codes for every bit width, along rows and along columns", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 8 }),
        fc.integer({ min: 1, max: 5 }),
        fc.integer({ min: 1, max: 70 }),
        fc.infiniteStream(fc.integer()),
        (bits, rows, cols, s) => {
          const lo = -(1 << (bits - 1));
          const it = s[Symbol.iterator]();
          const codes = Int8Array.from({ length: rows * cols }, () => lo + Math.abs(it.next().value as number) % (1 << bits));
          expect(unpackRowsFromInt32(packRowsToInt32(codes, rows, cols, bits), rows, cols, bits)).toEqual(codes);
          expect(unpackColsFromInt32(packColsToInt32(codes, rows, cols, bits), rows, cols, bits)).toEqual(codes);
        },
      ),
      { numRuns: 300 },
    );
  });
});
