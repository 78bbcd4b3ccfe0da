// transformers' HqqHfQuantizer (HQQLinear per linear, compute_dtype = the load dtype) with issue 18's hqq 0.2.8
// Quantizer.quantize port (@llmq/schemes hqqQuantize) and BitPack (@llmq/serialization hqqPack), saved as
// HQQLinear.state_dict() names it: W_q, scale and zero in the compute dtype, and the meta hqq encodes as tensors.
// transformers 5.24 itself cannot quantize with HQQ on load (get_quantize_ops raises "not available yet"), so the
// layout is hqq's own (what transformers 4.x saved) and the reference is the hqq package.
import { HQQ_BITS, type HqqBits, formatSchemeError, hqqQuantize } from "@llmq/schemes";
import { type PyJsonObject, type TorchFloat, hqqPack, roundTo } from "@llmq/serialization";
import { Tensor, bf16FromNumber, f16FromNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, hfQuantizeFailed, unsupportedHfQuantization } from "../errors.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { QuantizedTensors, Quantizer } from "../quantizer.js";
import { isPyDict, pyRepr, pyStrings } from "../py-values.js";

/** hqq's Quantizer.bit_to_packing. */
const PACKING: Readonly<Record<number, string>> = { 8: "8bit_u8", 6: "8bit_u8", 5: "8bit_u8", 4: "4bit_u8", 3: "3bit_32", 2: "2bit_u8", 1: "1bit_u8" };

interface HqqParams {
  readonly nbits: HqqBits;
  readonly groupSize: number | null;
  readonly axis: 0 | 1;
  readonly channelWise: boolean;
  readonly optimize: boolean;
  readonly roundZero: boolean;
  readonly viewAsFloat: boolean;
}

const bad = (m: string): E.Either<HfQuantizerError, never> => E.left(unsupportedHfQuantization("hqq", m));

/** quant_config as HqqConfig stores it: one weight_quant_params block, no deprecated meta quantization. */
export const hqqParamsOf = (c: HfQuantizationConfig): E.Either<HfQuantizerError, HqqParams> => {
  const qc = c.dict.quant_config;
  if (!isPyDict(qc) || !isPyDict(qc.weight_quant_params)) return bad(`quant_config must hold weight_quant_params (one config for every layer), got ${pyRepr(qc)}`);
  if ((qc.scale_quant_params ?? null) !== null || (qc.zero_quant_params ?? null) !== null || qc.offload_meta === true)
    return bad("quantized scale/zero meta and offload_meta are deprecated in hqq and not supported for serialization");
  const w = qc.weight_quant_params as PyJsonObject;
  const nbits = w.nbits;
  if (typeof nbits !== "number" || !Object.hasOwn(PACKING, nbits) || !(HQQ_BITS as ReadonlyArray<number>).includes(nbits))
    return bad(`nbits ${pyRepr(nbits)}: llmq packs ${Object.keys(PACKING).join(", ")} (1.58 has no serializable packing)`);
  const gs = w.group_size ?? null;
  if (gs !== null && (typeof gs !== "number" || !Number.isSafeInteger(gs) || gs <= 0)) return bad(`group_size ${pyRepr(gs)} must be a positive integer or null`);
  if (w.axis !== 0 && w.axis !== 1) return bad(`axis ${pyRepr(w.axis)} must be 0 or 1`);
  const flag = (k: string, d: boolean) => (w[k] === undefined ? d : w[k] === true);
  return E.right({ nbits: nbits as HqqBits, groupSize: gs, axis: w.axis, channelWise: flag("channel_wise", true), optimize: flag("optimize", true), roundZero: flag("round_zero", false), viewAsFloat: flag("view_as_float", false) });
};

const chars = (s: string) => new Tensor("u8", [s.length], new TextEncoder().encode(s));
const u8 = (v: number) => new Tensor("u8", [], new Uint8Array([v]));
const i32 = (v: number) => new Tensor("i32", [], new Int32Array([v]));
const LLMQ: Readonly<Record<TorchFloat, "f32" | "f16" | "bf16">> = { float32: "f32", float16: "f16", bfloat16: "bf16" };

