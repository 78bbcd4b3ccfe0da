// transformers 5.24's quantizers whose quantize-on-load step llmq does not run: their flags as transformers declares
// them (requires_calibration, is_serializable, is_trainable, read from the installed classes) and the reason llmq
// refuses, so `llmq inspect` names them and `llmq quantize --hf-config` says what to do instead.
import type { TorchFloat } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { unsupportedHfQuantization } from "../errors.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { Quantizer } from "../quantizer.js";
import { pyStrings } from "../py-values.js";


interface Declared {
  readonly name: string;
  readonly requiresCalibration: boolean;
  readonly isSerializable: boolean;
  readonly isTrainable: boolean;
  /** The config key holding the method's skip list. */
  readonly skipKey: string | null;
  /** Why llmq does not quantize on load with it, and what to use instead. */
  readonly refusal: string;
  readonly notSerializable?: string;
}

const declared = (d: Declared): Quantizer => ({
  name: d.name,
  requiresCalibration: d.requiresCalibration,
  isSerializable: d.isSerializable,
  ...(d.notSerializable !== undefined ? { notSerializable: d.notSerializable } : {}),
  isTrainable: d.isTrainable,
  skipModules: (c: HfQuantizationConfig) => (d.skipKey === null ? null : pyStrings(c.dict[d.skipKey])),
  addDefaultSkips: false,
  validateEnvironment: () => E.left(unsupportedHfQuantization(d.name, d.refusal)),
  updateDtype: (_c: HfQuantizationConfig, dtype: TorchFloat | null): TorchFloat => dtype ?? "float32",
});

const CT = "write compressed-tensors instead (llmq quantize --scheme …), which vLLM and transformers load";

export const DECLARED_QUANTIZERS: ReadonlyArray<Quantizer> = [
  declared({ name: "gptq", requiresCalibration: false, isSerializable: true, isTrainable: true, skipKey: null, refusal: "GPTQConfig is not a quantize-on-load step in llmq: it runs llmq's GPTQ on calibration data (llmq quantize --hf-config '{\"quant_method\": \"gptq\", …}' --dataset <file>, or hfQuantizeCommand with calibration) and writes the AutoGPTQ / GPTQModel layout" }),
  declared({ name: "awq", requiresCalibration: true, isSerializable: true, isTrainable: true, skipKey: "modules_to_not_convert", refusal: "AwqConfig requires calibration in transformers (AutoAWQ makes the checkpoint): llmq runs its own AWQ on calibration data (llmq quantize --hf-config '{\"quant_method\": \"awq\", …}' --dataset <file>) and writes AutoAWQ's GEMM / GEMV layout" }),
  declared({ name: "aqlm", requiresCalibration: true, isSerializable: true, isTrainable: true, skipKey: "linear_weights_not_to_quantize", refusal: "AQLM needs calibration (transformers' AqlmHfQuantizer requires_calibration): llmq reads AQLM checkpoints (llmq convert --from aqlm) but does not make them" }),
  declared({ name: "compressed-tensors", requiresCalibration: true, isSerializable: true, isTrainable: false, skipKey: null, refusal: "compressed-tensors checkpoints are made by llmq quantize --scheme / --recipe" }),
  declared({
    name: "quanto",
    requiresCalibration: false,
    isSerializable: false,
    isTrainable: true,
    skipKey: "modules_to_not_convert",
    refusal: `transformers cannot save quanto models (QuantoHfQuantizer.is_serializable is False); ${CT}`,
    notSerializable: `transformers cannot save quanto models (QuantoHfQuantizer.is_serializable is False): ${CT}, e.g. --scheme W8A16 for quanto's int8 weights`,
  }),
];
