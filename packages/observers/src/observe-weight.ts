import { type QuantizationArgs, calculateQParams, weightMinMax } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { createObserver } from "./registry.js";

// The weight observer llm-compressor runs before RTN or GPTQ, for a module's weight in its stored dtype.

/** Weight dtypes a module may have; GPTQ itself runs in f32 (LC casts to GPTQ_PRECISION). */
export type ModuleWeightDType = "f32" | "bf16" | "f16";

/** Scale dtypes a weight observer returns. */
export type ScaleDType = "f32" | "bf16" | "f16";

/** Weight qparams as RTN and GPTQ use them. */
/**
 * Weight qparams as the observer produced them. Shapes: tensor [1]; channel [rows, 1]; group / tensor_group
 * [rows, cols / group_size]; block [⌈rows / bh⌉, ⌈cols / bw⌉]. `zeroPoint` is ignored for symmetric args.
 */
export interface WeightQParams {
  readonly scale: Tensor<ScaleDType>;
  readonly zeroPoint: Tensor | null;
  /** tensor_group (NVFP4) only: the f32 global scale [1]; the effective scale is scale / globalScale. */
  readonly globalScale?: Tensor<"f32"> | null;
}


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

