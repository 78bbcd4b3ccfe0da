import { DYNAMIC_KV_ARGS, type KvCacheFormat, type KvQParams, createKvCache, transposeHeads } from "@llmq/kv-cache";
import { type QuantizationArgs, computeDynamicQParams, decodeQuantizationArgs, quantize } from "@llmq/schemes";
import { Tensor, castFromNumbers, f16FromNumber, jsKernels, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GpuContext, readBuffer, storageBuffer } from "../gpu-context.js";
import { type GpuKvCache, type GpuKvFormat, encodeCachedAttention, encodeKvAppend, gpuKvDynamic, gpuKvQuant, readGpuKvCache } from "../gpu-kv-cache.js";
import { relErr, seeded } from "./gpu.js";

// The quantized and f16 KV caches on the GPU against @llmq/kv-cache's static, f16 and dynamic formats (what `llmq
// generate` uses for a checkpoint with a kv_cache_scheme, and with --kv-cache f16|fp8|int8): the same rows appended in
// three steps (5, 1, 2 positions; rows of 18 channels, so a u32 word of codes straddles two positions), then codes
// (and dynamic scales) against @llmq/schemes' quantize and computeDynamicQParams (f16 bits against f16FromNumber),
// values against the CPU cache, attention against the js kernel over the CPU cache's values.

const must = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

export interface KvCase {
  readonly name: string;
  /** The kv_cache_scheme; null for the f16 and dynamic caches. */
  readonly args: Record<string, unknown> | null;
  /** @llmq/kv-cache's dynamic format (`--kv-cache fp8|int8`), when args is null. */
  readonly dynamic?: "fp8" | "int8";
  readonly scaleDType: "f32" | "bf16";
  /** One value (strategy tensor) or one per KV head (attn_head). */
  readonly k: ReadonlyArray<number>;
  readonly v: ReadonlyArray<number>;
  readonly kZp?: ReadonlyArray<number>;
  readonly vZp?: ReadonlyArray<number>;
}

const base = { dynamic: false, symmetric: true };
export const KV_CASES: ReadonlyArray<KvCase> = [
  { name: "fp8 per tensor", args: { ...base, num_bits: 8, type: "float", strategy: "tensor" }, scaleDType: "f32", k: [0.0071], v: [0.0023] },
  { name: "fp8 per head, bf16 scales", args: { ...base, num_bits: 8, type: "float", strategy: "attn_head" }, scaleDType: "bf16", k: [0.004, 0.009, 0.0002], v: [0.02, 0.001, 0.006] },
  { name: "int8 per tensor, bf16 scales", args: { ...base, num_bits: 8, type: "int", strategy: "tensor" }, scaleDType: "bf16", k: [0.025], v: [0.0125] },
  {
    name: "int4 per head, asymmetric",
    args: { ...base, symmetric: false, num_bits: 4, type: "int", strategy: "attn_head" },
    scaleDType: "f32",
    k: [0.3, 0.5, 0.125],
    v: [0.25, 0.2, 0.4],
    kZp: [-3, 0, 2],
    vZp: [1, -8, 7],
  },
  { name: "f16", args: null, scaleDType: "f32", k: [], v: [] },
  { name: "dynamic fp8", args: null, dynamic: "fp8", scaleDType: "f32", k: [], v: [] },
  { name: "dynamic int8", args: null, dynamic: "int8", scaleDType: "f32", k: [], v: [] },
];

const [KV_HEADS, D, HEADS] = [3, 6, 6];
const N = KV_HEADS * D;
const APPENDS = [5, 1, 2];
const POSITIONS = APPENDS.reduce((a, b) => a + b);

export interface KvRun {
  readonly f16: boolean;
  /** Code bytes (f16: bits) on the GPU and from @llmq/schemes' quantize (f16FromNumber), keys then values. */
  readonly codes: { readonly gpu: number[]; readonly ref: number[] };
  /** Every append's cached values on the GPU (dequantized) and from the CPU cache, keys then values. */
  readonly values: { readonly gpu: number[]; readonly ref: number[] };
  /** Dynamic formats: the scales on the GPU and from computeDynamicQParams, [position, k | v, KV head] (else empty). */
  readonly scales: { readonly gpu: number[]; readonly ref: number[] };
  /** Attention of 3 new tokens over the 8 cached positions (window 0 and 4): largest relative difference. */
  readonly attention: number;
}

