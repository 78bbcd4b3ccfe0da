// torchao 0.18's Int4WeightOnlyConfig with its default int4_packing_format "plain" (Int4Tensor.from_hp) and
// int4_choose_qparams_algorithm "tinygemm": mslk's int4_row_quantize_zp (asymmetric min/max per group of group_size
// input columns, computed in f32) and pack_int4 (two int4 per byte, even column in the low nibble). The scale and
// zero point are stored in the load dtype, transposed to [in / group_size, out]. A weight whose in_features is not a
// multiple of group_size is left dense (torchao's _int4_weight_only_quantize_tensor).
import { type PyJson, type PyJsonObject, type TorchFloat, roundTo } from "@llmq/serialization";
import { Tensor, cast, roundHalfEven } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, hfQuantizeFailed, unsupportedHfQuantization } from "../errors.js";
import { isPyDict, pyRepr } from "../py-values.js";
import { LLMQ_DTYPE } from "../quantize-on-load.js";

export interface TorchAoInt4Params {
  readonly configType: "Int4WeightOnlyConfig";
  readonly groupSize: number;
}

const bad = (m: string): E.Either<HfQuantizerError, never> => E.left(unsupportedHfQuantization("torchao", `Int4WeightOnlyConfig: ${m}`));

/** Why llmq writes no other int4 layout: what torchao 0.18 needs for it (tools/gen_torchao_fixtures.py records the errors). */
const OTHER_PACKINGS: Readonly<Record<string, string>> = {
  PRESHUFFLED:
    "int4_packing_format preshuffled (Int4PreshuffledTensor) is made by mslk's CUDA op preshuffle_i4 (torchao 0.18 on CPU: no NVIDIA driver), so there is no CPU reference llmq could match; use the default plain",
  PLAIN_INT32: "int4_packing_format plain_int32 (Int4PlainInt32Tensor): torchao 0.18 says it does not support device 'cpu' (XPU / NPU layouts), so there is no CPU reference llmq could match; use the default plain",
  TILE_PACKED_TO_4D:
    "int4_packing_format tile_packed_to_4d (Int4TilePackedTo4dTensor) needs bfloat16 and CUDA's _convert_weight_to_int4pack (tinygemm's tiled layout), so there is no CPU reference llmq could match; use the default plain",
};

/** A torchao enum field: {"_type": <enum>, "_data": NAME} as config_to_dict writes it, or the bare value ("plain"). */
const enumName = (v: PyJson | undefined, type: string, values: ReadonlyArray<string>): string | null => {
  const name = isPyDict(v) && v._type === type ? v._data : typeof v === "string" ? v.toUpperCase() : null;
  return typeof name === "string" && values.includes(name) && (isPyDict(v) || v === name.toLowerCase()) ? name : null;
};

export const int4ParamsOf = (d: PyJsonObject): E.Either<HfQuantizerError, TorchAoInt4Params> => {
  const g = d.group_size ?? 128;
  if (typeof g !== "number" || !Number.isSafeInteger(g) || g <= 0) return bad(`group_size ${pyRepr(g)} must be a positive integer`);
  if (g === 1) return bad("group_size 1: Only groupwise quant is supported right now (Int4Tensor.from_hp)");
  const ntile = d.int4_tile_packed_ntile ?? 8;
  if (ntile !== 8 && ntile !== 16) return bad("int4_tile_packed_ntile must be either 8 or 16");
  const packing = enumName(d.int4_packing_format ?? "plain", "Int4PackingFormat", ["PLAIN", "PRESHUFFLED", "PLAIN_INT32", "TILE_PACKED_TO_4D"]);
  if (packing === null) return bad(`int4_packing_format ${pyRepr(d.int4_packing_format ?? null)} is not an Int4PackingFormat (plain, preshuffled, plain_int32, tile_packed_to_4d)`);
  const algo = enumName(d.int4_choose_qparams_algorithm ?? "tinygemm", "Int4ChooseQParamsAlgorithm", ["TINYGEMM", "HQQ"]);
  if (algo === null) return bad(`int4_choose_qparams_algorithm ${pyRepr(d.int4_choose_qparams_algorithm ?? null)} is not tinygemm or hqq`);
  if (algo === "HQQ" && packing !== "TILE_PACKED_TO_4D")
    return bad(`Int4ChooseQParamsAlgorithm.HQQ is not supported by packing format ${packing.toLowerCase()}, it's only supported by Int4PackingFormat.TILE_PACKED_TO_4D currently`);
  if (packing !== "PLAIN") return bad(OTHER_PACKINGS[packing]!);
  return E.right({ configType: "Int4WeightOnlyConfig", groupSize: g });
};

/** int4_row_quantize_zp's f32 clamp floor on max − min (a Python float, taken as f32 against an f32 tensor). */
const MIN_RANGE = Math.fround(1e-6);

/**
 * int4_row_quantize_zp(w, group_size) on [out, in] f32 values (already in the load dtype), then pack_int4: per row and
 * group, scale = max(max − min, 1e-6) / 15 and zero = min + 8·scale in f32; q = clamp(round((w − min) / scale), 0, 15)
 * − 8 (round half to even); scale and zero are cast to the load dtype and laid out [in / group_size, out].
 */
