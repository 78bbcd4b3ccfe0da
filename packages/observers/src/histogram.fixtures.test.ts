import { readFileSync } from "node:fs";
import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type HistogramState, histogramStep, nonLinearParamSearch } from "./histogram.js";
import type { ObserverState } from "./observer.js";
import { createObserver } from "./registry.js";

// torch.ao HistogramObserver runs (the observer msModelSlim's act_method 2 ports): tools/gen_observer_fixtures.py
interface HistCase {
  readonly name: string;
  readonly bins: number;
  readonly upsample_rate: number;
  readonly input_shape: number[];
  readonly inputs: number[][];
  readonly states: ReadonlyArray<{ min_val: number; max_val: number }>;
  readonly histogram: number[];
  readonly search_min: number;
  readonly search_max: number;
  readonly ct_args: Record<string, unknown>;
  readonly ct_scale: number[];
  readonly ct_zero_point: number[];
}
const fixture: { histogram: HistCase[] } = JSON.parse(readFileSync(new URL("../fixtures/observers.json", import.meta.url), "utf8"));

describe("histogram observer matches torch.ao HistogramObserver (fixtures/observers.json)", () => {
  it.each(fixture.histogram.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const s = { bins: c.bins, upsampleRate: c.upsample_rate, dstBins: 256 };
    let st: HistogramState | undefined;
    c.inputs.forEach((batch, i) => {
      const x = Float32Array.from(batch);
      let lo = Number.POSITIVE_INFINITY;
      let hi = Number.NEGATIVE_INFINITY;
      for (const v of x) {
        lo = Math.min(lo, v);
        hi = Math.max(hi, v);
      }
      st = histogramStep(st, x, lo, hi, s);
      expect([st.min, st.max], `batch ${i} range`).toEqual([c.states[i]!.min_val, c.states[i]!.max_val]);
    });
    expect(Array.from(st!.hist)).toEqual(c.histogram);
    const r = nonLinearParamSearch(st!, s);
    expect([r.min, r.max]).toEqual([c.search_min, c.search_max]);
  });
});

describe("the histogram observer (registry) yields compressed-tensors qparams of the searched range", () => {
  it.each(fixture.histogram.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const args = decodeQuantizationArgs(c.ct_args);
    if (E.isLeft(args)) throw new Error(JSON.stringify(args.left));
    const o = createObserver(args.right, { tensor: c.name, kind: "input", kwargs: { bins: c.bins } }, "histogram");
    if (E.isLeft(o)) throw new Error(JSON.stringify(o.left));
    let st: ObserverState<unknown> = o.right.init;
    for (const b of c.inputs) st = o.right.step(st, new Tensor("f32", c.input_shape, Float32Array.from(b)));
    const q = o.right.finalize(st);
    if (E.isLeft(q)) throw new Error(JSON.stringify(q.left));
    expect(Array.from(toFloat64(q.right.scale).data)).toEqual(c.ct_scale);
    expect(Array.from(toFloat64(q.right.zeroPoint).data)).toEqual(c.ct_zero_point);
  });
});

describe("minmax_or_histogram (msModelSlim act_method 3)", () => {
  const args = (() => {
    const a = decodeQuantizationArgs({ num_bits: 8, type: "int", symmetric: false, strategy: "tensor", dynamic: false });
    if (E.isLeft(a)) throw new Error("args");
    return a.right;
  })();
  const run = (name: string, x: Float32Array) => {
    const o = createObserver(args, { tensor: "t", kind: "input" }, name);
    if (E.isLeft(o)) throw new Error("observer");
    const st = o.right.step(o.right.init, new Tensor("f32", [x.length / 64, 64], x));
    const s = o.right.statistics(st);
    if (E.isLeft(s)) throw new Error("stats");
    return [s.right.min[0], s.right.max[0]];
  };
  // deterministic, roughly uniform data on [-1, 1]
  const base = Float32Array.from({ length: 4096 }, (_, i) => Math.fround(Math.sin(i * 12.9898) * 0.999));

  it("keeps the histogram search for well-behaved tensors (max/std ≤ 50)", () => {
    expect(run("minmax_or_histogram", base)).toEqual(run("histogram", base));
  });

  it("keeps the full min-max range when one outlier makes max/std > 50", () => {
    const x = Float32Array.from(base);
    x[17] = 1000;
    expect(run("minmax_or_histogram", x)).toEqual([Math.min(...x), 1000]);
    expect(run("histogram", x)).not.toEqual([Math.min(...x), 1000]);
  });

  it("histogram observers are per-tensor only", () => {
    const g = decodeQuantizationArgs({ num_bits: 8, type: "int", symmetric: true, strategy: "group", group_size: 16 });
    if (E.isLeft(g)) throw new Error("args");
    const o = createObserver(g.right, { tensor: "t", kind: "input" }, "histogram");
    expect(E.isLeft(o) && o.left._tag).toBe("UnsupportedStrategy");
  });
});
