import * as E from "fp-ts/lib/Either.js";
import { FP8_E4M3FN_VALUES, type Tensor, toFloat32, toFloat64 } from "@llmq/tensor";
import { describe, expect, it } from "vitest";
import { loadFixtures } from "./fixtures.js";
import { quantizeWeight, type WeightQParams } from "./quantize-weight.js";

const fx = loadFixtures();

const codeValues = (t: Tensor): Float64Array =>
  t.dtype === "f8_e4m3fn" ? Float64Array.from(t.data as Uint8Array, (b) => FP8_E4M3FN_VALUES[b]!) : toFloat64(t).data;

const qparamsOf = (name: string): WeightQParams => ({
  scale: fx.tensor(`${name}.scale`) as WeightQParams["scale"],
  zeroPoint: fx.tensor(`${name}.zp`),
  globalScale: fx.has(`${name}.global_scale`) ? fx.f32(`${name}.global_scale`) : null,
});

describe("quantizeWeight vs llm-compressor 0.14 quantize_weight", () => {
  const totals = { weights: 0, mismatched: 0 };
  for (const c of fx.cases) {
    it(c.name, () => {
      // A bf16 model's weight is exact in f32 (LC casts it to f32 for GPTQ); its scales stay bf16.
      const r = quantizeWeight(toFloat32(fx.tensor(c.weight)), fx.f32(c.hessian), c.args, {
        blockSize: c.block_size,
        dampeningFrac: c.dampening_frac,
        qparams: qparamsOf(c.name),
        module: c.name,
      });
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      const got = codeValues(r.right.quantized);
      const want = codeValues(fx.tensor(`${c.name}.codes`));
      let mismatched = 0;
      let maxStep = 0;
      for (let i = 0; i < want.length; i++) {
        if (got[i] !== want[i]) {
          mismatched++;
          maxStep = Math.max(maxStep, Math.abs(got[i]! - want[i]!));
        }
      }
      totals.weights += want.length;
      totals.mismatched += mismatched;
      if (mismatched > 0) console.log(`${c.name}: ${mismatched}/${want.length} codes differ (max |Δ| ${maxStep}); loss ${r.right.loss} vs LC ${c.loss}`);
      expect(r.right.usedRtnFallback).toBe(c.used_rtn_fallback);
      if (fx.has(`${c.name}.fq`)) {
        // The bf16 weight LC writes back: our f32 fake-quantized values are bf16-exact and must be identical.
        const lc = toFloat64(fx.tensor(`${c.name}.fq`)).data;
        let diff = 0;
        for (let i = 0; i < lc.length; i++) if (lc[i] !== r.right.fakeQuantized.data[i]) diff++;
        expect(diff).toBe(0);
      }
      // Per case at most 0.5% of codes may flip (float-order ties); measured: 0 on every case.
      expect(mismatched / want.length).toBeLessThanOrEqual(0.005);
      expect(Math.abs(r.right.loss - c.loss) / Math.max(c.loss, 1e-12)).toBeLessThan(1e-4);
    });
  }
  it("total code mismatch", () => {
    console.log(`TOTAL ${totals.mismatched}/${totals.weights} = ${((100 * totals.mismatched) / totals.weights).toFixed(4)}%`);
    expect(totals.weights).toBeGreaterThan(400_000);
    // The goal: < 0.1% of all weights.
    expect(totals.mismatched / totals.weights).toBeLessThan(0.001);
  });
});
