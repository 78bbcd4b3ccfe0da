import {
  type GptqError,
  type GptqResult,
  type HessianState,
  type ScaleDType,
  type WeightQParams,
  formatGptqError,
  gptqQuantizeModule,
  normalizeHessian,
  observeWeightWith,
  weightObserverName,
  quantizeWeight,
} from "@llmq/gptq";
import { type MinMaxStatistics, type Observer, type ObserverState, createObserver, formatObserverError, fusedGlobalScale } from "@llmq/observers";
import { type QuantizationArgs, type QuantizationScheme, dequantize, formatSchemeError, quantize, rtnQuantizeWeight, storageDType } from "@llmq/schemes";
import { type DType, type Tensor, cast, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
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

const isHalf = (d: DType): d is "bf16" | "f16" => d === "bf16" || d === "f16";

const sqErr = (a: Tensor<"f32">, b: Tensor<"f32">): number => {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    s += d * d;
  }
  return s / 2;
};

/** Round-to-nearest with memoryless min-max statistics (QuantizationModifier's weight path). */
export const rtnModule = (
  name: string,
  weight: Tensor,
  args: QuantizationArgs,
  opts: { readonly globalScale?: Tensor<"f32"> | undefined } = {},
): E.Either<LlmqError, QuantizedWeight> => {
  const r = weightObserverName(args) === "memoryless_minmax" ? rtnQuantizeWeight(weight, args, { name, ...(opts.globalScale ? { globalScale: opts.globalScale } : {}) }) : null;
  if (r !== null && E.isLeft(r)) return E.left(schemeFail(name)(r.left));
  let parts: { quantized: Tensor; scale: Tensor; zeroPoint: Tensor; globalScale?: Tensor<"f32"> | undefined };
  if (r !== null && E.isRight(r)) parts = r.right;
  else {
    // Another weight observer (mse, …): its qparams, then compressed-tensors' quantize into the storage dtype.
    if (opts.globalScale !== undefined && args.strategy === "tensor_group")
      return E.left(quantizationError(name, `observer ${args.observer} with fused NVFP4 global scales is not supported; use memoryless_minmax`));
    const qp = observeWeightWith(name, args)(toFloat32(weight));
    if (E.isLeft(qp)) return E.left(quantizationError(name, qp.left));
    const scale = cast(qp.right.scale, isHalf(weight.dtype) ? weight.dtype : "f32");
    const zp = qp.right.zeroPoint ?? cast(scale, "i8");
    const sd = storageDType(args);
    const gs = qp.right.globalScale ?? undefined;
    const q = quantize(weight, scale, args.symmetric ? null : zp, args, { ...(gs ? { globalScale: gs } : {}), ...(sd ? { dtype: sd } : {}) });
    if (E.isLeft(q)) return E.left(schemeFail(name)(q.left));
    parts = { quantized: q.right, scale, zeroPoint: zp, globalScale: gs };
  }
  const { quantized, scale, zeroPoint, globalScale } = parts;
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

/**
 * GPTQ with the module's accumulated Hessian (GPTQModifier's compress step). With a fused global scale (NVFP4 q/k/v,
 * gate/up) the weight qparams are the observer's on the original weight under that shared global scale.
 */
export const gptqModule = (
  name: string,
  weight: Tensor,
  hessian: HessianState,
  args: QuantizationArgs,
  opts: GptqOptions,
  fused: { readonly globalScale?: Tensor<"f32"> | undefined } = {},
): E.Either<LlmqError, QuantizedWeight> => {
  const w32 = toFloat32(weight);
  let r: E.Either<GptqError, GptqResult>;
  if (fused.globalScale === undefined) {
    // The module observes its weight in the stored dtype (bf16 scales for a bf16 model), as llm-compressor does.
    const w = weight.dtype === "bf16" || weight.dtype === "f16" ? (weight as Tensor<"bf16" | "f16">) : w32;
    r = gptqQuantizeModule(name, w, hessian.h, hessian.nSamples, args, { blockSize: opts.blockSize, dampeningFrac: opts.dampeningFrac });
  } else {
    const globalScale = fused.globalScale;
    const observe = (w: Tensor<"f32">): E.Either<string, WeightQParams> =>
      pipe(
        rtnQuantizeWeight(w, args, { name, globalScale }),
        E.bimap(formatSchemeError, (q) => ({ scale: q.scale as Tensor<ScaleDType>, zeroPoint: args.symmetric ? null : q.zeroPoint, globalScale })),
      );
    const qp = observe(w32);
    r = pipe(
      normalizeHessian(hessian, name),
      E.chain((H) =>
        quantizeWeight(w32, H, args, {
          module: name,
          observe,
          blockSize: opts.blockSize,
          dampeningFrac: opts.dampeningFrac,
          ...(E.isRight(qp) && args.actorder !== "group" ? { qparams: qp.right } : {}),
        }),
      ),
    );
  }
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

// ----- fused global scales -----

/** llm-compressor's FUSED_LAYER_NAMES for Llama: these share one NVFP4 global scale (vLLM fuses them). */
export const FUSED_MODULES: ReadonlyArray<ReadonlyArray<string>> = [
  ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
  ["mlp.gate_proj", "mlp.up_proj"],
];

/**
 * The shared global scale of fused partners whose weights are all tensor_group (LC
 * `update_fused_layer_weight_global_scales`): generated from the absmax over all partners. Keyed by module name.
 */
export const fusedGlobalScales = (
  modules: ReadonlyArray<{ readonly name: string; readonly local: string; readonly weight: Tensor; readonly args: QuantizationArgs | null }>,
): E.Either<LlmqError, ReadonlyMap<string, Tensor<"f32">>> => {
  const out = new Map<string, Tensor<"f32">>();
  for (const set of FUSED_MODULES) {
    const members = modules.filter((m) => set.includes(m.local) && m.args?.strategy === "tensor_group");
    if (members.length !== set.length) continue;
    const stats: MinMaxStatistics[] = [];
    for (const m of members) {
      const o = pipe(
        createObserver(m.args!, { tensor: `${m.name}.weight`, kind: "weight" }, "memoryless_minmax"),
        E.chain((obs) => obs.statistics(obs.step(obs.init, toFloat32(m.weight)))),
      );
      if (E.isLeft(o)) return E.left(quantizationError(m.name, formatObserverError(o.left)));
      stats.push(o.right);
    }
    const g = fusedGlobalScale(stats);
    for (const m of members) out.set(m.name, g);
  }
  return E.right(out);
};

// ----- activation observers -----

export interface ActivationObserver {
  readonly observer: Observer;
  state: ObserverState<unknown>;
  readonly args: QuantizationArgs;
  readonly module: string;
}

/**
 * Observers for the static input activations of a layer's modules (FP8 static `input_scale`, NVFP4's "local"
 * `input_global_scale`), keyed by local module name. Dynamic activations need none: they are quantized at runtime.
 */
export const activationObservers = (
  planned: ReadonlyArray<{ readonly module: { readonly name: string }; readonly scheme: QuantizationScheme }>,
  prefix: string,
): E.Either<LlmqError, Map<string, ActivationObserver>> => {
  const out = new Map<string, ActivationObserver>();
  for (const p of planned) {
    const a = p.scheme.input_activations;
    if (a === null || a.dynamic === true) continue;
    const o = createObserver(a, { tensor: `${p.module.name}.input`, kind: "input" });
    if (E.isLeft(o)) return E.left(quantizationError(p.module.name, formatObserverError(o.left)));
    out.set(p.module.name.slice(prefix.length), { observer: o.right, state: o.right.init, args: a, module: p.module.name });
  }
  return E.right(out);
};

/** The on-disk activation qparams of an observed module (`input_scale` [+ `input_zero_point`] or `input_global_scale`). */
export const activationQParams = (a: ActivationObserver | undefined, modelDType: DType): E.Either<LlmqError, ReadonlyArray<readonly [string, Tensor]>> => {
  if (a === undefined) return E.right([]);
  const q = a.observer.finalize(a.state);
  if (E.isLeft(q)) return E.left(quantizationError(a.module, formatObserverError(q.left)));
  if (a.args.dynamic === "local") return q.right.globalScale === null ? E.right([]) : E.right([["input_global_scale", q.right.globalScale]]);
  const scaleDType = modelDType === "bf16" || modelDType === "f16" || modelDType === "f64" ? modelDType : "f32";
  return E.right([
    ["input_scale", cast(q.right.scale, scaleDType)],
    ...(a.args.symmetric ? [] : ([["input_zero_point", q.right.zeroPoint]] as const)),
    ...(q.right.globalScale !== null ? ([["input_global_scale", q.right.globalScale]] as const) : []),
  ]);
};
