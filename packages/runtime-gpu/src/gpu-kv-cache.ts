import { DYNAMIC_KV_ARGS, type KvQParams } from "@llmq/kv-cache";
import { type QuantizationArgs, calculateRange, formatSchemeError } from "@llmq/schemes";
import { FLOAT_EPS, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GpuContext, bitsOf, dispatch, readBuffer, storageBuffer } from "./gpu-context.js";
import { type AttentionShape, GPU_KERNELS, encodeCausalAttention } from "./gpu-kernels.js";
import type { GpuModel } from "./load-quantized.js";

// The KV cache on the GPU: per layer the keys (after RoPE) and values of every position so far, either f32, f16 (asked
// for, as `llmq generate --kv-cache f16`) or codes (fp8 e4m3 or int, one byte each, four per u32): for a checkpoint
// with a kv_cache_scheme @llmq/kv-cache's static format, quantized with the checkpoint's k_scale / v_scale, or, asked
// for as `--kv-cache fp8|int8`, its dynamic format, with a scale per (token, KV head) computed on the GPU as the token
// is appended. Codes and scales are the CPU cache's, dequantized exactly as it dequantizes them while attention reads
// them: the values attention sees are the CPU's.

/** A layer's quantized cache format: @llmq/kv-cache's "static" (calibrated k/v qparams) or "dynamic" format on the GPU. */
export interface GpuKvQuant {
  readonly fp8: boolean;
  readonly zeroPoint: boolean;
  readonly qMin: number;
  readonly qMax: number;
  /** Scales per (token, KV head), written as tokens are appended (the dynamic format). */
  readonly dynamic: boolean;
  /**
   * Static: [k scale, v scale, k zero point, v zero point] × kvHeads f32 (a per-tensor scale repeated over the heads).
   * Dynamic: [position, k | v, kvHeads] f32 scales.
   */
  readonly qparams: GPUBuffer;
}

/** `generate`'s kvCache override, as `llmq generate --kv-cache`. */
export type GpuKvOverride = "f32" | "f16" | "fp8" | "int8";

/** A layer's cache format: quantized (the checkpoint's), "f16", or null for f32. */
export type GpuKvFormat = GpuKvQuant | "f16" | null;

/** Per layer, keys and values of every position so far: [capacity, kvHeads · headDim] f32, f16 (two per u32) or codes (four per u32). */
export interface GpuKvCache {
  readonly capacity: number;
  readonly formats: ReadonlyArray<GpuKvFormat>;
  readonly k: ReadonlyArray<GPUBuffer>;
  readonly v: ReadonlyArray<GPUBuffer>;
  length: number;
}

/**
 * A layer's kv_cache_scheme on the GPU from its checked args and qparams (@llmq/kv-cache's kvQParamsOf). f64 scales
 * are refused: the CPU would quantize in f64 with them.
 */
export const gpuKvQuant = (ctx: GpuContext, args: QuantizationArgs, k: KvQParams, v: KvQParams, kvHeads: number): E.Either<string, GpuKvQuant> => {
  if (k.scale.dtype === "f64" || v.scale.dtype === "f64") return E.left("f64 k/v scales (the CPU quantizes in f64 with them; the GPU in f32)");
  const range = calculateRange(args);
  if (E.isLeft(range)) return E.left(formatSchemeError(range.left));
  const qp = new Float32Array(4 * kvHeads);
  [k.scale, v.scale].forEach((s, half) => {
    const d = toFloat32(s).data;
    for (let g = 0; g < kvHeads; g++) qp[half * kvHeads + g] = d[d.length === 1 ? 0 : g]!;
  });
  [k.zeroPoint, v.zeroPoint].forEach((z, half) => {
    if (z !== null) qp.set(toFloat32(z).data, (2 + half) * kvHeads);
  });
  return E.right({ fp8: args.type === "float", zeroPoint: !args.symmetric, dynamic: false, ...range.right, qparams: storageBuffer(ctx, qp) });
};

