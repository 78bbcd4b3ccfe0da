import { type Tensor, castFromNumbers, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { expect } from "vitest";
import { calculateQParams, generateGlobalScale } from "../calculate-qparams.js";
import { computeDynamicQParams, dynamicMinMax } from "../compute-dynamic-qparams.js";
import { decodeQuantizationArgs } from "../decode-quantization-args.js";
import { encodeQuantizationArgs } from "../encode-quantization.js";
import { type SchemeError, formatSchemeError } from "../errors.js";
import { dequantize, fakeQuantize, quantize } from "../quantize.js";
import { rtnQuantizeWeight, weightMinMax } from "../rtn-quantize-weight.js";
import { type WireTensor, bitDiff, decodeTensor } from "./fixture-io.js";

// One compressed-tensors numerics case (tools/gen_scheme_fixtures.py), compared bit for bit (test-only helper).

export interface Case {
  readonly name: string;
  readonly kind: "weight" | "activation";
  readonly args: unknown;
  readonly kwargs: unknown;
  readonly x: WireTensor;
  readonly scale: WireTensor;
  readonly raw_scale?: WireTensor;
  readonly zero_point: WireTensor;
  readonly global_scale?: WireTensor;
  readonly min?: WireTensor;
  readonly max?: WireTensor;
  readonly q: WireTensor;
  readonly fq: WireTensor;
  readonly dq?: WireTensor;
}

const ok = <T>(r: E.Either<SchemeError, T>): T => {
  if (E.isLeft(r)) throw new Error(formatSchemeError(r.left));
  return r.right;
};

const same = (what: string, actual: Tensor, expected: WireTensor, storage = false) => {
  const d = bitDiff(actual, decodeTensor(expected), storage);
  expect(d, `${what}: ${d}`).toBeUndefined();
};

export const checkCase = (c: Case): void => {
  // The dump drops zp_dtype when symmetric, so the constructor kwargs are decoded; the dump must decode the same.
  const args = ok(decodeQuantizationArgs(c.kwargs));
  expect(encodeQuantizationArgs(args)).toEqual(c.args);
  const x = decodeTensor(c.x);
  const scale = decodeTensor(c.scale);
  const zp = decodeTensor(c.zero_point);
  const gs = c.global_scale === undefined ? undefined : decodeTensor(c.global_scale);
  const g = gs === undefined ? {} : { globalScale: gs };
  if (c.kind === "weight") {
    const r = ok(rtnQuantizeWeight(x, args));
    same("scale", r.scale, c.scale);
    same("zero_point", r.zeroPoint, c.zero_point);
    if (c.global_scale !== undefined) {
      expect(r.globalScale).toBeDefined();
      same("global_scale", r.globalScale!, c.global_scale);
    }
    same("quantized", r.quantized, c.q, true);
    const mm = ok(weightMinMax(x, args));
    same("raw scale", ok(calculateQParams(mm.min, mm.max, args, g)).scale, c.raw_scale!);
    same("fake_quantize", ok(fakeQuantize(x, scale, zp, args, g)), c.fq);
    same("dequantize", ok(dequantize(decodeTensor(c.q), scale, zp, args, g)), c.dq!);
  } else {
    if (gs !== undefined) {
      const v = toFloat64(x).data;
      let lo = Infinity;
      let hi = -Infinity;
      for (const a of v) {
        lo = Math.min(lo, a);
        hi = Math.max(hi, a);
      }
      const own = ok(generateGlobalScale(castFromNumbers(x.dtype, [lo], [1]), castFromNumbers(x.dtype, [hi], [1])));
      same("global_scale", own, c.global_scale!);
    }
    const qp = ok(calculateQParams(decodeTensor(c.min!), decodeTensor(c.max!), args, g));
    if (args.dynamic !== false || args.strategy === "tensor") {
      // CT's own dynamic reduction reproduces the statistics and qparams
      const mm = ok(dynamicMinMax(x, args));
      same("dynamic min", mm.min, c.min!);
      same("dynamic max", mm.max, c.max!);
      same("dynamic scale", ok(computeDynamicQParams(x, args, g)).scale, c.scale);
    }
    same("scale", qp.scale, c.scale);
    same("zero_point", qp.zeroPoint, c.zero_point);
    same("quantize", ok(quantize(x, scale, zp, args, g)), c.q);
    same("fake_quantize", ok(fakeQuantize(x, scale, zp, args, g)), c.fq);
  }
};