const qparams = (c: KvCase, values: ReadonlyArray<number>, zp: ReadonlyArray<number> | undefined): KvQParams => {
  const shape = values.length === 1 ? [1] : [values.length, 1, 1];
  return { scale: castFromNumbers(c.scaleDType, Float32Array.from(values), shape), zeroPoint: zp === undefined ? null : new Tensor("i8", shape, Int8Array.from(zp)) };
};

/** compressed-tensors' quantize of the whole sequence as kv-cache's static format lays it out (heads first when per head). */
const refCodes = (args: QuantizationArgs, qp: KvQParams, x: Float32Array): number[] => {
  const perHead = qp.scale.size > 1;
  const view = perHead ? new Tensor("f32", [KV_HEADS, POSITIONS, D], transposeHeads(x, POSITIONS, KV_HEADS, D, true, new Float32Array(x.length))) : new Tensor("f32", [POSITIONS, N], x);
  const q = must(quantize(view, qp.scale, qp.zeroPoint, args, { dtype: args.type === "float" ? "f8_e4m3fn" : "i8" }));
  const c = new Uint8Array((q.data as Uint8Array | Int8Array).buffer);
  return Array.from(perHead ? transposeHeads(c, POSITIONS, KV_HEADS, D, false, new Uint8Array(c.length)) : c);
};

/** The dynamic format's codes and scales of the whole sequence, as @llmq/kv-cache computes them for each append. */
const refDynamic = (type: "fp8" | "int8", x: Float32Array): { codes: number[]; scales: Float32Array } => {
  const view = new Tensor("f32", [1, POSITIONS * KV_HEADS, D], x);
  const qp = must(computeDynamicQParams(view, DYNAMIC_KV_ARGS[type]));
  const q = must(quantize(view, qp.scale, null, DYNAMIC_KV_ARGS[type], { dtype: type === "fp8" ? "f8_e4m3fn" : "i8" }));
  return { codes: Array.from(new Uint8Array((q.data as Uint8Array | Int8Array).buffer)), scales: toFloat32(qp.scale).data };
};

/** Keys across the whole code range and past it (clamped), values mostly small, with the edge cases of each format. */
const rows = (): { k: Float32Array; v: Float32Array } => {
  const k = seeded(POSITIONS * N, 41, -4, 4);
  const v = seeded(POSITIONS * N, 42, -0.9, 0.9);
  for (let i = 0; i < k.length; i += 7) k[i] = k[i]! * 1e-3; // fp8 subnormals
  for (let i = 3; i < k.length; i += 11) k[i] = k[i]! * 1e-5; // f16 subnormals
  v.set([1 + 2 ** -11, 1 + 3 * 2 ** -11, -(1 + 2 ** -11), 2 ** -24 * 2.5], 0); // f16 ties: to even, both ways
  k.fill(0, 2 * N + D, 2 * N + 2 * D); // a zero (token, KV head): the dynamic scale becomes eps
  k[2 * N + D + 1] = -0;
  for (let i = 6 * N + 2 * D; i < 7 * N; i++) v[i] = v[i]! * 1e-6; // a tiny dynamic scale
  return { k, v };
};

const attentionErr = async (g: GpuContext, cache: GpuKvCache, k: Float32Array, v: Float32Array): Promise<number> => {
  let worst = 0;
  for (const window of [0, 4]) {
    const [tokens, past] = [3, POSITIONS - 3];
    const q = seeded(tokens * HEADS * D, 31, -2, 2);
    const shape = { tokens, past, heads: HEADS, kvHeads: KV_HEADS, headDim: D, window, scale: 1 / Math.sqrt(D) };
    const out = storageBuffer(g, q.length * 4);
    const enc = g.device.createCommandEncoder();
    encodeCachedAttention(g, enc, cache, 0, storageBuffer(g, q), out, shape);
    g.device.queue.submit([enc.finish()]);
    const got = new Float32Array(await readBuffer(g, out, q.length * 4));
    const ref = new Float32Array(q.length);
    jsKernels.causalAttention(q, k, v, tokens, past, HEADS, KV_HEADS, D, window, shape.scale, ref);
    worst = Math.max(worst, relErr(got, ref));
  }
  return worst;
};

