import { type ModuleWeightDType, observeWeightWith } from "@llmq/observers";
import type { QuantizationArgs } from "@llmq/schemes";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GptqError, qparamsFailed } from "./errors.js";
import { normalizeHessian } from "./hessian.js";
import { type GptqResult, type WeightQParams, quantizeWeight } from "./quantize-weight.js";

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
      weightDType: weight.dtype,
      ...(qparams ? { qparams } : {}),
      ...(opts.blockSize !== undefined ? { blockSize: opts.blockSize } : {}),
      ...(opts.dampeningFrac !== undefined ? { dampeningFrac: opts.dampeningFrac } : {}),
    });
  });