/** @llmq/kv-cache's dynamic fp8 / int8 format for `capacity` positions: the scales are written as tokens are appended. */
export const gpuKvDynamic = (ctx: GpuContext, type: "fp8" | "int8", capacity: number, kvHeads: number): GpuKvQuant => {
  const args = DYNAMIC_KV_ARGS[type];
  const range = calculateRange(args);
  if (E.isLeft(range)) throw new Error(`llmq internal: dynamic kv range: ${formatSchemeError(range.left)}`);
  // at least two positions: the attention kernels index a static layout's zero points (unused) inside the buffer
  return { fp8: type === "fp8", zeroPoint: false, dynamic: true, ...range.right, qparams: storageBuffer(ctx, 2 * Math.max(capacity, 2) * kvHeads * 4) };
};

const flagsOf = (f: GpuKvQuant): number => (f.fp8 ? 1 : 0) | (f.zeroPoint ? 2 : 0) | (f.dynamic ? 4 : 0);

/** Bytes of one layer's keys (or values) for `positions` rows of n channels: 4 per f32, 2 per f16, 1 per code (in u32 words). */
const halfBytes = (f: GpuKvFormat, positions: number, n: number): number =>
  f === null ? 4 * positions * n : f === "f16" ? Math.ceil((positions * n) / 2) * 4 : Math.ceil((positions * n) / 4) * 4;

/** A cache for `capacity` positions in each layer's format (the checkpoint's kv_cache_scheme, else f32), or the override's. */
export const createGpuKvCache = (m: GpuModel, capacity: number, override?: GpuKvOverride): GpuKvCache => {
  const n = m.config.num_key_value_heads * m.config.head_dim;
  const formats = m.layers.map((l): GpuKvFormat => {
    if (override === "fp8" || override === "int8") return gpuKvDynamic(m.ctx, override, capacity, m.config.num_key_value_heads);
    return override === "f32" ? null : override === "f16" ? "f16" : l.kv;
  });
  return {
    capacity,
    formats,
    k: formats.map((f) => storageBuffer(m.ctx, halfBytes(f, capacity, n))),
    v: formats.map((f) => storageBuffer(m.ctx, halfBytes(f, capacity, n))),
    length: 0,
  };
};

/** The buffers a cache holds (its dynamic scales included). */
export const destroyGpuKvCache = (cache: GpuKvCache): void => {
  for (const b of [...cache.k, ...cache.v]) b.destroy();
  for (const f of cache.formats) if (f !== null && f !== "f16" && f.dynamic) f.qparams.destroy();
};

/**
 * Codes of rows x [T, n] of keys (half 0) or values (half 1) written at positions past… of `codes`; a dynamic format
 * first writes the rows' scales (one per token and KV head), as @llmq/kv-cache's dynamic cache computes them.
 */
export const encodeKvQuantize = (ctx: GpuContext, enc: GPUCommandEncoder, f: GpuKvQuant, half: 0 | 1, x: GPUBuffer, codes: GPUBuffer, t: number, past: number, n: number, headDim: number): void => {
  if (f.dynamic) {
    // calculateQParams' symmetric divisor in f32: f32(f32(qMax − qMin) / 2)
    const halfRange = Math.fround(Math.fround(f.qMax - f.qMin) / 2);
    dispatch(ctx, enc, GPU_KERNELS.kvScales, [x, f.qparams], [t, past, n, headDim, half, bitsOf(halfRange), bitsOf(FLOAT_EPS.f32)], (t * n) / headDim);
  }
  const words = Math.ceil(((past + t) * n) / 4) - Math.floor((past * n) / 4);
  dispatch(ctx, enc, GPU_KERNELS.kvQuantize, [x, codes, f.qparams], [t, past, n, headDim, flagsOf(f), half, bitsOf(f.qMin), bitsOf(f.qMax)], words);
};

