// A third-party quantization method as a separate package would ship one (test only: a 4-bit sign-magnitude toy).
// Importing it registers a transformers-style config class ("sign-magnitude") and its quantizer with llmq:
//   LLMQ_PLUGINS=<this directory>/index.mjs llmq quantize --hf-config '{"quant_method": "sign-magnitude"}' …
// Per group of `group_size` inputs: scale = absmax / 7 (f32), code = sign (bit 3) | round(|w| / scale) (bits 0-2),
// two codes per byte (the first in the low nibble); stored as <m>.weight_packed (u8 [out, in/2]) and
// <m>.weight_scale (f32 [out, in/group_size]).
import { Kwargs, configOf, fail, hfQuantizeFailed, isPyInt, pyRepr, registerQuantizationConfig, registerQuantizer } from "@llmq/hf-quantizers";
import { Tensor, roundHalfEven } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";

const CLS = "SignMagnitudeConfig";
const METHOD = "sign-magnitude";

const create = (kwargs) => {
  const kw = new Kwargs(kwargs);
  const dict = { quant_method: METHOD, group_size: kw.take("group_size", 32), modules_to_not_convert: kw.take("modules_to_not_convert", null) };
  if (!isPyInt(dict.group_size) || dict.group_size <= 0) return fail(CLS, "group_size", "ValueError", `group_size must be a positive int, got ${pyRepr(dict.group_size)}`);
  return E.right(configOf(CLS, METHOD, dict, kw.ignored(), null));
};

export const SignMagnitudeConfig = { name: CLS, quantMethod: METHOD, create, fromDict: create };


const quantizeLinear = (c, w) => {
  const [out, inF] = w.shape;
  const g = c.dict.group_size;
  if (inF % g !== 0 || inF % 2 !== 0) return E.left(hfQuantizeFailed(METHOD, `in_features ${inF} is not a multiple of group_size ${g} (and of 2)`));
  const x = w.data;
  const packed = new Uint8Array((out * inF) / 2);
  const scales = new Float32Array((out * inF) / g);
  for (let k = 0; k < scales.length; k++) {
    let m = 0;
    for (let i = k * g; i < (k + 1) * g; i++) m = Math.max(m, Math.abs(x[i]));
    const s = Math.fround(m / 7);
    scales[k] = s;
    for (let i = k * g; i < (k + 1) * g; i++) {
      const mag = s === 0 ? 0 : Math.min(7, roundHalfEven(Math.abs(x[i]) / s));
      const code = (x[i] < 0 && mag > 0 ? 8 : 0) | mag;
      packed[i >> 1] |= i & 1 ? code << 4 : code;
    }
  }
  return E.right([
    ["weight_packed", new Tensor("u8", [out, inF / 2], packed)],
    ["weight_scale", new Tensor("f32", [out, inF / g], scales)],
  ]);
};

const dequantizeLinear = (c, parts) => {
  const p = parts.get("weight_packed");
  const s = parts.get("weight_scale");
  if (p === undefined || s === undefined) return E.left(hfQuantizeFailed(METHOD, "missing weight_packed or weight_scale"));
  const [out, half] = p.shape;
  const inF = half * 2;
  const g = inF / s.shape[1];
  const y = new Float32Array(out * inF);
  for (let i = 0; i < y.length; i++) {
    const code = (p.data[i >> 1] >> (i & 1 ? 4 : 0)) & 0xf;
    y[i] = Math.fround((code & 8 ? -1 : 1) * (code & 7) * s.data[Math.floor(i / g)]);
  }
  return E.right(new Tensor("f32", [out, inF], y));
};

export const SignMagnitudeQuantizer = {
  name: METHOD,
  requiresCalibration: false,
  isSerializable: true,
  isTrainable: false,
  skipModules: (c) => c.dict.modules_to_not_convert,
  addDefaultSkips: true,
  validateEnvironment: () => E.right([]),
  updateDtype: (_c, dtype) => dtype ?? "float32",
  quantizeLinear,
  dequantizeLinear,
  storedParts: ["weight_packed", "weight_scale"],
  denseShape: (shapes) => {
    const p = shapes.get("weight_packed");
    return p && [p[0], p[1] * 2];
  },
};

for (const r of [registerQuantizationConfig(METHOD, SignMagnitudeConfig), registerQuantizer(METHOD, SignMagnitudeQuantizer)])
  if (E.isLeft(r)) throw new Error(r.left.message);