/** A float tensor in the compute dtype (HQQLinear casts scale and zero to it). */
const inDtype = (t: Tensor, dtype: TorchFloat): Tensor => {
  const v = t.data as Float32Array;
  if (dtype === "float32") return new Tensor("f32", t.shape, v.map(roundTo("float32")));
  const enc = dtype === "float16" ? f16FromNumber : bf16FromNumber;
  return new Tensor(LLMQ[dtype], t.shape, Uint16Array.from(v, enc));
};

/** view_as_float: W_q's bytes reinterpreted as the compute dtype ([rows, bytes/elem]). */
const viewAs = (bytes: Uint8Array, rows: number, dtype: TorchFloat): Tensor => {
  const buf = bytes.slice().buffer;
  if (dtype === "float32") return new Tensor("f32", [rows, bytes.length / 4 / rows], new Float32Array(buf));
  return new Tensor(LLMQ[dtype], [rows, bytes.length / 2 / rows], new Uint16Array(buf));
};

const quantizeHqq = (c: HfQuantizationConfig, w: Tensor, dtype: TorchFloat): E.Either<HfQuantizerError, QuantizedTensors> => {
  const p = hqqParamsOf(c);
  if (E.isLeft(p)) return p;
  const { nbits, groupSize, axis, channelWise, optimize, roundZero, viewAsFloat } = p.right;
  const q = hqqQuantize(w, { nbits, groupSize, axis, channelWise, optimize, roundZero });
  if (E.isLeft(q)) return E.left(hfQuantizeFailed("hqq", formatSchemeError(q.left)));
  const packing = PACKING[nbits]!;
  const [rows, cols] = q.right.codes.shape as [number, number];
  const packed = hqqPack(q.right.codes.data, packing, rows, cols);
  if (packed === undefined) return E.left(hfQuantizeFailed("hqq", `cannot pack ${rows} rows with ${packing}`));
  const word = packing === "3bit_32" ? "torch.int32" : "torch.uint8";
  const wq = viewAsFloat
    ? viewAs(packed.bytes, packed.shape[0], dtype)
    : word === "torch.int32"
      ? new Tensor("i32", packed.shape, new Int32Array(packed.bytes.slice().buffer))
      : new Tensor("u8", packed.shape, packed.bytes);
  const [out, inF] = w.shape as [number, number];
  return E.right([
    ["W_q", wq],
    ["nbits", i32(nbits)],
    ["group_size", i32(groupSize ?? (axis === 1 ? inF : out))],
    ["shape", new Tensor("i64", [2], BigInt64Array.from([BigInt(out), BigInt(inF)]))],
    ["scale", inDtype(q.right.scale, dtype)],
    ["zero", inDtype(q.right.zero, dtype)],
    ["axis", i32(axis)],
    ["packing", chars(packing)],
    ["unpack_view_dtype", chars(word)],
    ["view_as_float", u8(viewAsFloat ? 1 : 0)],
    ["quant_scale", u8(0)],
    ["quant_zero", u8(0)],
    ["compute_dtype", chars(`torch.${dtype}`)],
    ["offload_meta", u8(0)],
    ["encoded_state_dict", u8(1)],
    ["stores_quant_config", u8(1)],
    ["channel_wise", u8(channelWise ? 1 : 0)],
    ["optimize", u8(optimize ? 1 : 0)],
    ["round_zero", u8(roundZero ? 1 : 0)],
  ]);
};


export const HqqQuantizer: Quantizer = {
  name: "hqq",
  requiresCalibration: false,
  isSerializable: true,
  isTrainable: true,
  skipModules: (c) => pyStrings(c.dict.skip_modules),
  addDefaultSkips: false,
  validateEnvironment: (c) => E.map(() => ["transformers 5.24 cannot quantize with HQQ on load nor load HQQ checkpoints (its HqqHfQuantizer has no load ops): the directory follows hqq's HQQLinear.state_dict layout (transformers 4.x)"])(hqqParamsOf(c)),
  updateDtype: (_c, dtype) => dtype ?? "float32",
  quantizeLinear: quantizeHqq,
};
