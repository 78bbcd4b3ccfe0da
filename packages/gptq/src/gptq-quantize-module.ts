import { createObserver } from "@llmq/observers";
import type { QuantizationArgs } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GptqError, qparamsFailed } from "./errors.js";
import { normalizeHessian } from "./hessian.js";
import { type GptqResult, type ObserveWeight, type ScaleDType, type WeightQParams, quantizeWeight } from "./quantize-weight.js";

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

/** An {@link ObserveWeight} running the registered @llmq/observers weight observer once (LC `observe` + `get_qparams`). */
export const observeWeightWith =
  (module: string, args: QuantizationArgs): ObserveWeight =>
  (weight) => {
    const created = createObserver(args, { tensor: `${module}.weight`, kind: "weight" }, weightObserverName(args));
    if (E.isLeft(created)) return E.left(JSON.stringify(created.left));
    const obs = created.right;
    const q = obs.finalize(obs.step(obs.init, weight));
    if (E.isLeft(q)) return E.left(JSON.stringify(q.left));
    const { scale, zeroPoint, globalScale } = q.right;
    if (!SCALE_DTYPES.includes(scale.dtype)) return E.left(`observer returned a ${scale.dtype} scale; GPTQ dequantizes in f32/bf16/f16`);
    return E.right<string, WeightQParams>({ scale: scale as Tensor<ScaleDType>, zeroPoint, globalScale });
  };

// ----- the pipeline entry -----

/**
 * GPTQ for one module, as `GPTQModifier.compress_module_list` does it for a batch of one: H = hessianSum / nSamples,
 * qparams from the module's weight observer on the ORIGINAL weight, then {@link quantizeWeight}. Typed errors for
 * empty calibration, NaN/Inf, shapes and args; a Cholesky failure falls back to RTN with a warning naming `name`.
 */
export const gptqQuantizeModule = (
  name: string,
  weight: Tensor<"f32">,
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
    return quantizeWeight(weight, H, args, {
      module: name,
      observe,
      actorder,
      ...(qparams ? { qparams } : {}),
      ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
      ...(opts.dampeningFrac !== undefined ? { dampeningFrac: opts.dampeningFrac } : {}),
    });
  });
