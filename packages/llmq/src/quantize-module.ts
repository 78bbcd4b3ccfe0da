import { type HessianState, formatGptqError, gptqQuantizeModule } from "@llmq/gptq";
import { type QuantizationArgs, dequantize, formatSchemeError, rtnQuantizeWeight } from "@llmq/schemes";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, quantizationError } from "./errors.js";
import type { GptqOptions } from "./recipe.js";

// One module's weight → its compressed-tensors parameters (codes, scale, zero point, global scale, g_idx) and the
// fake-quantized f32 weight the sequential pipeline propagates through. Pure: the caller owns all inputs.

// ----- model -----

export interface QuantizedWeight {
  readonly name: string;
  /** Storage codes (int8/int16/int32 for int, f8_e4m3fn / f4_e2m1 for floats), [out, in]. */
  readonly quantized: Tensor;
  readonly scale: Tensor;
  /** Present for asymmetric args only (compressors drop it otherwise). */
  readonly zeroPoint: Tensor | null;
  readonly globalScale: Tensor<"f32"> | null;
  readonly gIdx: Tensor<"i32"> | null;
  /** The dequantized weight in f32 (what a loader of the checkpoint computes). */
  readonly fakeQuantized: Tensor<"f32">;
  /** GPTQ's loss (Σ ((w − q)/d)² / 2) or, for RTN, Σ (w − q)² / 2 over the weight. */
  readonly loss: number;
  readonly method: "rtn" | "gptq";
  readonly warnings: ReadonlyArray<string>;
}


// ----- algorithms -----

const schemeFail = (name: string) => (e: Parameters<typeof formatSchemeError>[0]): LlmqError => quantizationError(name, formatSchemeError(e));

const sqErr = (a: Tensor<"f32">, b: Tensor<"f32">): number => {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    s += d * d;
  }
  return s / 2;
};

/** Round-to-nearest with memoryless min-max statistics (QuantizationModifier's weight path). */
export const rtnModule = (name: string, weight: Tensor, args: QuantizationArgs): E.Either<LlmqError, QuantizedWeight> => {
  const r = rtnQuantizeWeight(weight, args, { name });
  if (E.isLeft(r)) return E.left(schemeFail(name)(r.left));
  const { quantized, scale, zeroPoint, globalScale } = r.right;
  const dq = dequantize(quantized, scale, args.symmetric ? null : zeroPoint, args, { ...(globalScale ? { globalScale } : {}), dtype: "f32" });
  if (E.isLeft(dq)) return E.left(schemeFail(name)(dq.left));
  const fq = dq.right as Tensor<"f32">;
  return E.right({
    name,
    quantized,
    scale,
    zeroPoint: args.symmetric ? null : zeroPoint,
    globalScale: globalScale ?? null,
    gIdx: null,
    fakeQuantized: fq,
    loss: sqErr(toFloat32(weight), fq),
    method: "rtn",
    warnings: [],
  });
};

/** GPTQ with the module's accumulated Hessian (GPTQModifier's compress step). */
export const gptqModule = (
  name: string,
  weight: Tensor,
  hessian: HessianState,
  args: QuantizationArgs,
  opts: GptqOptions,
): E.Either<LlmqError, QuantizedWeight> => {
  const r = gptqQuantizeModule(name, toFloat32(weight), hessian.h, hessian.nSamples, args, {
    blockSize: opts.blockSize,
    dampeningFrac: opts.dampeningFrac,
  });
  if (E.isLeft(r)) return E.left(quantizationError(name, formatGptqError(r.left)));
  const g = r.right;
  return E.right({
    name,
    quantized: g.quantized,
    scale: g.scale,
    zeroPoint: args.symmetric ? null : g.zeroPoint,
    globalScale: g.globalScale,
    gIdx: g.gIdx,
    fakeQuantized: g.fakeQuantized,
    loss: g.loss,
    method: "gptq",
    warnings: g.warnings,
  });
};
