import { type QuantizationArgs, type QuantizationScheme, dequantize, formatSchemeError, quantize, rtnQuantizeWeight, storageDType } from "@llmq/schemes";
import { type DType, type Tensor, cast, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import { formatObserverError } from "./errors.js";
import { type ModifierError, type QuantizedWeight, modifierError } from "./modifier.js";
import { observeWeightWith, weightObserverName } from "./observe-weight.js";
import type { Observer } from "./observer.js";
import { type QParams, fusedGlobalScale } from "./qparams-from-statistics.js";
import { createObserver } from "./registry.js";
import type { MinMaxStatistics } from "./statistics.js";

// One module's weight → its compressed-tensors parameters (codes, scale, zero point, global scale, g_idx) and the
// fake-quantized f32 weight the sequential pipeline propagates through. Pure: the caller owns all inputs.

// ----- algorithms -----

const quantizationError = (module: string, detail: string, cause: { readonly _tag: string } | null = null): ModifierError =>
  modifierError("QuantizationModifier", module, detail, cause);
const schemeFail = (name: string) => (e: Parameters<typeof formatSchemeError>[0]): ModifierError => quantizationError(name, formatSchemeError(e), e);

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
): E.Either<ModifierError, QuantizedWeight> => {
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

// ----- fused global scales -----

/**
 * The shared global scale of fused partners whose weights are all tensor_group (LC
 * `update_fused_layer_weight_global_scales`): generated from the absmax over all partners. Keyed by module name.
 */
export const fusedGlobalScales = (
  modules: ReadonlyArray<{ readonly name: string; readonly local: string; readonly weight: Tensor; readonly args: QuantizationArgs | null }>,
  fusedGroups: ReadonlyArray<ReadonlyArray<string>>,
): E.Either<ModifierError, ReadonlyMap<string, Tensor<"f32">>> => {
  const out = new Map<string, Tensor<"f32">>();
  for (const set of fusedGroups) {
    const members = modules.filter((m) => set.includes(m.local) && m.args?.strategy === "tensor_group");
    if (members.length !== set.length) continue;
    const stats: MinMaxStatistics[] = [];
    for (const m of members) {
      const o = pipe(
        createObserver(m.args!, { tensor: `${m.name}.weight`, kind: "weight" }, "memoryless_minmax"),
        E.chain((obs) => obs.statistics(obs.step(obs.init, toFloat32(m.weight)))),
      );
      if (E.isLeft(o)) return E.left(quantizationError(m.name, formatObserverError(o.left), o.left));
      stats.push(o.right);
    }
    const g = fusedGlobalScale(stats);
    for (const m of members) out.set(m.name, g);
  }
  return E.right(out);
};

// ----- activation observers -----

/**
 * The observer of a module's static input activations (FP8 static `input_scale`, NVFP4's "local"
 * `input_global_scale`); null for dynamic activations, which are quantized at run time and need none.
 */
export const inputObserver = (module: string, scheme: QuantizationScheme): E.Either<ModifierError, Observer | null> => {
  const a = scheme.input_activations;
  if (a === null || a.dynamic === true) return E.right(null);
  return pipe(
    createObserver(a, { tensor: `${module}.input`, kind: "input" }),
    E.mapLeft((e) => quantizationError(module, formatObserverError(e), e)),
  );
};

/** The dtype compressed-tensors gives a module's activation (and kv-cache) qparams: the model's float dtype, else f32. */
export const activationScaleDType = (modelDType: DType): "f32" | "bf16" | "f16" | "f64" =>
  modelDType === "bf16" || modelDType === "f16" || modelDType === "f64" ? modelDType : "f32";

/** The on-disk activation qparams of an observed module (`input_scale` [+ `input_zero_point`] or `input_global_scale`). */
export const activationQParams = (
  module: string,
  args: QuantizationArgs,
  observed: E.Either<Parameters<typeof formatObserverError>[0], QParams>,
  modelDType: DType,
): E.Either<ModifierError, ReadonlyArray<readonly [string, Tensor]>> => {
  if (E.isLeft(observed)) return E.left(quantizationError(module, formatObserverError(observed.left), observed.left));
  const q = observed.right;
  if (args.dynamic === "local") return E.right(q.globalScale === null ? [] : [["input_global_scale", q.globalScale]]);
  return E.right([
    ["input_scale", cast(q.scale, activationScaleDType(modelDType))],
    ...(args.symmetric ? [] : ([["input_zero_point", q.zeroPoint]] as const)),
    ...(q.globalScale !== null ? ([["input_global_scale", q.globalScale]] as const) : []),
  ]);
};
