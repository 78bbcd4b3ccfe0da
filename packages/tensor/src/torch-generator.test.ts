import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { TORCH_DEFAULT_SEED, TorchGenerator } from "./torch-generator.js";

// torch 2.13's own CPU generator streams (tools/gen_rotation_fixtures.py writes fixtures/torch-generator.json).

interface Seeded {
  readonly seed: string;
  readonly randint2: string;
  readonly rand_f32: ReadonlyArray<string>;
  readonly rand_f64: ReadonlyArray<string>;
  readonly randint2_after: string;
}
interface Fixture {
  readonly default_seed: number;
  readonly default_randint2: string;
  readonly seeded: ReadonlyArray<Seeded>;
  readonly rand_f64_64x64_seed3_last: ReadonlyArray<string>;
  readonly rand_f32_64x64_seed3_last: ReadonlyArray<string>;
}

const FX = JSON.parse(readFileSync(new URL("../fixtures/torch-generator.json", import.meta.url), "utf8")) as Fixture;

/** Python's float.hex → number. */
const fromHex = (s: string): number => {
  const m = /^(-?)0x([01])\.([0-9a-f]+)p([+-]\d+)$/.exec(s);
  if (m === null) throw new Error(`bad hex float ${s}`);
  const mant = Number.parseInt(m[2]! + m[3]!, 16) / 16 ** m[3]!.length;
  return (m[1] === "-" ? -1 : 1) * mant * 2 ** Number(m[4]);
};

const bits = (g: TorchGenerator, n: number): string => Array.from({ length: n }, () => g.randint(0, 2)).join("");

describe("TorchGenerator (torch.Generator on the CPU)", () => {
  it("a fresh generator has torch's default seed and draws its randint(0, 2) stream", () => {
    expect(BigInt(FX.default_seed)).toBe(TORCH_DEFAULT_SEED);
    expect(bits(new TorchGenerator(), 64)).toBe(FX.default_randint2);
  });

  it("manual seeds (low 32 bits) and one stream across randint, rand f32 and rand f64", () => {
    for (const s of FX.seeded) {
      const g = new TorchGenerator(BigInt(s.seed));
      expect(bits(g, s.randint2.length)).toBe(s.randint2);
      expect(Array.from({ length: s.rand_f32.length }, () => g.randF32())).toEqual(s.rand_f32.map(fromHex));
      expect(Array.from({ length: s.rand_f64.length }, () => g.randF64())).toEqual(s.rand_f64.map(fromHex));
      expect(bits(g, s.randint2_after.length)).toBe(s.randint2_after);
    }
  });

  it("a 64×64 rand is the same serial stream (past several MT19937 twists)", () => {
    const g64 = new TorchGenerator(3);
    const d = Array.from({ length: 4096 }, () => g64.randF64());
    expect(d.slice(-8)).toEqual(FX.rand_f64_64x64_seed3_last.map(fromHex));
    const g32 = new TorchGenerator(3);
    const f = Array.from({ length: 4096 }, () => g32.randF32());
    expect(f.slice(-8)).toEqual(FX.rand_f32_64x64_seed3_last.map(fromHex));
  });

  it("refuses a randint range it does not implement", () => {
    expect(() => new TorchGenerator().randint(0, 2 ** 33)).toThrow(/2\^32/);
  });
});
