import { type GptqOptions, formatSerializationError, packRowsToInt32, packedWords, quantMethodOf, quantizedFormatOf, unpackGptq } from "@llmq/serialization";
import { type Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GpuContext, storageBuffer } from "./gpu-context.js";
import { type GpuError, invalidCheckpoint, unsupportedCheckpoint } from "./gpu-error.js";
import type { GpuLinear } from "./gpu-kernels.js";

// GPTQ checkpoints (quant_method "gptq": AutoGPTQ v1 / GPTQModel v2 layout, what `llmq quantize --hf-config` with a
// GPTQConfig writes) on the GPU. Their codes are packed along the input dimension ([K / per, N] words) and their
// zero points along the output one; at load they are repacked into the pack-quantized layout the WGSL matmul reads
// (rows of output features), and desc_act's g_idx goes up as it is, so column k takes group g_idx[k]'s scale and zero
// point — activation-ordered groups, which compressed-tensors 0.20 no longer reads or writes.

const WEIGHTS = "model.safetensors";

/** The GPTQ options of a config.json whose quantization_config is a GPTQConfig; null for any other (or none). */
export const gptqOptionsOf = (raw: Record<string, unknown>): E.Either<GpuError, GptqOptions | null> => {
  const qc = raw.quantization_config;
  if (qc === undefined || !E.exists((m) => m === "gptq")(quantMethodOf("config.json", qc))) return E.right(null);
  const f = quantizedFormatOf("config.json", qc);
  if (E.isLeft(f)) return E.left(invalidCheckpoint("config.json", formatSerializationError(f.left)));
  return f.right.method === "gptq" ? E.right(f.right.options) : E.right(null);
};

const ints = (t: Tensor): Int32Array => (t.dtype === "i32" ? (t.data as Int32Array) : (cast(t, "i32").data as Int32Array));

/** A GPTQ linear (`get` reads the checkpoint's tensors by full name): qweight, qzeros, scales and optional g_idx. */
export const gptqLinear = (ctx: GpuContext, name: string, get: (n: string) => Tensor | undefined, o: GptqOptions): E.Either<GpuError, GpuLinear> => {
  const bad = (d: string) => E.left(invalidCheckpoint(WEIGHTS, `${name}: ${d}`));
  if (o.bits === 3) return E.left(unsupportedCheckpoint(WEIGHTS, `${name}: 3-bit GPTQ (its codes straddle words; the kernels read 2, 4 and 8 bits)`));
  const [qweight, qzeros, scales, gIdx] = ["qweight", "qzeros", "scales", "g_idx"].map((p) => get(`${name}.${p}`));
  if (qweight === undefined || qzeros === undefined || scales === undefined) return bad("qweight, qzeros or scales is missing");
  const notInt = [qweight, qzeros, gIdx].find((t) => t !== undefined && t.dtype !== "i32" && t.dtype !== "i64");
  if (notInt !== undefined) return bad(`qweight, qzeros and g_idx must be integer tensors, got ${notInt.dtype}`);
  const s = cast(scales, "f32").data as Float32Array;
  const parts = {
    qweight: { data: ints(qweight), shape: qweight.shape },
    qzeros: { data: ints(qzeros), shape: qzeros.shape },
    scales: { data: s, shape: scales.shape },
    gIdx: gIdx === undefined ? undefined : { data: ints(gIdx), shape: gIdx.shape },
  };
  const u = unpackGptq(parts, o);
  if (E.isLeft(u)) return bad(u.left);
  const { k, n, groups, q, z } = u.right;
  const half = 1 << (o.bits - 1);
  // transposed to output rows; signed codes and zero points (pack-quantized stores code + 2^(bits−1))
  const codes = new Int32Array(n * k);
  for (let kk = 0; kk < k; kk++) for (let nn = 0; nn < n; nn++) codes[nn * k + kk] = q[kk * n + nn]! - half;
  const [zp, scale] = [new Int32Array(n * groups), new Float32Array(n * groups)];
  for (let g = 0; g < groups; g++)
    for (let nn = 0; nn < n; nn++) {
      zp[nn * groups + g] = z[g * n + nn]! - half;
      scale[nn * groups + g] = s[g * n + nn]!;
    }
  const l = {
    n,
    k,
    bits: o.bits,
    group: o.groupSize === -1 ? k : o.groupSize,
    groups,
    words: packedWords(k, o.bits),
    // (q − z)·s rounded once to the scales' dtype, as GPTQModel's QuantLinear and llmq's CPU reader compute it
    scaleDType: scales.dtype === "f16" || scales.dtype === "bf16" ? scales.dtype : ("f32" as const),
    packed: storageBuffer(ctx, packRowsToInt32(codes, n, k, o.bits)),
    scale: storageBuffer(ctx, scale),
    zeroPoint: storageBuffer(ctx, zp),
    int8Input: false,
  };
  return E.right({ kind: "packed", l: gIdx === undefined ? l : { ...l, gIdx: storageBuffer(ctx, Uint32Array.from(u.right.gIdx)) } });
};
