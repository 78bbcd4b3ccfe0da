import type { QuantizationArgs } from "@llmq/schemes";
import { packedWords, unpackColsFromInt32 } from "@llmq/serialization";
import { type Tensor, getNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GpuContext, storageBuffer } from "./gpu-context.js";
import { type GpuError, invalidCheckpoint, unsupportedCheckpoint } from "./gpu-error.js";
import type { GpuLinear } from "./gpu-kernels.js";

// The per-group parameters of a quantized linear beyond its scales, read from a compressed-tensors checkpoint into
// the plain arrays the WGSL kernels index (zero points [N, groups] as int32), and the NVFP4 linears, whose codes and
// scales go up as stored.

const WEIGHTS = "model.safetensors";

/**
 * A linear's zero points [N, groups] as int32 (all 0 for symmetric weights), read as compressed-tensors 0.20's
 * decompressors read them: pack-quantized packs group / channel zero points along dim 0 (`pack_to_int32(…,
 * packed_dim=0)`, signed codes offset by 2^(bits−1) like the weights); int-quantized stores them as int8 [N, groups].
 * `z` is the checkpoint's `weight_zero_point`.
 */
export const zeroPointsOf = (name: string, z: Tensor | undefined, w: QuantizationArgs, format: string, n: number, groups: number): E.Either<GpuError, Int32Array> => {
  if (w.symmetric) return E.right(new Int32Array(n * groups));
  const bad = (d: string) => E.left(invalidCheckpoint(WEIGHTS, `${name}.weight_zero_point: ${d}`));
  if (z === undefined) return bad("missing (the weights are asymmetric)");
  if (format === "pack-quantized") {
    const words = packedWords(n, w.num_bits);
    if (z.dtype !== "i32" || z.size !== words * groups) return bad(`expected packed int32 [${words}, ${groups}], got ${z.dtype} [${z.shape}]`);
    return E.right(Int32Array.from(unpackColsFromInt32(z.data as Int32Array, n, groups, w.num_bits)));
  }
  // int8 zero points: the codes minus them are exact in every scale dtype, so dequantization rounds once, as on the CPU
  if (z.dtype !== "i8" || z.size !== n * groups) return bad(`expected int8 [${n}, ${groups}], got ${z.dtype} [${z.shape}]`);
  return E.right(Int32Array.from(z.data as Int8Array));
};

/** Bytes as u32 words (little-endian, zero-padded to a whole word), how the kernels read packed codes. */
const wordsOf = (bytes: Uint8Array): Uint32Array => {
  const padded = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  padded.set(bytes);
  return new Uint32Array(padded.buffer);
};

/** NVFP4's input args (the NVFP4 preset): fp4 per group of 16 with fp8 e4m3 scales under a calibrated global scale. */
export const isNvfp4Input = (a: QuantizationArgs): boolean =>
  a.type === "float" && a.num_bits === 4 && a.symmetric && a.strategy === "tensor_group" && a.group_size === 16 && a.dynamic === "local" && a.scale_dtype === "torch.float8_e4m3fn";

/** A float [1] parameter's value (a global scale), or a message. */
const oneValue = (t: Tensor | undefined, what: string): E.Either<string, number> =>
  t === undefined ? E.left(`${what} is missing`) : t.size !== 1 ? E.left(`${what}: expected one value, got [${t.shape}]`) : E.right(getNumber(t, 0));

/**
 * An nvfp4-pack-quantized linear (`get` reads the checkpoint's tensors by full name): fp4 e2m1 codes [N, K/2] uint8,
 * fp8 e4m3fn group scales [N, K/group], weight_global_scale [1] (compressed-tensors' decompressor divides by 1 when
 * it is absent, and so does this), all uploaded as stored; with NVFP4 inputs also input_global_scale [1].
 */
export const nvfp4Linear = (ctx: GpuContext, name: string, get: (n: string) => Tensor | undefined, w: QuantizationArgs, nvfp4Input = false): E.Either<GpuError, GpuLinear> => {
  const bad = (d: string) => E.left(invalidCheckpoint(WEIGHTS, `${name}: ${d}`));
  const packed = get(`${name}.weight_packed`);
  const scale = get(`${name}.weight_scale`);
  const global = get(`${name}.weight_global_scale`);
  const group = w.group_size ?? 0;
  if (w.strategy !== "tensor_group" || group <= 0) return E.left(unsupportedCheckpoint(WEIGHTS, `${name}: fp4 weights with strategy ${w.strategy} (only NVFP4's tensor_group)`));
  if (packed === undefined || packed.dtype !== "u8" || packed.shape.length !== 2) return bad("nvfp4-pack-quantized needs a uint8 weight_packed [N, K/2]");
  const [n, k] = [packed.shape[0]!, packed.shape[1]! * 2];
  if (k % group !== 0) return bad(`${k} input features are not a multiple of group_size ${group}`);
  if (scale === undefined || scale.dtype !== "f8_e4m3fn" || scale.size !== (n * k) / group)
    return bad(`weight_scale: expected fp8 e4m3fn [${n}, ${k / group}], got ${scale?.dtype} [${scale?.shape ?? ""}]`);
  const globalScale = global === undefined ? E.right(1) : oneValue(global, "weight_global_scale");
  if (E.isLeft(globalScale)) return bad(globalScale.left);
  const inputGlobalScale = nvfp4Input ? oneValue(get(`${name}.input_global_scale`), "input_global_scale") : E.right(null);
  if (E.isLeft(inputGlobalScale)) return bad(inputGlobalScale.left);
  const [codes, scales] = [storageBuffer(ctx, wordsOf(packed.data as Uint8Array)), storageBuffer(ctx, wordsOf(scale.data as Uint8Array))];
  return E.right({ kind: "nvfp4", l: { n, k, group, codes, scale: scales, globalScale: globalScale.right, inputGlobalScale: inputGlobalScale.right } });
};
