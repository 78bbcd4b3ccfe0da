import { FP8_E4M3FN_VALUES, type Tensor, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { loadFixtures } from "./fixtures.js";
import { gptqQuantizeModule } from "./gptq-quantize-module.js";
import { observeWeightWith, weightObserverName } from "@llmq/observers";

const fx = loadFixtures();
const values = (t: Tensor): Float64Array =>
  t.dtype === "f8_e4m3fn" ? Float64Array.from(t.data as Uint8Array, (b) => FP8_E4M3FN_VALUES[b]!) : toFloat64(t).data;

describe("gptqQuantizeModule: llmq observer + GPTQ vs LC's observer + quantize_weight", () => {
  const totals = { weights: 0, mismatched: 0 };
  for (const c of fx.cases) {
    it(c.name, () => {
      const W = fx.tensor(c.weight) as Tensor<"f32" | "bf16">;
      // The weight observer alone must reproduce LC's qparams bit for bit.
      const q = observeWeightWith(c.name, c.args)(W);
      if (E.isLeft(q)) throw new Error(q.left);
      expect(Array.from(values(q.right.scale))).toEqual(Array.from(values(fx.tensor(`${c.name}.scale`))));
      if (!c.args.symmetric) expect(Array.from(values(q.right.zeroPoint!))).toEqual(Array.from(values(fx.tensor(`${c.name}.zp`))));
      // The fixture stores the normalised H; as a sum over one sample it normalises to itself.
      const r = gptqQuantizeModule(c.name, W, fx.f32(c.hessian), 1, c.args, { blockSize: c.block_size, dampeningFrac: c.dampening_frac });
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      const got = values(r.right.quantized);
      const want = values(fx.tensor(`${c.name}.codes`));
      let mismatched = 0;
      for (let i = 0; i < want.length; i++) if (got[i] !== want[i]) mismatched++;
      totals.weights += want.length;
      totals.mismatched += mismatched;
      expect(mismatched / want.length).toBeLessThanOrEqual(0.005);
      expect(r.right.usedRtnFallback).toBe(c.used_rtn_fallback);
    });
  }
  it("total code mismatch < 0.1%", () => {
    console.log(`gptqQuantizeModule TOTAL ${totals.mismatched}/${totals.weights}`);
    expect(totals.weights).toBeGreaterThan(400_000);
    expect(totals.mismatched / totals.weights).toBeLessThan(0.001);
  });

  it("weight observer names follow LC's initialize_observer", () => {
    const a = fx.cases[0]!.args;
    expect(weightObserverName({ ...a, observer: null })).toBe("memoryless_minmax");
    expect(weightObserverName({ ...a, observer: "static_minmax" })).toBe("memoryless_minmax");
    expect(weightObserverName({ ...a, observer: "minmax" })).toBe("memoryless_minmax");
    expect(weightObserverName({ ...a, observer: "mse" })).toBe("mse");
  });

  it("empty calibration is a typed error naming the module", () => {
    const c = fx.cases[0]!;
    const r = gptqQuantizeModule("model.layers.0.self_attn.q_proj", fx.f32(c.weight), fx.f32(c.hessian), 0, c.args);
    expect(r).toEqual(E.left({ _tag: "EmptyCalibration", module: "model.layers.0.self_attn.q_proj" }));
  });
});
