import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { type MsRangeStats, msAutoDisableNames, msRangeParam, msRangeStatsStep } from "./ms-range-param.js";

// msModelSlim's range_param against torch (tools/gen_ms_range_param_fixtures.py: the StdMethod hook's formula on
// fixed random inputs, outliers planted in some layers), and the disable_level ranking built on it.

interface Layer {
  readonly name: string;
  readonly hidden: number;
  readonly samples: ReadonlyArray<string>;
  readonly t_max: number;
  readonly t_min: number;
  readonly std: number;
  readonly range_param: number;
}
const FIX = JSON.parse(readFileSync(new URL("../fixtures/ms-range-param.json", import.meta.url), "utf8")) as { layers: Layer[]; ranked: string[] };
const f32 = (b64: string): Float32Array => {
  const b = Buffer.from(b64, "base64");
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const statsOf = (l: Layer): MsRangeStats => l.samples.reduce<MsRangeStats | null>((acc, s) => msRangeStatsStep(acc, f32(s), l.hidden), null)!;

describe("msRangeStatsStep / msRangeParam (torch reference)", () => {
  for (const l of FIX.layers)
    it(l.name, () => {
      const s = statsOf(l);
      expect(s.tMax).toBe(l.t_max);
      expect(s.tMin).toBe(l.t_min);
      expect(Math.abs(s.std - l.std) / l.std).toBeLessThan(2e-6);
      expect(Math.abs(msRangeParam(s) - l.range_param) / l.range_param).toBeLessThan(4e-6);
    });

  it("ranks the layers as torch's values sort", () => {
    const params = new Map(FIX.layers.map((l) => [l.name, msRangeParam(statsOf(l))]));
    expect(msAutoDisableNames(params, FIX.layers.length, [])).toEqual(FIX.ranked);
  });
});

describe("msAutoDisableNames", () => {
  const params = new Map([
    ["a", 3],
    ["b", 9],
    ["c", 5],
    ["d", 9],
    ["lm_head", 50],
  ]);
  it("takes the n largest, skipping names already rolled back, ties in gathering order", () => {
    expect(msAutoDisableNames(params, 2, ["lm_head"])).toEqual(["b", "d"]);
    expect(msAutoDisableNames(params, 3, ["lm_head", "d"])).toEqual(["b", "c", "a"]);
    expect(msAutoDisableNames(params, 0, [])).toEqual([]);
    expect(msAutoDisableNames(params, 10, ["lm_head"])).toEqual(["b", "d", "c", "a"]);
  });
  it("a constant input ranks first; an all-zero one last", () => {
    expect(msRangeParam({ tMax: 2, tMin: 2, std: 0 })).toBe(Number.POSITIVE_INFINITY);
    expect(msRangeParam({ tMax: 0, tMin: 0, std: 0 })).toBe(0);
  });
});
