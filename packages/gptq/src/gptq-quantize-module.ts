import { createObserver } from "@llmq/observers";
import { type QuantizationArgs, calculateQParams, weightMinMax } from "@llmq/schemes";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GptqError, qparamsFailed } from "./errors.js";
import { normalizeHessian } from "./hessian.js";
import { type GptqResult, type ScaleDType, type WeightQParams, quantizeWeight } from "./quantize-weight.js";

/** Weight dtypes a module may have; GPTQ itself runs in f32 (LC casts to GPTQ_PRECISION). */
export type ModuleWeightDType = "f32" | "bf16" | "f16";

// ----- model -----

export interface GptqModuleOptions {
  /** LC `GPTQModifier.block_size` (default 128). */
  readonly blockSize?: number;
  /** LC `GPTQModifier.dampening_frac` (default 0.01). */
  readonly dampeningFrac?: number;
  /**
   * The act-order to use when it differs from `args.actorder` (the modifier-level value after LC's
   * `resolve_actorder`; the recipe layer resolves the "static" default and conflicts).
   */
  readonly actorder?: QuantizationArgs["actorder"];
}

// ----- observers -----

/**
 * The weight observer LC attaches (`calibration.initialize_observer`): `args.observer`, "memoryless_minmax" when
 * unset, and "minmax" / "static_minmax" forced to "memoryless_minmax" (weights are observed once, memoryless).
 */
export const weightObserverName = (args: QuantizationArgs): string => {
  const o = args.observer;
  if (o == null) return "memoryless_minmax";
  return o === "minmax" || o === "static_minmax" ? "memoryless_minmax" : o;
};

const SCALE_DTYPES: ReadonlyArray<string> = ["f32", "bf16", "f16"];

/**
 * The weight observer LC runs before GPTQ (`observe` + `get_qparams`), as an {@link ObserveWeight}. f32 weights go
 * through the registered @llmq/observers observer. bf16/f16 weights (a bf16 model: LC observes the bf16 parameter,
 * so min/max and the scale arithmetic are bf16) go through @llmq/schemes' `weightMinMax` + `calculateQParams`, which
 * compute in the weight's dtype; that covers memoryless_minmax, the default, and not the MSE search or tensor_group.
 */
export const observeWeightWith =
  (module: string, args: QuantizationArgs) =>
  (weight: Tensor<ModuleWeightDType>): E.Either<string, WeightQParams> => {
    const name = weightObserverName(args);
    if (weight.dtype !== "f32") {
      if (name !== "memoryless_minmax" || args.strategy === "tensor_group")
        return E.left(`observer ${name} (strategy ${args.strategy}) on a ${weight.dtype} weight is not supported; pass the weight as f32`);
      const mm = weightMinMax(weight, args);
      if (E.isLeft(mm)) return E.left(JSON.stringify(mm.left));
      const q = calculateQParams(mm.right.min, mm.right.max, args);
      if (E.isLeft(q)) return E.left(JSON.stringify(q.left));
      return E.right({ scale: q.right.scale as Tensor<ScaleDType>, zeroPoint: q.right.zeroPoint, globalScale: null });
    }
    const created = createObserver(args, { tensor: `${module}.weight`, kind: "weight" }, name);
    if (E.isLeft(created)) return E.left(JSON.stringify(created.left));
    const obs = created.right;
    const q = obs.finalize(obs.step(obs.init, weight as Tensor<"f32">));
    if (E.isLeft(q)) return E.left(JSON.stringify(q.left));
    const { scale, zeroPoint, globalScale } = q.right;
    if (!SCALE_DTYPES.includes(scale.dtype)) return E.left(`observer returned a ${scale.dtype} scale; GPTQ dequantizes in f32/bf16/f16`);
    return E.right({ scale: scale as Tensor<ScaleDType>, zeroPoint, globalScale });
  };

// ----- the pipeline entry -----

/**
 * GPTQ for one module, as `GPTQModifier.compress_module_list` does it for a batch of one: H = hessianSum / nSamples,
 * qparams from the module's weight observer on the ORIGINAL weight (in its own dtype, so a bf16 model gets bf16
 * scales and bf16 dequantization), then {@link quantizeWeight} on the weight cast to f32. Typed errors for
 * empty calibration, NaN/Inf, shapes and args; a Cholesky failure falls back to RTN with a warning naming `name`.
 */
export const gptqQuantizeModule = (
  name: string,
  weight: Tensor<ModuleWeightDType>,
  hessianSum: Tensor<"f32">,
  nSamples: number,
  args: QuantizationArgs,
  opts: GptqModuleOptions = {},
): E.Either<GptqError, GptqResult> =>
  E.flatMap(normalizeHessian({ h: hessianSum, nSamples }, name), (H) => {
    const observe = observeWeightWith(name, args);
    const actorder = opts.actorder === undefined ? args.actorder : opts.actorder;
    // actorder "group" observes the permuted weight inside quantizeWeight; the others observe the original here.
    let qparams: WeightQParams | undefined;
    if (actorder !== "group" && actorder !== "dynamic") {
      const q = observe(weight);
      if (E.isLeft(q)) return E.left(qparamsFailed(name, q.left));
      qparams = q.right;
    }
    return quantizeWeight(weight.dtype === "f32" ? (weight as Tensor<"f32">) : toFloat32(weight), H, args, {
      module: name,
      observe,
      actorder,
      ...(qparams ? { qparams } : {}),
      ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
      ...(opts.dampeningFrac !== undefined ? { dampeningFrac: opts.dampeningFrac } : {}),
    });
  });
