import { describe, expect, it } from "vitest";
import { HQQ_PACKINGS, hqqUnpack } from "./hqq-dequantize.js";
import { hqqPack } from "./hqq-pack.js";
import { quantFixture } from "./test-support/fixtures.js";

// hqq 0.2.8's packed W_q (tools/gen_hqq_fixtures.py): unpacking and packing again gives hqq's bytes back.

const PACKING_OF: Readonly<Record<number, string>> = { 8: "8bit_u8", 4: "4bit_u8", 3: "3bit_32", 2: "2bit_u8", 1: "1bit_u8" };

describe("hqqPack: hqq's BitPack bytes", () => {
  const fx = quantFixture<{ nbits: number; shape: number[] }>("hqq");
  for (const [name, c] of Object.entries(fx.cases))
    it(name, () => {
      const wq = fx.tensors.get(`${name}.W_q`)!;
      const bytes = new Uint8Array(wq.data.buffer, wq.data.byteOffset, wq.data.byteLength);
      const packing = PACKING_OF[c.nbits]!;
      const word = packing === "3bit_32" ? 4 : 1;
      const cols = wq.shape[1]! * (wq.data.BYTES_PER_ELEMENT / word);
      const rows = bytes.length / word / cols;
      const codes = hqqUnpack(bytes, packing, rows, cols);
      const slices = codes.length / (rows * cols);
      const packed = hqqPack(codes, packing, rows * slices, cols);
      expect(packed?.shape).toEqual([rows, cols]);
      expect(Buffer.from(packed!.bytes).equals(Buffer.from(bytes))).toBe(true);
    });
  it("pads 3-bit rows to a multiple of 10 and refuses rows that do not split", () => {
    const p = hqqPack(new Uint8Array(7 * 2).fill(7), "3bit_32", 7, 2);
    expect(p?.shape).toEqual([1, 2]);
    expect(hqqUnpack(p!.bytes, "3bit_32", 1, 2).slice(0, 14)).toEqual(new Uint8Array(14).fill(7));
    expect(hqqPack(new Uint8Array(3), "4bit_u8", 3, 1)).toBeUndefined();
    expect(hqqPack(new Uint8Array(4), "5bit_u8", 4, 1)).toBeUndefined();
    expect(HQQ_PACKINGS).toContain("1bit_u8");
  });
});
