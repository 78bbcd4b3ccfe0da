import { describe, expect, it } from "vitest";
import { type Case, checkCase } from "./test-support/check-case.js";
import { readFixture } from "./test-support/fixture-io.js";

// Bit-exact comparison against compressed-tensors 0.20.0 (+ llm-compressor 0.14 memoryless_minmax observer);
// fixtures from tools/gen_scheme_fixtures.py.

const fx = readFixture<{ meta: { compressed_tensors: string }; cases: Case[] }>("numerics.json");

describe(`numerics vs compressed-tensors ${fx.meta.compressed_tensors}`, () => {
  it("has the expected coverage", () => {
    expect(fx.cases.length).toBeGreaterThan(140);
  });
  for (const c of fx.cases) it(c.name, () => checkCase(c));
});
