import { type GpuContext, bitsOf, dispatch } from "./gpu-context.js";
import { ADD, ARGMAX, MATMUL_DENSE, MATMUL_FP8, MATMUL_NVFP4, MATMUL_PACKED, MATMUL_PACKED_GIDX, QUANTIZE_INPUT_FP8, QUANTIZE_INPUT_INT8, QUANTIZE_INPUT_NVFP4, RMS_NORM, ROPE, SILU_MUL } from "./wgsl.js";
import { CAUSAL_ATTENTION, CAUSAL_ATTENTION_F16_KV, CAUSAL_ATTENTION_QUANTIZED_KV, KV_DEQUANTIZE, KV_FROM_F16, KV_QUANTIZE, KV_SCALES, KV_TO_F16 } from "./wgsl-attention.js";

// The kernel registry: one WGSL source per kernel name, named like @llmq/tensor's kernel table where one exists there
// (siluMul, causalAttention). The js backend and @llmq/models' forward stay the definition: gpu-kernels.test.ts
// compares every entry of this table with its reference and fails on a kernel it has no case for.

export const GPU_KERNELS = {
  packedMatmul: MATMUL_PACKED,
  packedMatmulGIdx: MATMUL_PACKED_GIDX,
  fp8Matmul: MATMUL_FP8,
  nvfp4Matmul: MATMUL_NVFP4,
  denseMatmul: MATMUL_DENSE,
  rmsNorm: RMS_NORM,
  rope: ROPE,
  causalAttention: CAUSAL_ATTENTION,
  causalAttentionQuantizedKv: CAUSAL_ATTENTION_QUANTIZED_KV,
  kvQuantize: KV_QUANTIZE,
  kvScales: KV_SCALES,
  kvDequantize: KV_DEQUANTIZE,
  causalAttentionF16Kv: CAUSAL_ATTENTION_F16_KV,
  kvToF16: KV_TO_F16,
  kvFromF16: KV_FROM_F16,
  siluMul: SILU_MUL,
  add: ADD,
  argmax: ARGMAX,
  quantizeInputInt8: QUANTIZE_INPUT_INT8,
  quantizeInputFp8: QUANTIZE_INPUT_FP8,
  quantizeInputNvfp4: QUANTIZE_INPUT_NVFP4,
} as const;

export type GpuKernelName = keyof typeof GPU_KERNELS;

/** A quantized linear's scale dtype (the dtype compressed-tensors dequantizes in). */
export type ScaleDType = "f32" | "bf16" | "f16";

const SCALE_DTYPE_CODE: Readonly<Record<ScaleDType, number>> = { f32: 0, bf16: 1, f16: 2 };

/** A pack-quantized linear on the GPU: words [N, words] u32, scales and zero points [N, groups]. */
export interface PackedLinear {
  readonly n: number;
  readonly k: number;
  readonly bits: number;
  readonly group: number;
  readonly groups: number;
  readonly words: number;
  /** The checkpoint's scale dtype: dequantized weights are rounded to it (bf16 / f16), as decompression does. */
  readonly scaleDType: ScaleDType;
  readonly packed: GPUBuffer;
  readonly scale: GPUBuffer;
  readonly zeroPoint: GPUBuffer;
  /** The input is fake-quantized first (W8A8: dynamic per-token symmetric int8). */
  readonly int8Input: boolean;
  /** Activation-ordered groups: u32 [K], the group of each input column (GPTQ g_idx); absent → ⌊k / group⌋. */
  readonly gIdx?: GPUBuffer;
}

/** An unquantized linear on the GPU: w [N, K] f32. */
export interface DenseLinear {
  readonly n: number;
  readonly k: number;
  readonly weight: GPUBuffer;
}

/** A float-quantized (FP8) linear on the GPU: e4m3fn codes [N, K] four per u32, scales [N] or [1]. */
export interface Fp8Linear {
  readonly n: number;
  readonly k: number;
  readonly codes: GPUBuffer;
  readonly scale: GPUBuffer;
  /** A scale per output channel (else one per tensor). */
  readonly perChannel: boolean;
  /** The checkpoint's scale dtype: dequantized weights are rounded to it (bf16 / f16), as decompression does. */
  readonly scaleDType: ScaleDType;
  /** The input is fake-quantized first (FP8_DYNAMIC: dynamic per-token fp8). */
  readonly fp8Input: boolean;
}

/** An NVFP4 linear on the GPU: fp4 e2m1 codes [N, K] eight per u32, fp8 e4m3fn group scales [N, K/group] four per u32. */
export interface Nvfp4Linear {
  readonly n: number;
  readonly k: number;
  /** 16 for NVFP4. */
  readonly group: number;
  readonly codes: GPUBuffer;
  readonly scale: GPUBuffer;
  /** weight_global_scale (the group scales are divided by it). */
  readonly globalScale: number;
  /** NVFP4 inputs: input_global_scale (the input is fake-quantized per group of 16 first), else null (NVFP4A16). */
  readonly inputGlobalScale: number | null;
}

export type GpuLinear =
  | { readonly kind: "packed"; readonly l: PackedLinear }
  | { readonly kind: "fp8"; readonly l: Fp8Linear }
  | { readonly kind: "nvfp4"; readonly l: Nvfp4Linear }
  | { readonly kind: "dense"; readonly l: DenseLinear };

type Enc = GPUCommandEncoder;

const quantizedInput = (xq: GPUBuffer | undefined): GPUBuffer => {
  if (xq === undefined) throw new Error("llmq internal: a linear with quantized inputs needs a buffer for its quantized input");
  return xq;
};

