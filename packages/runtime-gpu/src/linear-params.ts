import type { QuantizationArgs } from "@llmq/schemes";
import { packedWords, unpackColsFromInt32 } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GpuError, invalidCheckpoint } from "./gpu-error.js";

// The per-group parameters of a quantized linear beyond its scales, read from a compressed-tensors checkpoint into
// the plain arrays the WGSL kernels index (zero points [N, groups] as int32).

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
