// GPTQConfig / AwqConfig checkpoints from what llmq's GPTQ / AWQ runs produce: a compressed-tensors pack-quantized
// linear (signed codes, scales, optional zero points and g_idx) repacked, code for code, into the AutoGPTQ / GPTQModel
// layout (v1 with its −1 zero quirk, or v2) or AutoAWQ's GEMM layout. No value is recomputed: the unsigned GPTQ / AWQ
// code is the compressed-tensors code plus 2^(b−1), the zero point likewise (2^(b−1) for a symmetric scheme, whose
// compressed-tensors form stores none), so (q − z)·scale is the compressed-tensors dequantization term for term.
import { type AwqParts, type GptqParts, awqGemvZerosWidth, packAwqGemm, packAwqGemv, packGptq, unpackColsFromInt32, unpackRowsFromInt32 } from "@llmq/serialization";
import { Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";

/** The integer side of one compressed-tensors linear: unsigned codes [in, out], zero points [groups, out], scales. */
export interface UnsignedLinear {
  readonly q: Int32Array;
  readonly zeros: Int32Array;
  /** [groups, out], the stored f16 values widened. */
  readonly scales: Float32Array;
  /** Group of each input column, [in]. */
  readonly gIdx: Int32Array;
  readonly inFeatures: number;
  readonly outFeatures: number;
  readonly groups: number;
}

const int32Of = (t: Tensor): Int32Array => (t.dtype === "i32" ? (t.data as Int32Array) : Int32Array.from(cast(t, "f32").data as Float32Array));

/**
 * A compressed-tensors pack-quantized module's tensors (weight_packed, weight_scale, optional weight_zero_point and
 * weight_g_idx, keyed without the module prefix) as unsigned codes. Scales must be f16: GPTQ and AWQ checkpoints store
 * fp16 scales, and the codes were chosen with exactly these.
 */
export const unsignedLinear = (parts: ReadonlyMap<string, Tensor>, bits: number, groupSize: number): E.Either<string, UnsignedLinear> => {
  const packed = parts.get("weight_packed");
  const scale = parts.get("weight_scale");
  const shape = parts.get("weight_shape");
  if (packed === undefined || scale === undefined || shape === undefined) return E.left("is not a pack-quantized compressed-tensors linear (weight_packed, weight_scale, weight_shape)");
  if (scale.dtype !== "f16") return E.left(`has ${scale.dtype} scales; GPTQ / AWQ checkpoints store float16 scales (quantize in float16)`);
  const [out, inF] = Array.from(shape.data as BigInt64Array, Number) as [number, number];
  const groups = scale.shape[1]!;
  const off = 1 << (bits - 1);
  const codes = unpackRowsFromInt32(int32Of(packed), out, inF, bits);
  const q = new Int32Array(inF * out);
  for (let n = 0; n < out; n++) for (let k = 0; k < inF; k++) q[k * out + n] = codes[n * inF + k]! + off;
  const zp = parts.get("weight_zero_point");
  const zc = zp === undefined ? null : unpackColsFromInt32(int32Of(zp), out, groups, bits);
  const zeros = new Int32Array(groups * out);
  const scales = new Float32Array(groups * out);
  const s = cast(scale, "f32").data as Float32Array;
  for (let n = 0; n < out; n++)
    for (let g = 0; g < groups; g++) {
      zeros[g * out + n] = (zc === null ? 0 : zc[n * groups + g]!) + off;
      scales[g * out + n] = s[n * groups + g]!;
    }
  const gi = parts.get("weight_g_idx");
  const gs = groupSize === -1 ? inF : groupSize;
  const gIdx = gi !== undefined ? int32Of(gi) : Int32Array.from({ length: inF }, (_, k) => Math.floor(k / gs));
  return E.right({ q, zeros, scales, gIdx, inFeatures: inF, outFeatures: out, groups });
};

const f16 = (data: Float32Array, shape: ReadonlyArray<number>): Tensor => cast(new Tensor("f32", shape, data), "f16");

/** What one repacked module holds, keyed without the module prefix, as the checkpoint stores it. */
const gptqTensors = (p: GptqParts): ReadonlyMap<string, Tensor> =>
  new Map<string, Tensor>([
    ["qweight", new Tensor("i32", p.qweight.shape, p.qweight.data)],
    ["qzeros", new Tensor("i32", p.qzeros.shape, p.qzeros.data)],
    ["scales", f16(p.scales.data, p.scales.shape)],
    ["g_idx", new Tensor("i32", p.gIdx!.shape, p.gIdx!.data)],
  ]);

/**
 * GPTQ's packing constraints (qweight packs inputs, qzeros packs outputs, 32/bits — 3-bit: 32 — to a word group) and
 * llmq's GPTQ's (whole groups of inputs; GPTQModel would accept a ragged last group).
 */
export const gptqPackable = (inFeatures: number, outFeatures: number, bits: number, groupSize = -1): string | null => {
  const unit = bits === 3 ? 32 : 32 / bits;
  if (inFeatures % unit !== 0 || outFeatures % unit !== 0) return `in_features ${inFeatures} and out_features ${outFeatures} must be multiples of ${unit} for ${bits}-bit GPTQ packing`;
  return groupSize === -1 || inFeatures % groupSize === 0 ? null : `in_features ${inFeatures} is not a multiple of group_size ${groupSize} (llmq's GPTQ quantizes whole groups)`;
};

/**
 * Zero points v1 loses: a zero of 0 is stored as −1, and AutoGPTQ's OR-packing of −1 sets every higher field of its
 * int32 word, so each later zero of that word that is not 0 reads back as 0 (3-bit fields are masked: none lost).
 */
export const gptqV1LostZeros = (zeros: Int32Array, groups: number, out: number, bits: number): number => {
  if (bits === 3) return 0;
  const pf = 32 / bits;
  let lost = 0;
  for (let g = 0; g < groups; g++)
    for (let w = 0; w < out / pf; w++) {
      let hit = false;
      for (let i = 0; i < pf; i++) {
        const z = zeros[g * out + w * pf + i]!;
        if (hit && z !== 0) lost++;
        hit ||= z === 0;
      }
    }
  return lost;
};

/** The module as a GPTQ checkpoint stores it, and how many zero points v1's storage loses (0 for v2). */
export const gptqModule = (u: UnsignedLinear, bits: 2 | 3 | 4 | 8, v1: boolean): { readonly tensors: ReadonlyMap<string, Tensor>; readonly lostZeros: number } => ({
  tensors: gptqTensors(packGptq({ q: u.q, zeros: u.zeros, scales: u.scales, gIdx: u.gIdx, inFeatures: u.inFeatures, outFeatures: u.outFeatures, bits, v1 })),
  lostZeros: v1 ? gptqV1LostZeros(u.zeros, u.groups, u.outFeatures, bits) : 0,
});

/** AutoAWQ's constraints: 4-bit whole groups of inputs; GEMM packs 8 outputs to a word, GEMV 8 inputs. */
export const awqPackable = (version: "gemm" | "gemv", inFeatures: number, outFeatures: number, groupSize: number): string | null => {
  if (inFeatures % groupSize !== 0) return `in_features ${inFeatures} is not a multiple of group_size ${groupSize}`;
  if (version === "gemm" && outFeatures % 8 !== 0) return `AWQ GEMM needs out_features (${outFeatures}) a multiple of 8`;
  if (version === "gemv" && inFeatures % 8 !== 0) return `AWQ GEMV needs in_features (${inFeatures}) a multiple of 8`;
  return version === "gemv" && E.isLeft(awqGemvZerosWidth(inFeatures, groupSize)) ? `AWQ GEMV supports group_size 32, 64 or ≥ 128, got ${groupSize}` : null;
};

const awqTensors = (p: AwqParts): ReadonlyMap<string, Tensor> =>
  new Map<string, Tensor>([
    ["qweight", new Tensor("i32", p.qweight.shape, p.qweight.data)],
    ["qzeros", new Tensor("i32", p.qzeros.shape, p.qzeros.data)],
    ["scales", f16(p.scales.data, p.scales.shape)],
  ]);

/** The module as AutoAWQ's WQLinear_GEMM or WQLinear_GEMV stores it (4-bit, groups in input order). */
export const awqModule = (u: UnsignedLinear, version: "gemm" | "gemv", groupSize: number): E.Either<string, ReadonlyMap<string, Tensor>> => {
  if (version === "gemm") return E.right(awqTensors(packAwqGemm(u.q, u.zeros, u.scales, u.inFeatures, u.outFeatures)));
  const width = awqGemvZerosWidth(u.inFeatures, groupSize);
  return E.map((w: number) => awqTensors(packAwqGemv(u.q, u.zeros, u.scales, u.inFeatures, u.outFeatures, w)))(width);
};