const encodeNvfp4 = (ctx: GpuContext, enc: Enc, l: Nvfp4Linear, x: GPUBuffer, y: GPUBuffer, t: number, xq?: GPUBuffer): void => {
  const input = l.inputGlobalScale === null ? x : quantizedInput(xq);
  if (l.inputGlobalScale !== null) encodeQuantizeInputNvfp4(ctx, enc, x, input, t, l.k, l.inputGlobalScale);
  dispatch(ctx, enc, GPU_KERNELS.nvfp4Matmul, [input, l.codes, l.scale, y], [t, l.n, l.k, l.group, bitsOf(l.globalScale)], l.n, t);
};

/** y [T, K] = x fake-quantized to NVFP4 per group of 16 (dynamic group scales under the calibrated global scale). */
export const encodeQuantizeInputNvfp4 = (ctx: GpuContext, enc: Enc, x: GPUBuffer, y: GPUBuffer, t: number, k: number, globalScale: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.quantizeInputNvfp4, [x, y], [t, k, 16, bitsOf(globalScale)], (t * k) / 16);

/** y [T, N] = x [T, K] · Wᵀ; `xq` (≥ T·K f32) holds the quantized input of a W8A8 / FP8_DYNAMIC linear. */
export const encodeLinear = (ctx: GpuContext, enc: Enc, lin: GpuLinear, x: GPUBuffer, y: GPUBuffer, t: number, xq?: GPUBuffer): void => {
  if (lin.kind === "dense") dispatch(ctx, enc, GPU_KERNELS.denseMatmul, [x, lin.l.weight, y], [t, lin.l.n, lin.l.k], lin.l.n, t);
  else if (lin.kind === "nvfp4") encodeNvfp4(ctx, enc, lin.l, x, y, t, xq);
  else if (lin.kind === "fp8") {
    const l = lin.l;
    const input = l.fp8Input ? quantizedInput(xq) : x;
    if (l.fp8Input) encodeQuantizeInputFp8(ctx, enc, x, input, t, l.k);
    dispatch(ctx, enc, GPU_KERNELS.fp8Matmul, [input, l.codes, l.scale, y], [t, l.n, l.k, l.perChannel ? 1 : 0, 0, 0, SCALE_DTYPE_CODE[l.scaleDType]], l.n, t);
  } else {
    const l = lin.l;
    const input = l.int8Input ? quantizedInput(xq) : x;
    if (l.int8Input) encodeQuantizeInputInt8(ctx, enc, x, input, t, l.k);
    const params = [t, l.n, l.k, l.words, l.group, l.bits, SCALE_DTYPE_CODE[l.scaleDType], l.groups];
    if (l.gIdx === undefined) dispatch(ctx, enc, GPU_KERNELS.packedMatmul, [input, l.packed, l.scale, l.zeroPoint, y], params, l.n, t);
    else dispatch(ctx, enc, GPU_KERNELS.packedMatmulGIdx, [input, l.packed, l.scale, l.zeroPoint, l.gIdx, y], params, l.n, t);
  }
};

/** y [T, K] = x fake-quantized per token to fp8 e4m3fn (dynamic, symmetric). */
export const encodeQuantizeInputFp8 = (ctx: GpuContext, enc: Enc, x: GPUBuffer, y: GPUBuffer, t: number, k: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.quantizeInputFp8, [x, y], [t, k], t);

/** y [T, K] = x fake-quantized per token to int8 (dynamic, symmetric). */
export const encodeQuantizeInputInt8 = (ctx: GpuContext, enc: Enc, x: GPUBuffer, y: GPUBuffer, t: number, k: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.quantizeInputInt8, [x, y], [t, k], t);

export const encodeRmsNorm = (ctx: GpuContext, enc: Enc, x: GPUBuffer, w: GPUBuffer, y: GPUBuffer, rows: number, h: number, eps: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.rmsNorm, [x, w, y], [rows, h, bitsOf(eps)], rows);

export const encodeRope = (ctx: GpuContext, enc: Enc, x: GPUBuffer, cos: GPUBuffer, sin: GPUBuffer, t: number, heads: number, dim: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.rope, [x, cos, sin], [t, heads, dim], dim / 2, t * heads);

export interface AttentionShape {
  readonly tokens: number;
  readonly past: number;
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** 0 = no sliding window. */
  readonly window: number;
  readonly scale: number;
}

export const encodeCausalAttention = (ctx: GpuContext, enc: Enc, q: GPUBuffer, k: GPUBuffer, v: GPUBuffer, out: GPUBuffer, s: AttentionShape): void =>
  dispatch(ctx, enc, GPU_KERNELS.causalAttention, [q, k, v, out], [s.tokens, s.past, s.heads, s.kvHeads, s.headDim, s.window, bitsOf(s.scale)], s.heads, s.tokens);

export const encodeSiluMul = (ctx: GpuContext, enc: Enc, gate: GPUBuffer, up: GPUBuffer, out: GPUBuffer, n: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.siluMul, [gate, up, out], [n], n);

export const encodeAdd = (ctx: GpuContext, enc: Enc, a: GPUBuffer, b: GPUBuffer, n: number): void => dispatch(ctx, enc, GPU_KERNELS.add, [a, b], [n], n);

/** out[0] = argmax of row `row` of x [*, n]. */
export const encodeArgmax = (ctx: GpuContext, enc: Enc, x: GPUBuffer, out: GPUBuffer, n: number, row: number): void =>
  dispatch(ctx, enc, GPU_KERNELS.argmax, [x, out], [n, row], 1);