/** A dynamic cache's scales on the GPU [position, k | v, KV head] and the CPU's, laid out alike. */
const scalesOf = async (g: GpuContext, f: GpuKvFormat, type: "fp8" | "int8" | undefined, k: Float32Array, v: Float32Array) => {
  if (type === undefined || f === null || f === "f16") return { gpu: [], ref: [] };
  const gpu = Array.from(new Float32Array(await readBuffer(g, f.qparams, 2 * POSITIONS * KV_HEADS * 4)));
  const [ks, vs] = [refDynamic(type, k).scales, refDynamic(type, v).scales];
  const ref = Array.from({ length: 2 * POSITIONS * KV_HEADS }, (_, i) => {
    const [j, half, h] = [Math.floor(i / (2 * KV_HEADS)), Math.floor(i / KV_HEADS) % 2, i % KV_HEADS];
    return (half === 0 ? ks : vs)[j * KV_HEADS + h]!;
  });
  return { gpu, ref };
};

/** Appends the same keys and values to a GPU cache and to @llmq/kv-cache's, step by step. */
export const runKvCase = async (g: GpuContext, c: KvCase): Promise<KvRun> => {
  const args = c.args === null ? null : must(decodeQuantizationArgs(c.args));
  const [kq, vq] = [qparams(c, c.k, c.kZp), qparams(c, c.v, c.vZp)];
  const f16 = args === null && c.dynamic === undefined;
  const { k, v } = rows();
  const format: GpuKvFormat =
    c.dynamic !== undefined ? gpuKvDynamic(g, c.dynamic, POSITIONS, KV_HEADS) : args === null ? "f16" : must(gpuKvQuant(g, args, kq, vq, KV_HEADS));
  const size = f16 ? Math.ceil((POSITIONS * N) / 2) * 4 : Math.ceil((POSITIONS * N) / 4) * 4;
  const cache: GpuKvCache = { capacity: POSITIONS, formats: [format], k: [storageBuffer(g, size)], v: [storageBuffer(g, size)], length: 0 };
  const cpuFormat: KvCacheFormat =
    c.dynamic !== undefined ? { kind: "dynamic", type: c.dynamic } : args === null ? { kind: "f16" } : { kind: "static", args, k: kq, v: vq };
  const [cpu] = createKvCache([cpuFormat], { layers: 1, kvHeads: KV_HEADS, headDim: D, capacity: POSITIONS });
  const values = { gpu: [] as number[], ref: [] as number[] };
  let last = { k: new Float32Array(), v: new Float32Array() };
  for (const t of APPENDS) {
    const [kr, vr] = [k.subarray(cache.length * N, (cache.length + t) * N), v.subarray(cache.length * N, (cache.length + t) * N)];
    const enc = g.device.createCommandEncoder();
    encodeKvAppend(g, enc, cache, 0, storageBuffer(g, kr), storageBuffer(g, vr), t, KV_HEADS, D);
    g.device.queue.submit([enc.finish()]);
    cache.length += t;
    const ref = must(cpu!.append(kr, vr, t));
    const got = await readGpuKvCache(g, cache, 0, KV_HEADS, D);
    values.gpu.push(...got.k, ...got.v);
    values.ref.push(...ref.k, ...ref.v);
    last = { k: ref.k.slice(), v: ref.v.slice() };
  }
  const stored = async (b: GPUBuffer) => {
    const raw = await readBuffer(g, b, size);
    return Array.from((f16 ? new Uint16Array(raw) : new Uint8Array(raw)).subarray(0, POSITIONS * N));
  };
  const ref = (x: Float32Array, qp: KvQParams) =>
    c.dynamic !== undefined ? refDynamic(c.dynamic, x).codes : args === null ? Array.from(x, f16FromNumber) : refCodes(args, qp, x);
  const codes = { gpu: [...(await stored(cache.k[0]!)), ...(await stored(cache.v[0]!))], ref: [...ref(k, kq), ...ref(v, vq)] };
  return { f16, codes, values, scales: await scalesOf(g, format, c.dynamic, k, v), attention: await attentionErr(g, cache, last.k, last.v) };
};
