// transformers' FbgemmFp8HfQuantizer: every nn.Linear becomes FbgemmFp8Linear, its weight quantized by FBGEMM's
// torch.ops.fbgemm.quantize_fp8_per_row and saved as `weight` (float8_e4m3fn [out, in]) + `weight_scale` (f32 [out, 1]);
// every other tensor in bfloat16 (update_dtype forces it: the op takes bf16 only). input_scale_ub is a non-persistent
// buffer (not saved): at run time each input row is quantized the same way with its max bounded by activation_scale_ub.
// The op is a CUDA kernel (fbgemm_gpu/experimental/gen_ai/src/quantize/quantize.cu, dynamicQuantizeMatrixRowwise):
// transformers cannot run it without CUDA + fbgemm_gpu, so llmq's writer follows the kernel's source, not an executed
// reference: s = max(min(max|row|, ub) / 448, 1 / (448 · 512)) in f32, q = e4m3(x / s) round-to-nearest-even, saturating.
import { type TorchFloat, dequantizeFp8Rows } from "@llmq/serialization";
import { FP8_E4M3FN_VALUES, Tensor, fp8e4m3FromNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, hfQuantizeFailed, unsupportedHfQuantization } from "../errors.js";
import { isPyNumber, pyNumber, pyRepr, pyStrings } from "../py-values.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { Quantizer } from "../quantizer.js";

const NAME = "fbgemm_fp8";
const E4M3_MAX = 448;
/** quantize.cu's min_scaling_factor = 1.0f / (FP8_E4M3_MAX::value * 512.f). */
const MIN_SCALE = Math.fround(1 / (E4M3_MAX * 512));

/**
 * quantize_fp8_per_row on [rows, cols] f32 values (already bf16 for weights): per row s = max(min(amax, ub)/448, min)
 * in f32, codes e4m3(x / s) (__nv_fp8_e4m3's conversion: nearest even, saturating to ±448). `scaleUb` null: no bound.
 */
export const fbgemmQuantizeFp8PerRow = (x: Float32Array, rows: number, cols: number, scaleUb: number | null): { readonly codes: Uint8Array; readonly scale: Float32Array } => {
  const codes = new Uint8Array(rows * cols);
  const scale = new Float32Array(rows);
  const ub = scaleUb === null ? Infinity : Math.fround(scaleUb);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(x[r * cols + c]!));
    const s = Math.max(Math.fround(Math.min(amax, ub) / E4M3_MAX), MIN_SCALE);
    scale[r] = s;
    for (let c = 0; c < cols; c++) codes[r * cols + c] = fp8e4m3FromNumber(Math.min(E4M3_MAX, Math.max(-E4M3_MAX, Math.fround(x[r * cols + c]! / s))));
  }
  return { codes, scale };
};

/** FbgemmFp8Linear's input quantization (scale_ub = activation_scale_ub), dequantized: e4m3(x / s) · s per row. */
export const fbgemmFakeQuantizeInput = (x: Float32Array, rows: number, cols: number, scaleUb: number): Float32Array => {
  const { codes, scale } = fbgemmQuantizeFp8PerRow(x, rows, cols, scaleUb);
  return Float32Array.from(codes, (q, i) => FP8_E4M3FN_VALUES[q]! * scale[Math.floor(i / cols)]!);
};

const scaleUbOf = (c: HfQuantizationConfig): E.Either<HfQuantizerError, number> => {
  const ub = c.dict.activation_scale_ub;
  return isPyNumber(ub) && pyNumber(ub) > 0
    ? E.right(pyNumber(ub))
    : E.left(unsupportedHfQuantization(NAME, `activation_scale_ub must be a positive number (the bound on each input row's max), got ${pyRepr(ub ?? null)}`));
};

export const FbgemmFp8Quantizer: Quantizer = {
  name: NAME,
  requiresCalibration: false,
  isSerializable: true,
  isTrainable: false,
  skipModules: (c) => pyStrings(c.dict.modules_to_not_convert),
  addDefaultSkips: false,
  validateEnvironment: (c) =>
    E.map(() => [
      "FbgemmFp8Config: transformers quantizes with FBGEMM's CUDA kernel (quantize_fp8_per_row), which cannot run here; llmq follows that kernel's source (per-row max / 448, e4m3 nearest-even), checked against no executed reference",
    ])(scaleUbOf(c)),
  updateDtype: (_c: HfQuantizationConfig, _dtype: TorchFloat | null): TorchFloat => "bfloat16",
  quantizeLinear: (_c, w) => {
    const [out, inF] = w.shape as [number, number];
    const q = fbgemmQuantizeFp8PerRow(w.data as Float32Array, out, inF, null);
    return E.right([
      ["weight", new Tensor("f8_e4m3fn", [out, inF], q.codes)],
      ["weight_scale", new Tensor("f32", [out, 1], q.scale)],
    ]);
  },
  dequantizeLinear: (_c, parts) => {
    const [w, s] = [parts.get("weight"), parts.get("weight_scale")];
    if (w === undefined || s === undefined || w.dtype !== "f8_e4m3fn" || s.dtype !== "f32") return E.left(hfQuantizeFailed(NAME, "an FbgemmFp8Linear stores weight (float8_e4m3fn) and weight_scale (float32)"));
    const d = dequantizeFp8Rows(Float32Array.from(w.data as Uint8Array, (q) => FP8_E4M3FN_VALUES[q]!), w.shape, s.data as Float32Array);
    return E.isLeft(d) ? E.left(hfQuantizeFailed(NAME, d.left)) : E.right(new Tensor("f32", d.right.shape, d.right.data));
  },
  // weight_scale first: it marks a quantized module (every module has a weight).
  storedParts: ["weight_scale", "weight"],
  denseShape: (shapes) => shapes.get("weight"),
  inputQuantizer: (c) => E.map((ub: number) => (x: Float32Array, rows: number, cols: number) => fbgemmFakeQuantizeInput(x, rows, cols, ub))(scaleUbOf(c)),
};
