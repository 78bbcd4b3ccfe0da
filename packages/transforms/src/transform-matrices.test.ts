import { readFileSync } from "node:fs";
import { decodeTransformScheme } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { readSafetensors } from "./test-support/read-safetensors.js";
import { applyToWeight, transformFactory } from "./transform-matrices.js";

// compressed-tensors' own factories (fixtures/rotations/factories.*, tools/gen_rotation_fixtures.py): one factory per
// (type, precision) drawing sizes in order, so the torch generator stream and the per-size cache are both exercised.

const FX = new URL("../fixtures/rotations/", import.meta.url).pathname;

interface Case {
  readonly type: string;
  readonly precision: string;
  readonly sizes: ReadonlyArray<number>;
  readonly name: string;
  readonly matrices: ReadonlyArray<{ readonly n: number; readonly dtype: string; readonly bits?: string }>;
}

const CASES = JSON.parse(readFileSync(`${FX}factories.json`, "utf8")) as ReadonlyArray<Case>;
const TENSORS = readSafetensors(`${FX}factories.safetensors`);

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(String(e.left));
  return e.right;
};

const signBits = (d: ArrayLike<number>): string => Array.from(d, (v) => (v < 0 ? "1" : "0")).join("");

describe("transform factories (compressed-tensors 0.20 hadamard, random-hadamard, random-matrix)", () => {
  for (const c of CASES) {
    it(`${c.name}: sizes ${c.sizes.join(", ")} in draw order`, () => {
      const f = transformFactory(right(decodeTransformScheme({ type: c.type, precision: c.precision })));
      c.sizes.forEach((n, i) => {
        const w = right(f.weight(n, c.precision));
        expect(w.data instanceof Float64Array ? "torch.float64" : "torch.float32").toBe(c.matrices[i]!.dtype);
        if (c.type === "random-matrix") {
          expect(Array.from(w.data)).toEqual(Array.from(TENSORS.get(`${c.name}.${i}.weight`)!.data));
          const inv = right(f.inverse(w));
          const ref = TENSORS.get(`${c.name}.${i}.inverse`)!.data;
          // LAPACK's getri vs Gauss–Jordan: equal up to the conditioning of a random matrix.
          const scale = Math.max(...Array.from(ref, Math.abs));
          const worst = Array.from(inv.data).reduce((m, v, k) => Math.max(m, Math.abs(v - ref[k]!) / scale), 0);
          expect(worst).toBeLessThan(1e-9);
        } else {
          expect(Array.from(w.data).every((v) => v === 1 || v === -1)).toBe(true);
          expect(signBits(w.data)).toBe(c.matrices[i]!.bits);
          expect(w.scale).toBe(Math.sqrt(n));
        }
      });
    });
  }

  it("hadamard refuses sizes that are not powers of two, as CT does", () => {
    const f = transformFactory(right(decodeTransformScheme({ type: "hadamard" })));
    expect(f.weight(80, "torch.float64")).toEqual(E.left(expect.stringMatching(/power-of-two size, got 80/)));
    const r = transformFactory(right(decodeTransformScheme({ type: "random-hadamard" })));
    expect(E.isLeft(r.weight(18, "torch.float64"))).toBe(true);
  });

  it("block-diagonal application: a weight_input transform of block 2 acts per column pair", () => {
    const f = transformFactory(right(decodeTransformScheme({ type: "hadamard" })));
    const t = right(f.weight(2, "torch.float64"));
    // W [1, 4] · blockdiag(H2ᵀ) / √2
    const w = right(applyToWeight("weight_input", "linear", t, Float64Array.of(1, 2, 3, 5), 1, 4));
    const s = Math.SQRT2;
    expect(Array.from(w)).toEqual([3 / s, -1 / s, 8 / s, -2 / s]);
  });
});
