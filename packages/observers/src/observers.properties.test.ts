import { type QuantizationArgs, decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor, toFloat64 } from "@llmq/tensor";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { flattenForCalibration } from "./flatten-for-calibration.js";
import { rowErrors } from "./mse.js";
import type { Observer, ObserverState } from "./observer.js";
import { candidateQParams } from "./qparams-from-statistics.js";
import { createObserver } from "./registry.js";

const decode = (u: Record<string, unknown>): QuantizationArgs => {
  const r = decodeQuantizationArgs(u);
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};
const INT8 = decode({ num_bits: 8, type: "int", symmetric: true, strategy: "tensor", dynamic: false });
const INT4_GROUP = decode({ num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: 4, dynamic: false });

const build = (args: QuantizationArgs, name: string, kind: "input" | "weight" = "input", kwargs: Record<string, unknown> = {}): Observer => {
  const o = createObserver(args, { tensor: "t", kind, kwargs }, name);
  if (E.isLeft(o)) throw new Error(JSON.stringify(o.left));
  return o.right;
};
const fold = (o: Observer, xs: ReadonlyArray<Tensor<"f32">>): ObserverState<unknown> => xs.reduce((s, x) => o.step(s, x), o.init);
const stats = (o: Observer, s: ObserverState<unknown>) => {
  const r = o.statistics(s);
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return [Array.from(r.right.min), Array.from(r.right.max)];
};

const value = fc.float({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }).map(Math.fround);
/** batches of [2, 8] activations */
const batch = fc.array(value, { minLength: 16, maxLength: 16 }).map((v) => new Tensor("f32", [2, 8], Float32Array.from(v)));
const batches = fc.array(batch, { minLength: 1, maxLength: 5 });

describe("observer laws (fast-check)", () => {
  it("static_minmax does not depend on batch order", () => {
    const o = build(INT4_GROUP, "static_minmax");
    fc.assert(
      fc.property(batches, (xs) => {
        expect(stats(o, fold(o, [...xs].reverse()))).toEqual(stats(o, fold(o, xs)));
      }),
    );
  });

  it("memoryless_minmax only sees the last batch", () => {
    const o = build(INT4_GROUP, "memoryless_minmax");
    fc.assert(
      fc.property(batches, (xs) => {
        expect(stats(o, fold(o, xs))).toEqual(stats(o, fold(o, xs.slice(-1))));
      }),
    );
  });

  it("minmax with averaging_constant 1 is memoryless", () => {
    const ema = build(INT4_GROUP, "minmax", "input", { averaging_constant: 1 });
    const last = build(INT4_GROUP, "memoryless_minmax");
    fc.assert(
      fc.property(batches, (xs) => {
        expect(stats(ema, fold(ema, xs))).toEqual(stats(last, fold(last, xs)));
      }),
    );
  });

  it("the EMA stays between the running extremes", () => {
    const ema = build(INT4_GROUP, "minmax");
    const all = build(INT4_GROUP, "static_minmax");
    fc.assert(
      fc.property(batches, (xs) => {
        const [emin, emax] = stats(ema, fold(ema, xs));
        const [smin, smax] = stats(all, fold(all, xs));
        for (const [i, v] of emin!.entries()) expect(v).toBeGreaterThanOrEqual(smin![i]!);
        for (const [i, v] of emax!.entries()) expect(v).toBeLessThanOrEqual(smax![i]!);
      }),
    );
  });

  it("static min-max int8 scales cover every observed value: |x / s| ≤ 127.5", () => {
    const o = build(INT8, "static_minmax");
    fc.assert(
      fc.property(batches, (xs) => {
        const q = o.finalize(fold(o, xs));
        if (E.isLeft(q)) throw new Error(JSON.stringify(q.left));
        const s = toFloat64(q.right.scale).data[0]!;
        for (const x of xs) for (const v of x.data) expect(Math.abs(v / s)).toBeLessThanOrEqual(127.5 * (1 + 1e-6));
      }),
    );
  });

  it("memoryless_mse only shrinks the range and never loses to the full range", () => {
    const o = build(INT4_GROUP, "memoryless_mse", "weight");
    const mm = build(INT4_GROUP, "memoryless_minmax", "weight");
    const weight = fc.array(value, { minLength: 32, maxLength: 32 }).map((v) => new Tensor("f32", [4, 8], Float32Array.from(v)));
    fc.assert(
      fc.property(weight, (w) => {
        const [mn, mx] = stats(o, o.step(o.init, w));
        const [fmn, fmx] = stats(mm, mm.step(mm.init, w));
        for (const [i, v] of mn!.entries()) expect(Math.abs(v)).toBeLessThanOrEqual(Math.abs(fmn![i]!));
        for (const [i, v] of mx!.entries()) expect(Math.abs(v)).toBeLessThanOrEqual(Math.abs(fmx![i]!));
        const rows = flattenForCalibration(w, "weight", INT4_GROUP, "memoryless_mse", "t");
        if (E.isLeft(rows)) throw new Error("rows");
        const err = (lo: number[], hi: number[]) => {
          const q = candidateQParams(Float32Array.from(lo), Float32Array.from(hi), [4, 2], INT4_GROUP, "t");
          if (E.isLeft(q)) throw new Error("qparams");
          const out = new Float64Array(8);
          rowErrors(rows.right, q.right.scale, q.right.zeroPoint, INT4_GROUP, 2.4, out);
          return Array.from(out);
        };
        const best = err(mn!, mx!);
        const full = err(fmn!, fmx!);
        for (const [i, e] of best.entries()) expect(e).toBeLessThanOrEqual(full[i]!);
      }),
    );
  });
});