/** The f32 values of the first `rows` cached rows of keys (half 0) or values (half 1), as attention reads them. */
export const encodeKvDequantize = (ctx: GpuContext, enc: GPUCommandEncoder, f: GpuKvQuant, half: 0 | 1, codes: GPUBuffer, y: GPUBuffer, rows: number, n: number, headDim: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.kvDequantize, [codes, f.qparams, y], [rows, n, headDim, 0, flagsOf(f), half], rows * n);

/** Appends T rows of keys and values [T, kvHeads · headDim] (after RoPE) to layer i's cache at position cache.length. */
export const encodeKvAppend = (ctx: GpuContext, enc: GPUCommandEncoder, cache: GpuKvCache, i: number, k: GPUBuffer, v: GPUBuffer, t: number, kvHeads: number, headDim: number): void => {
  const f = cache.formats[i]!;
  const n = kvHeads * headDim;
  if (f === null) {
    enc.copyBufferToBuffer(k, 0, cache.k[i]!, cache.length * n * 4, t * n * 4);
    enc.copyBufferToBuffer(v, 0, cache.v[i]!, cache.length * n * 4, t * n * 4);
    return;
  }
  if (f === "f16") {
    const words = Math.ceil(((cache.length + t) * n) / 2) - Math.floor((cache.length * n) / 2);
    for (const [x, y] of [[k, cache.k[i]!], [v, cache.v[i]!]] as const) dispatch(ctx, enc, GPU_KERNELS.kvToF16, [x, y], [t, cache.length, n], words);
    return;
  }
  encodeKvQuantize(ctx, enc, f, 0, k, cache.k[i]!, t, cache.length, n, headDim);
  encodeKvQuantize(ctx, enc, f, 1, v, cache.v[i]!, t, cache.length, n, headDim);
};

/** Causal attention of q over layer i's cache (the new positions appended already), in its format. */
export const encodeCachedAttention = (ctx: GpuContext, enc: GPUCommandEncoder, cache: GpuKvCache, i: number, q: GPUBuffer, out: GPUBuffer, s: AttentionShape): void => {
  const f = cache.formats[i]!;
  if (f === null) encodeCausalAttention(ctx, enc, q, cache.k[i]!, cache.v[i]!, out, s);
  else if (f === "f16") {
    const p = [s.tokens, s.past, s.heads, s.kvHeads, s.headDim, s.window, bitsOf(s.scale)];
    dispatch(ctx, enc, GPU_KERNELS.causalAttentionF16Kv, [q, cache.k[i]!, cache.v[i]!, out], p, s.heads, s.tokens);
  } else {
    const p = [s.tokens, s.past, s.heads, s.kvHeads, s.headDim, s.window, bitsOf(s.scale), flagsOf(f)];
    dispatch(ctx, enc, GPU_KERNELS.causalAttentionQuantizedKv, [q, cache.k[i]!, cache.v[i]!, f.qparams, out], p, s.heads, s.tokens);
  }
};

/** Layer i's cached keys and values [length, kvHeads · headDim] as f32, as attention reads them (inspection, tests). */
export const readGpuKvCache = async (ctx: GpuContext, cache: GpuKvCache, i: number, kvHeads: number, headDim: number): Promise<{ k: Float32Array; v: Float32Array }> => {
  const f = cache.formats[i]!;
  const n = kvHeads * headDim;
  const rows = cache.length;
  const read = async (half: 0 | 1, buf: GPUBuffer): Promise<Float32Array> => {
    if (f === null) return new Float32Array(await readBuffer(ctx, buf, rows * n * 4));
    const y = storageBuffer(ctx, rows * n * 4);
    const enc = ctx.device.createCommandEncoder();
    if (f === "f16") dispatch(ctx, enc, GPU_KERNELS.kvFromF16, [buf, y], [rows * n], rows * n);
    else encodeKvDequantize(ctx, enc, f, half, buf, y, rows, n, headDim);
    ctx.device.queue.submit([enc.finish()]);
    const out = new Float32Array(await readBuffer(ctx, y, rows * n * 4));
    y.destroy();
    return out;
  };
  return { k: await read(0, cache.k[i]!), v: await read(1, cache.v[i]!) };
};