export const torchaoInt4Weight = (w: Float32Array, out: number, inF: number, groupSize: number, dtype: TorchFloat) => {
  const groups = inF / groupSize;
  const toDtype = roundTo(dtype);
  const [scale, zero] = [new Float32Array(groups * out), new Float32Array(groups * out)];
  const qdata = new Int8Array((out * inF) / 2);
  const q = new Int8Array(inF);
  for (let r = 0; r < out; r++) {
    for (let j = 0; j < groups; j++) {
      let [lo, hi] = [Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
      for (let k = j * groupSize; k < (j + 1) * groupSize; k++) [lo, hi] = [Math.min(lo, w[r * inF + k]!), Math.max(hi, w[r * inF + k]!)];
      const range = Math.fround(hi - lo);
      const s = Math.fround((range < MIN_RANGE ? MIN_RANGE : range) / 15);
      scale[j * out + r] = toDtype(s);
      zero[j * out + r] = toDtype(Math.fround(lo + s * 8));
      for (let k = j * groupSize; k < (j + 1) * groupSize; k++) q[k] = Math.min(15, Math.max(0, roundHalfEven(Math.fround(Math.fround(w[r * inF + k]! - lo) / s)))) - 8;
    }
    for (let k = 0; k < inF; k += 2) qdata[(r * inF + k) / 2] = (q[k]! & 0xf) | (q[k + 1]! << 4);
  }
  return { qdata, scale, zero, scaleShape: [groups, out] as const };
};

/** torchao leaves a weight dense unless in_features is a multiple of group_size (the reason, or null). */
export const int4KeepsDense = (p: TorchAoInt4Params, shape: ReadonlyArray<number>): string | null =>
  (shape[1] ?? 0) % p.groupSize === 0 ? null : `in_features ${shape[1]} is not a multiple of group_size ${p.groupSize}, which torchao's Int4WeightOnlyConfig leaves unquantized`;

export const quantizeInt4 = (p: TorchAoInt4Params, w: Tensor, dtype: TorchFloat): E.Either<HfQuantizerError, ReadonlyArray<readonly [string, Tensor]>> => {
  const [out, inF] = w.shape as [number, number];
  if (inF % p.groupSize !== 0) return E.left(hfQuantizeFailed("torchao", `in_features ${inF} is not a multiple of group_size ${p.groupSize}: torchao leaves this weight dense`));
  // pack_int4 pairs columns 2k and 2k+1: torch fails to combine the halves of an odd row
  if (inF % 2 !== 0) return E.left(hfQuantizeFailed("torchao", `pack_int4 needs an even in_features, got ${inF} (group_size ${p.groupSize}): The size of tensor a (${(inF + 1) / 2}) must match the size of tensor b (${(inF - 1) / 2}) at non-singleton dimension 1`));
  const q = torchaoInt4Weight(w.data as Float32Array, out, inF, p.groupSize, dtype);
  const stored = (v: Float32Array) => cast(new Tensor("f32", q.scaleShape, v), LLMQ_DTYPE[dtype]);
  return E.right([
    ["_weight_qdata", new Tensor("i8", [out, inF / 2], q.qdata)],
    ["_weight_scale", stored(q.scale)],
    ["_weight_zero_point", stored(q.zero)],
  ]);
};

/**
 * Int4Tensor back to f32. torchao 0.18 gives Int4Tensor no dequantize (its linear is mslk's CUDA kernel, w = q·scale +
 * zero); torchao's own dequantization of this layout is _int4_row_dequantize_zp (its GPTQ for Int4WeightOnlyConfig):
 * (q + 8)·scale + (zero − 8·scale) in f32, here on the stored scale and zero point upcast to f32.
 */
export const dequantizeInt4 = (parts: ReadonlyMap<string, Tensor>): E.Either<HfQuantizerError, Tensor> => {
  const [q, s, z] = ["_weight_qdata", "_weight_scale", "_weight_zero_point"].map((n) => parts.get(n));
  if (q === undefined || s === undefined || z === undefined) return E.left(hfQuantizeFailed("torchao", "an Int4Tensor needs _weight_qdata, _weight_scale and _weight_zero_point"));
  const [out, half] = q.shape as [number, number];
  const [groups, n] = s.shape as [number, number];
  const inF = half * 2;
  if (q.dtype !== "i8" || q.rank !== 2 || s.rank !== 2 || n !== out || inF % groups !== 0 || z.shape.join() !== s.shape.join())
    return E.left(hfQuantizeFailed("torchao", `Int4Tensor parts: qdata ${q.dtype}[${q.shape}], scale [${s.shape}], zero_point [${z.shape}] (want int8 [out, in/2], [in/group, out] twice)`));
  const gs = inF / groups;
  const [qd, sd, zd] = [q.data as Int8Array, cast(s, "f32").data as Float32Array, cast(z, "f32").data as Float32Array];
  const dense = new Float32Array(out * inF);
  for (let r = 0; r < out; r++)
    for (let k = 0; k < inF; k++) {
      const b = qd[(r * inF + k) >> 1]!;
      const code = k % 2 === 0 ? ((b << 28) >> 28) + 8 : (b >> 4) + 8; // the signed nibble + 8, as (x + 8) in torchao
      const [sc, zp] = [sd[Math.floor(k / gs) * out + r]!, zd[Math.floor(k / gs) * out + r]!];
      dense[r * inF + k] = Math.fround(Math.fround(code * sc) + Math.fround(zp - sc * 8));
    }
  return E.right(new Tensor("f32", [out, inF], dense));
};

/** Int4Tensor's entry in the safetensors metadata (activation_dtype is always bfloat16 on the plain path). */
export const int4MetadataEntry = (p: TorchAoInt4Params, shape: ReadonlyArray<number>): PyJsonObject => ({
  _type: "Int4Tensor",
  _data: { activation_dtype: { _type: "torch.dtype", _data: "bfloat16" }, block_size: [1, p.groupSize], shape: [...shape] },
  _tensor_data_names: ["qdata", "scale", "zero_point"],
});

/** Int4Tensor's dense shape: qdata is [out, in / 2]. */
export const int4DenseShape = (qdata: ReadonlyArray<number> | undefined): ReadonlyArray<number> | undefined => (qdata === undefined ? undefined : [qdata[0]!, qdata[1]! * 2]);
