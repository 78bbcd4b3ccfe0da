// transformers' Bnb4BitHfQuantizer / Bnb8BitHfQuantizer: quantize on load with bitsandbytes' math and save in
// Linear4bit / Linear8bitLt's state-dict layout (serialization's quantizeBnb4bit / quantizeBnbInt8).
import {
  type TorchFloat,
  bnbQuantStateBytes,
  dequantizeBnb4bit,
  dequantizeBnbInt8,
  parseBnbQuantState,
  quantizeBnb4bit,
  quantizeBnbInt8,
} from "@llmq/serialization";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { hfQuantizeFailed, unsupportedHfQuantization } from "../errors.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { QuantizedTensors, Quantizer } from "../quantizer.js";
import { pyStrings } from "../py-values.js";

/** Linear4bit's blocksize in bitsandbytes 0.50 (BitsAndBytesConfig has no key for it). */
export const BNB_4BIT_BLOCKSIZE = 64;


const common = {
  requiresCalibration: false,
  isSerializable: true,
  isTrainable: true,
  skipModules: (c: HfQuantizationConfig) => pyStrings(c.dict.llm_int8_skip_modules),
  addDefaultSkips: false,
  updateDtype: (_c: HfQuantizationConfig, dtype: TorchFloat | null): TorchFloat => dtype ?? "float32",
} as const;

/** Flags that only place or run the model: saved in the config, no effect on the written tensors. */
const loadingOnly = (c: HfQuantizationConfig): ReadonlyArray<string> =>
  c.dict.llm_int8_enable_fp32_cpu_offload === true ? ["llm_int8_enable_fp32_cpu_offload only places modules at load time: saved in the config, no effect on the written tensors"] : [];

const u8 = (shape: ReadonlyArray<number>, d: Uint8Array) => new Tensor("u8", shape, d);
const f32 = (shape: ReadonlyArray<number>, d: Float32Array) => new Tensor("f32", shape, d);

const quantize4 = (c: HfQuantizationConfig, w: Tensor, dtype: TorchFloat): E.Either<ReturnType<typeof hfQuantizeFailed>, QuantizedTensors> => {
  const [rows, cols] = w.shape as [number, number];
  const quantType = c.dict.bnb_4bit_quant_type as "nf4" | "fp4";
  const q = quantizeBnb4bit(w.data as Float32Array, [rows, cols], { quantType, blocksize: BNB_4BIT_BLOCKSIZE, doubleQuant: c.dict.bnb_4bit_use_double_quant === true, dtype });
  const t: Array<readonly [string, Tensor]> = [
    ["weight", u8([q.weight.length, 1], q.weight)],
    ["weight.absmax", q.absmax instanceof Uint8Array ? u8([q.absmax.length], q.absmax) : f32([q.absmax.length], q.absmax)],
    ["weight.quant_map", f32([16], q.quantMap)],
  ];
  if (q.nestedAbsmax !== undefined && q.nestedQuantMap !== undefined)
    t.push(["weight.nested_absmax", f32([q.nestedAbsmax.length], q.nestedAbsmax)], ["weight.nested_quant_map", f32([256], q.nestedQuantMap)]);
  const state = bnbQuantStateBytes(q.state);
  t.push([`weight.quant_state.bitsandbytes__${quantType}`, u8([state.length], state)]);
  return E.right(t);
};

const need = (parts: ReadonlyMap<string, Tensor>, name: string): E.Either<ReturnType<typeof hfQuantizeFailed>, Tensor> => {
  const t = parts.get(name);
  return t === undefined ? E.left(hfQuantizeFailed("bitsandbytes", `missing ${name}`)) : E.right(t);
};

const dequantize4 = (_c: HfQuantizationConfig, parts: ReadonlyMap<string, Tensor>) => {
  const key = [...parts.keys()].find((k) => k.startsWith("weight.quant_state.bitsandbytes__"));
  if (key === undefined) return E.left(hfQuantizeFailed("bitsandbytes", "no weight.quant_state.bitsandbytes__* tensor"));
  const state = parseBnbQuantState(parts.get(key)!.data as Uint8Array);
  if (E.isLeft(state)) return E.left(hfQuantizeFailed("bitsandbytes", state.left));
  const f = (n: string) => parts.get(n)?.data as Float32Array | undefined;
  return E.chain((w: Tensor) =>
    E.chain((am: Tensor) =>
      E.bimap(
        (m: string) => hfQuantizeFailed("bitsandbytes", m),
        (d: { data: Float32Array; shape: ReadonlyArray<number> }) => f32(d.shape, d.data),
      )(
        dequantizeBnb4bit({
          weight: w.data as Uint8Array,
          absmax: am.data as Float32Array | Uint8Array,
          quantMap: f("weight.quant_map") ?? new Float32Array(0),
          nestedAbsmax: f("weight.nested_absmax"),
          nestedQuantMap: f("weight.nested_quant_map"),
          state: state.right,
        }),
      ),
    )(need(parts, "weight.absmax")),
  )(need(parts, "weight"));
};

export const Bnb4BitQuantizer: Quantizer = {
  name: "bitsandbytes_4bit",
  ...common,
  validateEnvironment: (c) => {
    const t = c.dict.bnb_4bit_quant_type;
    if (t !== "nf4" && t !== "fp4") return E.left(unsupportedHfQuantization("bitsandbytes_4bit", `bnb_4bit_quant_type must be "nf4" or "fp4" (bitsandbytes' 4-bit types), got ${JSON.stringify(t)}`));
    if (c.dict.bnb_4bit_quant_storage !== "uint8")
      return E.left(unsupportedHfQuantization("bitsandbytes_4bit", `bnb_4bit_quant_storage ${JSON.stringify(c.dict.bnb_4bit_quant_storage)}: llmq writes the packed codes as uint8 only`));
    return E.right(loadingOnly(c));
  },
  quantizeLinear: quantize4,
  dequantizeLinear: dequantize4,
};

export const Bnb8BitQuantizer: Quantizer = {
  name: "bitsandbytes_8bit",
  ...common,
  validateEnvironment: (c) =>
    c.dict.llm_int8_has_fp16_weight === true
      ? E.left(unsupportedHfQuantization("bitsandbytes_8bit", "llm_int8_has_fp16_weight=true keeps 16-bit weights for training: there is no int8 checkpoint to write"))
      : E.right(loadingOnly(c)),
  quantizeLinear: (_c, w) => {
    const [rows, cols] = w.shape as [number, number];
    const { cb, scb } = quantizeBnbInt8(w.data as Float32Array, rows, cols);
    return E.right([
      ["weight", new Tensor("i8", [rows, cols], cb)],
      ["SCB", f32([rows], scb)],
      ["weight_format", u8([], new Uint8Array([0]))],
    ]);
  },
  dequantizeLinear: (_c, parts) =>
    E.chain((w: Tensor) =>
      E.chain((scb: Tensor) =>
        E.bimap(
          (m: string) => hfQuantizeFailed("bitsandbytes", m),
          (d: { data: Float32Array; shape: ReadonlyArray<number> }) => f32(d.shape, d.data),
        )(dequantizeBnbInt8(w.data as Int8Array, w.shape, scb.data as Float32Array)),
      )(need(parts, "SCB")),
    )(need(parts, "weight")),
};
