// transformers 5.24's EetqHfQuantizer: every nn.Linear not skipped becomes an EetqLinear whose weight EetqQuantize
// fills from kernels-community/quantization-eetq's quant_weights on the transposed weight — `weight` int8 [in, out] in
// EETQ's preprocessed layout and `weight_scales` [out] in the weight's dtype (quant_weights returns scales of the
// input's dtype) — saved under those names. The layout is the one EETQ writes on SM 75–89 (@llmq/serialization
// eetqPreprocess, byte for byte EETQ's cutlass_preprocessors.cc); transformers loads it only on such a CUDA GPU.
import { dequantizeEetq, eetqPreprocess, eetqQuantize, eetqShapeError } from "@llmq/serialization";
import { Tensor, f16FromNumber, f16ToNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, hfQuantizeFailed, unsupportedHfQuantization } from "../errors.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { QuantizedTensors, Quantizer } from "../quantizer.js";
import { pyStrings } from "../py-values.js";


const LOAD =
  "transformers loads EETQ checkpoints only on a CUDA GPU of SM 75-89 (its EetqHfQuantizer needs CUDA; EETQ's GEMM is CUDA-only and its preprocessing refuses SM 90+): llmq writes the SM 75-89 weight layout";

const quantizeEetq = (_c: HfQuantizationConfig, w: Tensor, dtype: string): E.Either<HfQuantizerError, QuantizedTensors> => {
  if (dtype !== "float32" && dtype !== "float16")
    return E.left(unsupportedHfQuantization("eetq", `EETQ's quant_weights takes float16 or float32 weights ("Invalid datatype. Weight must be FP16 or FP32"), not ${dtype}: load in float16 or float32`));
  const [out, inF] = w.shape as [number, number];
  const bad = eetqShapeError(inF, out);
  if (bad !== null) return E.left(hfQuantizeFailed("eetq", `a [${out}, ${inF}] linear: ${bad}; transformers' EETQ fails on it too: list the module in modules_to_not_convert`));
  const q = eetqQuantize(w.data as Float32Array, out, inF);
  const pre = eetqPreprocess(q.codes, inF, out);
  if (E.isLeft(pre)) return E.left(hfQuantizeFailed("eetq", pre.left));
  const scales = dtype === "float16" ? new Tensor("f16", [out], Uint16Array.from(q.scales, f16FromNumber)) : new Tensor("f32", [out], q.scales);
  return E.right([
    ["weight", new Tensor("i8", [inF, out], pre.right)],
    ["weight_scales", scales],
  ]);
};

const dequantize = (_c: HfQuantizationConfig, parts: ReadonlyMap<string, Tensor>): E.Either<HfQuantizerError, Tensor> => {
  const [w, s] = [parts.get("weight"), parts.get("weight_scales")];
  if (w === undefined || s === undefined || w.dtype !== "i8") return E.left(hfQuantizeFailed("eetq", "an EETQ linear stores an int8 weight and weight_scales"));
  if (s.dtype !== "f32" && s.dtype !== "f16") return E.left(hfQuantizeFailed("eetq", `weight_scales is ${s.dtype}, not float32 / float16`));
  const scales = s.dtype === "f16" ? Float32Array.from(s.data as Uint16Array, f16ToNumber) : (s.data as Float32Array);
  const d = dequantizeEetq(w.data as Int8Array, w.shape, scales);
  return E.isLeft(d) ? E.left(hfQuantizeFailed("eetq", d.left)) : E.right(new Tensor("f32", d.right.shape, d.right.data));
};

export const EetqQuantizer: Quantizer = {
  name: "eetq",
  requiresCalibration: false,
  isSerializable: true,
  isTrainable: true,
  skipModules: (c) => pyStrings(c.dict.modules_to_not_convert),
  addDefaultSkips: false,
  validateEnvironment: () => E.right([LOAD]),
  updateDtype: (_c, dtype) => dtype ?? "float32",
  quantizeLinear: quantizeEetq,
  // llmq's built-in EETQ reader (@llmq/serialization's quantized checkpoints) opens the directory for eval / inspect /
  // convert --from eetq; this is the same dequantization for the Quantizer contract.
  dequantizeLinear: dequantize,
};
