import { linear, rmsNorm, ropeInvFreq } from "@llmq/models";
import { decompressModule, dequantizeGptq, packColsToInt32, packGptq, packRowsToInt32, roundTo } from "@llmq/serialization";
import { computeDynamicQParams, fakeQuantize, presetScheme } from "@llmq/schemes";
import { Tensor, cast, castFromNumbers, jsKernels, ropeCosSin, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type GpuContext, readBuffer, storageBuffer } from "./gpu-context.js";
import {
  GPU_KERNELS,
  type GpuKernelName,
  type GpuLinear,
  type ScaleDType,
  encodeAdd,
  encodeArgmax,
  encodeCausalAttention,
  encodeLinear,
  encodeQuantizeInputFp8,
  encodeQuantizeInputInt8,
  encodeQuantizeInputNvfp4,
  encodeRmsNorm,
  encodeRope,
  encodeSiluMul,
} from "./gpu-kernels.js";
import { gptqLinear } from "./gptq-linear.js";
import { nvfp4Linear, zeroPointsOf } from "./linear-params.js";
import { relErr, seeded, testGpu } from "./test-support/gpu.js";
import { KV_CASES, type KvRun, runKvCase } from "./test-support/kv-cases.js";

// Conformance: every kernel of the registry against its reference (the js backend of @llmq/tensor, @llmq/models'
// forward pieces, @llmq/serialization's compressed-tensors decompression). The GPU sums in f32 in its own order, so
// results agree to a few f32 ulps of the largest value, not bit for bit (the bound is 1e-5 relative).

const ctx = await testGpu();

const must = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};
const TOL = 1e-5;

const run = async (g: GpuContext, record: (enc: GPUCommandEncoder) => void, out: GPUBuffer, n: number): Promise<Float32Array> => {
  const enc = g.device.createCommandEncoder();
  record(enc);
  g.device.queue.submit([enc.finish()]);
  return new Float32Array(await readBuffer(g, out, n * 4));
};

/**
 * One-hot inputs read a linear's dequantized weights back (y = I · Wᵀ sums one product): they must equal the
 * decompressor's bit for bit (zero points, divisions, rounding to the scale dtype).
 */
const expectExactWeights = async (g: GpuContext, lin: GpuLinear, n: number, k: number, w: Tensor<"f32">): Promise<void> => {
  const eye = new Float32Array(k * k).map((_, i) => (i % (k + 1) === 0 ? 1 : 0));
  const wt = storageBuffer(g, k * n * 4);
  const back = await run(g, (enc) => encodeLinear(g, enc, lin, storageBuffer(g, eye), wt, k), wt, k * n);
  expect(Array.from({ length: n * k }, (_, i) => back[(i % k) * n + Math.floor(i / k)]! - w.data[i]!).filter((d) => d !== 0)).toEqual([]);
};

interface PackedCase {
  readonly bits: number;
  readonly n: number;
  readonly k: number;
  readonly strategy: "group" | "channel";
  readonly group: number;
  readonly scaleDType: ScaleDType;
  /** Asymmetric: zero points in the weights' code range, packed along dim 0 as compressed-tensors stores them. */
  readonly asym?: boolean;
  /** Scales in [lo, hi) (default [0.01, 0.1)); tiny f16 ones make f16-subnormal weights. */
  readonly scales?: readonly [number, number];
}

const packedCase = async (g: GpuContext, c: PackedCase): Promise<number> => {
  const half = 1 << (c.bits - 1);
  const codes = Array.from(seeded(c.n * c.k, c.bits * 7 + c.k), (v) => Math.min(half - 1, Math.floor(v * half)));
  const groups = Math.ceil(c.k / c.group);
  const scale = castFromNumbers(c.scaleDType, seeded(c.n * groups, 3, ...(c.scales ?? [0.01, 0.1])), [c.n, groups]);
  const state = new Map<string, Tensor>([
    ["weight_packed", new Tensor("i32", [c.n, Math.ceil((c.k * c.bits) / 32)], packRowsToInt32(codes, c.n, c.k, c.bits))],
    ["weight_scale", scale],
    ["weight_shape", new Tensor("i64", [2], BigInt64Array.of(BigInt(c.n), BigInt(c.k)))],
  ]);
  const zp = Array.from(seeded(c.n * groups, c.bits + 31, -half, half), Math.floor);
  if (c.asym) state.set("weight_zero_point", new Tensor("i32", [Math.ceil((c.n * c.bits) / 32), groups], packColsToInt32(zp, c.n, groups, c.bits)));
  const args = { ...must(presetScheme("W4A16", ["Linear"])).weights!, num_bits: c.bits, symmetric: !c.asym, strategy: c.strategy, group_size: c.strategy === "group" ? c.group : null };
  const dec = decompressModule("pack-quantized", { weights: args }, state);
  if (E.isLeft(dec)) throw new Error(JSON.stringify(dec.left));
  const t = 3;
  const x = seeded(t * c.k, 11);
  const weight = dec.right.get("weight") as Tensor<"f32">;
  const ref = linear(new Tensor("f32", [t, c.k], x), weight).data;
  const lin: GpuLinear = {
    kind: "packed",
    l: {
      n: c.n,
      k: c.k,
      bits: c.bits,
      group: c.group,
      groups,
      words: Math.ceil((c.k * c.bits) / 32),
      scaleDType: c.scaleDType,
      packed: storageBuffer(g, state.get("weight_packed")!.data as Int32Array),
      scale: storageBuffer(g, cast(scale, "f32").data),
      zeroPoint: storageBuffer(g, must(zeroPointsOf("w", state.get("weight_zero_point"), args, "pack-quantized", c.n, groups))),
      int8Input: false,
    },
  };
  await expectExactWeights(g, lin, c.n, c.k, weight);
  const y = storageBuffer(g, t * c.n * 4);
  return relErr(await run(g, (enc) => encodeLinear(g, enc, lin, storageBuffer(g, x), y, t), y, t * c.n), ref);
};

interface Fp8Case {
  readonly n: number;
  readonly k: number;
  readonly strategy: "channel" | "tensor";
  readonly scaleDType: ScaleDType;
}

/** A float-quantized linear (random fp8 codes, NaN codes excluded) against decompressModule + linear. */
const fp8Case = async (g: GpuContext, c: Fp8Case): Promise<number> => {
  const codes = Uint8Array.from(seeded(c.n * c.k, c.k + 5, 0, 256), (v) => Math.floor(v) & 0xff).map((b) => ((b & 0x7f) === 0x7f ? b - 1 : b));
  const scale = castFromNumbers(c.scaleDType, seeded(c.strategy === "channel" ? c.n : 1, 21, 1e-3, 1e-2), c.strategy === "channel" ? [c.n, 1] : [1]);
  const state = new Map<string, Tensor>([
    ["weight", new Tensor("f8_e4m3fn", [c.n, c.k], codes)],
    ["weight_scale", scale],
  ]);
  const args = { num_bits: 8, type: "float", symmetric: true, strategy: c.strategy, group_size: null };
  const dec = must(decompressModule("float-quantized", { weights: args }, state));
  const t = 3;
  const x = seeded(t * c.k, 12);
  const weight = dec.get("weight") as Tensor<"f32">;
  const ref = linear(new Tensor("f32", [t, c.k], x), weight).data;
  const padded = new Uint8Array(Math.ceil(codes.length / 4) * 4);
  padded.set(codes);
  const lin: GpuLinear = {
    kind: "fp8",
    l: {
      n: c.n,
      k: c.k,
      codes: storageBuffer(g, new Uint32Array(padded.buffer)),
      scale: storageBuffer(g, cast(scale, "f32").data),
      perChannel: c.strategy === "channel",
      scaleDType: c.scaleDType,
      fp8Input: false,
    },
  };
  await expectExactWeights(g, lin, c.n, c.k, weight);
  const y = storageBuffer(g, t * c.n * 4);
  return relErr(await run(g, (enc) => encodeLinear(g, enc, lin, storageBuffer(g, x), y, t), y, t * c.n), ref);
};

/** An nvfp4-pack-quantized linear (random fp4 codes and fp8 group scales, NaN excluded) against decompressModule + linear. */
const nvfp4Case = async (g: GpuContext, n: number, k: number, globalScale: number | null): Promise<void> => {
  const bytes = (len: number, seed: number, lo: number, hi: number) => Uint8Array.from(seeded(len, seed, lo, hi), Math.floor);
  const state = new Map<string, Tensor>([
    ["weight_packed", new Tensor("u8", [n, k / 2], bytes((n * k) / 2, k + 41, 0, 256))],
    ["weight_scale", new Tensor("f8_e4m3fn", [n, k / 16], bytes((n * k) / 16, k + 43, 0x08, 0x7f))], // subnormal … 448
  ]);
  if (globalScale !== null) state.set("weight_global_scale", new Tensor("f32", [1], Float32Array.of(globalScale)));
  const args = must(presetScheme("NVFP4A16", ["Linear"])).weights!;
  const dec = must(decompressModule("nvfp4-pack-quantized", { weights: args }, state));
  const t = 3;
  const x = seeded(t * k, 13);
  const ref = linear(new Tensor("f32", [t, k], x), dec.get("weight") as Tensor<"f32">).data;
  const lin = must(nvfp4Linear(g, "w", (name) => state.get(name.slice(2)), args));
  const y = storageBuffer(g, t * n * 4);
  const got = await run(g, (enc) => encodeLinear(g, enc, lin, storageBuffer(g, x), y, t), y, t * n);
  expect(relErr(got, ref), `n ${n} k ${k} global ${globalScale}`).toBeLessThan(TOL);
  await expectExactWeights(g, lin, n, k, dec.get("weight") as Tensor<"f32">);
};

interface GptqCase {
  readonly bits: 2 | 4 | 8;
  readonly n: number;
  readonly k: number;
  /** −1: one group over all inputs. */
  readonly group: number;
  /** Activation-ordered groups (desc_act): g_idx stored, the columns of each group scattered. */
  readonly actOrder: boolean;
  readonly v1: boolean;
}

/** A GPTQ linear (random codes, zero points, f16 scales, shuffled g_idx) repacked by gptqLinear, against the CPU reader + linear. */
const gptqCase = async (g: GpuContext, c: GptqCase): Promise<void> => {
  const top = (1 << c.bits) - 1;
  const gs = c.group === -1 ? c.k : c.group;
  const groups = c.k / gs;
  const ints = (len: number, seed: number, lo: number, hi: number) => Int32Array.from(seeded(len, seed, lo, hi + 1), Math.floor);
  // desc_act: the columns in a seeded order, group = position / group_size (how GPTQ's act order assigns g_idx)
  const order = Array.from({ length: c.k }, (_, i) => i).sort((a, b) => seeded(c.k, 51)[a]! - seeded(c.k, 51)[b]!);
  const gIdx = new Int32Array(c.k);
  order.forEach((col, pos) => {
    gIdx[col] = c.actOrder ? Math.floor(pos / gs) : Math.floor(col / gs);
  });
  const scales = toFloat32(castFromNumbers("f16", seeded(groups * c.n, 53, 0.001, 0.05), [groups, c.n])).data;
  // v1 stores zeros minus one and loses a zero of 0 (dequantizeGptq reproduces that): zeros from 1 keep the case exact
  const parts = packGptq({ q: ints(c.k * c.n, 55, 0, top), zeros: ints(groups * c.n, 57, 1, top), scales, gIdx, inFeatures: c.k, outFeatures: c.n, bits: c.bits, v1: c.v1 });
  const o = { bits: c.bits, groupSize: c.group, v1: c.v1 };
  // llmq's CPU reader: the exact product rounded once to the f16 scales' dtype (GPTQModel's QuantLinear)
  const w = { data: must(dequantizeGptq(parts, o)).data.map(roundTo("float16")) };
  const state = new Map<string, Tensor>([
    ["qweight", new Tensor("i32", parts.qweight.shape, parts.qweight.data)],
    ["qzeros", new Tensor("i32", parts.qzeros.shape, parts.qzeros.data)],
    ["scales", castFromNumbers("f16", parts.scales.data, parts.scales.shape)],
  ]);
  if (c.actOrder) state.set("g_idx", new Tensor("i32", [c.k], gIdx));
  const lin = must(gptqLinear(g, "w", (name) => state.get(name.slice(2)), o));
  expect(lin.kind === "packed" && lin.l.gIdx !== undefined).toBe(c.actOrder);
  await expectExactWeights(g, lin, c.n, c.k, new Tensor("f32", [c.n, c.k], w.data));
  const t = 3;
  const x = seeded(t * c.k, 59);
  const y = storageBuffer(g, t * c.n * 4);
  const got = await run(g, (enc) => encodeLinear(g, enc, lin, storageBuffer(g, x), y, t), y, t * c.n);
  expect(relErr(got, linear(new Tensor("f32", [t, c.k], x), new Tensor("f32", [c.n, c.k], w.data)).data), JSON.stringify(c)).toBeLessThan(TOL);
};

/** A dynamic per-token input quantizer against computeDynamicQParams + fakeQuantize of the preset's input args: exact. */
const inputQuantCase = async (g: GpuContext, preset: string, encode: typeof encodeQuantizeInputInt8, globalScale?: number, k = 172): Promise<void> => {
  const args = must(presetScheme(preset, ["Linear"])).input_activations!;
  const t = 64;
  const x = seeded(t * k, 15, -4, 4);
  x.fill(0, k, 2 * k); // an all-zero token takes the 2^-23 scale
  for (let r = 4; r < t; r++) for (let i = r * k; i < (r + 1) * k; i++) x[i] = x[i]! * 2 ** ((r % 24) - 12); // scales across 2^±12
  for (let i = 3 * k; i < 3 * k + 40; i++) x[i] = x[i]! * 1e-4; // small values beside large ones: fp8 subnormals
  // NVFP4 with global scale 512: a group of amax 6 gets s = 448 and s / 512 = 0.875, so ±m·0.875 are exact fp4 ties
  if (globalScale === 512) x.set([6, ...[0.25, 0.75, 1.25, 1.75, 2.5, 3.5, 5].flatMap((m) => [m * 0.875, -m * 0.875]), 0.1], 5 * k);
  const x3 = new Tensor("f32", [1, t, k], x);
  const gs = globalScale === undefined ? {} : { globalScale: new Tensor("f32", [1], Float32Array.of(globalScale)) };
  const qp = must(computeDynamicQParams(x3, args, gs));
  const ref = toFloat32(must(fakeQuantize(x3, qp.scale, null, args, gs))).data;
  const out = storageBuffer(g, t * k * 4);
  const got = await run(g, (enc) => encode(g, enc, storageBuffer(g, x), out, t, k), out, t * k);
  expect(Array.from(got)).toEqual(Array.from(ref)); // exact: the same f32 operations, divisions corrected to IEEE
};

const f32Bits = (v: number[]): number[] => Array.from(new Uint32Array(Float32Array.from(v).buffer));

/** The quantized and f16 KV-cache cases, run once for the kernels they exercise. */
let kvRuns: Promise<ReadonlyArray<readonly [string, KvRun]>> | null = null;
const kvCases = (g: GpuContext) => {
  kvRuns ??= (async () => {
    const out: [string, KvRun][] = [];
    for (const c of KV_CASES) out.push([c.name, await runKvCase(g, c)]);
    return out;
  })();
  return kvRuns;
};

/** One case per registry entry; the suite fails when a kernel has none. */
const CASES: Record<GpuKernelName, (g: GpuContext) => Promise<void>> = {
  packedMatmul: async (g) => {
    for (const c of [
      { bits: 4, n: 48, k: 64, strategy: "group", group: 32, scaleDType: "f32" },
      { bits: 4, n: 40, k: 172, strategy: "channel", group: 172, scaleDType: "f32" },
      { bits: 8, n: 24, k: 96, strategy: "group", group: 32, scaleDType: "bf16" },
      { bits: 8, n: 16, k: 64, strategy: "channel", group: 64, scaleDType: "bf16" },
      { bits: 2, n: 8, k: 48, strategy: "group", group: 16, scaleDType: "f32" },
      { bits: 4, n: 48, k: 64, strategy: "group", group: 32, scaleDType: "f32", asym: true },
      { bits: 4, n: 40, k: 172, strategy: "channel", group: 172, scaleDType: "bf16", asym: true },
      { bits: 8, n: 24, k: 96, strategy: "group", group: 32, scaleDType: "bf16", asym: true },
      { bits: 8, n: 20, k: 64, strategy: "channel", group: 64, scaleDType: "f32", asym: true },
      { bits: 4, n: 48, k: 64, strategy: "group", group: 32, scaleDType: "f16", asym: true },
      { bits: 8, n: 16, k: 64, strategy: "channel", group: 64, scaleDType: "f16" },
      { bits: 8, n: 16, k: 64, strategy: "group", group: 32, scaleDType: "f16", asym: true, scales: [1e-7, 2e-5] },
    ] as const)
      expect(await packedCase(g, c), JSON.stringify(c)).toBeLessThan(TOL);
  },
  // the GPTQ loader's cases: activation-ordered ones take this kernel, the others packedMatmul
  packedMatmulGIdx: async (g) => {
    for (const c of [
      { bits: 4, n: 48, k: 64, group: 32, actOrder: true, v1: false },
      { bits: 8, n: 24, k: 64, group: 16, actOrder: true, v1: true },
      { bits: 2, n: 32, k: 48, group: 16, actOrder: true, v1: false },
      { bits: 4, n: 16, k: 64, group: 32, actOrder: false, v1: true },
      { bits: 8, n: 16, k: 40, group: -1, actOrder: false, v1: false },
    ] as const)
      await gptqCase(g, c);
  },
  denseMatmul: async (g) => {
    const [t, n, k] = [4, 33, 70];
    const x = seeded(t * k, 1);
    const w = seeded(n * k, 2);
    const y = storageBuffer(g, t * n * 4);
    const lin: GpuLinear = { kind: "dense", l: { n, k, weight: storageBuffer(g, w) } };
    const got = await run(g, (enc) => encodeLinear(g, enc, lin, storageBuffer(g, x), y, t), y, t * n);
    expect(relErr(got, linear(new Tensor("f32", [t, k], x), new Tensor("f32", [n, k], w)).data)).toBeLessThan(TOL);
  },
  rmsNorm: async (g) => {
    const [rows, h] = [5, 72];
    const x = seeded(rows * h, 4, -3, 3);
    const w = seeded(h, 5, 0.5, 1.5);
    const y = storageBuffer(g, rows * h * 4);
    const got = await run(g, (enc) => encodeRmsNorm(g, enc, storageBuffer(g, x), storageBuffer(g, w), y, rows, h, 1e-5), y, rows * h);
    expect(relErr(got, rmsNorm(new Tensor("f32", [rows, h], x), new Tensor("f32", [h], w), 1e-5).data)).toBeLessThan(TOL);
  },
  rope: async (g) => {
    const [t, heads, dim] = [4, 3, 16];
    const x = seeded(t * heads * dim, 6);
    const { cos, sin } = ropeCosSin(ropeInvFreq({ head_dim: dim, rope_theta: 10000, rope_scaling: null }), Int32Array.from([7, 8, 9, 10]));
    const buf = storageBuffer(g, x);
    const got = await run(g, (enc) => encodeRope(g, enc, buf, storageBuffer(g, cos), storageBuffer(g, sin), t, heads, dim), buf, x.length);
    const ref = x.slice();
    jsKernels.rope(ref, t, heads, dim, cos, sin);
    expect(relErr(got, ref)).toBeLessThan(TOL);
  },
  causalAttention: async (g) => {
    for (const [tokens, past, window] of [
      [5, 0, 0],
      [1, 9, 0],
      [3, 6, 4],
    ] as const) {
      const [heads, kvHeads, d] = [4, 2, 8];
      const q = seeded(tokens * heads * d, 7, -2, 2);
      const k = seeded((past + tokens) * kvHeads * d, 8, -2, 2);
      const v = seeded((past + tokens) * kvHeads * d, 9);
      const out = storageBuffer(g, tokens * heads * d * 4);
      const shape = { tokens, past, heads, kvHeads, headDim: d, window, scale: 1 / Math.sqrt(d) };
      const got = await run(g, (enc) => encodeCausalAttention(g, enc, storageBuffer(g, q), storageBuffer(g, k), storageBuffer(g, v), out, shape), out, tokens * heads * d);
      const ref = new Float32Array(tokens * heads * d);
      jsKernels.causalAttention(q, k, v, tokens, past, heads, kvHeads, d, window, shape.scale, ref);
      expect(relErr(got, ref), `tokens ${tokens} past ${past} window ${window}`).toBeLessThan(TOL);
    }
  },
  siluMul: async (g) => {
    // gates across the range where exp(−g) matters, near 0, and where it overflows / vanishes in f32
    const a = Float32Array.from([...seeded(2000, 10, -12, 12), ...seeded(500, 16, -0.01, 0.01), ...seeded(300, 17, -120, 120), 0, -0, 88.5, -88.5, 95, -95]);
    const n = a.length;
    const b = seeded(n, 11);
    const out = storageBuffer(g, n * 4);
    const got = await run(g, (enc) => encodeSiluMul(g, enc, storageBuffer(g, a), storageBuffer(g, b), out, n), out, n);
    const ref = new Float32Array(n);
    jsKernels.siluMul(a, b, n, ref);
    // exact: float-float exp rounded once, IEEE division; WGSL may flush a subnormal result (|v| < 2^-126) to zero
    const flushed = (v: number, r: number): boolean => Math.abs(r) < 2 ** -126 && v === 0;
    const bad = Array.from(got).flatMap((v, i) => (Object.is(v, ref[i]) || flushed(v, ref[i]!) ? [] : [[a[i], v, ref[i]]]));
    expect(bad).toEqual([]);
  },
  add: async (g) => {
    const n = 130;
    const a = seeded(n, 12);
    const b = seeded(n, 13);
    const buf = storageBuffer(g, a);
    const got = await run(g, (enc) => encodeAdd(g, enc, buf, storageBuffer(g, b), n), buf, n);
    expect(Array.from(got)).toEqual(Array.from(a, (v, i) => Math.fround(v + b[i]!)));
  },
  quantizeInputInt8: (g) => inputQuantCase(g, "W8A8", encodeQuantizeInputInt8),
  quantizeInputFp8: (g) => inputQuantCase(g, "FP8_DYNAMIC", encodeQuantizeInputFp8),
  // global scales 448·6 / 4 (calibrated-looking) and 512 (fp4 ties): large tokens saturate the fp8 group scale at 448,
  // tiny ones take 0.125
  quantizeInputNvfp4: async (g) => {
    for (const gs of [672, 512]) await inputQuantCase(g, "NVFP4", (c, enc, x, y, t, k) => encodeQuantizeInputNvfp4(c, enc, x, y, t, k, gs), gs, 176);
  },
  fp8Matmul: async (g) => {
    for (const c of [
      { n: 40, k: 172, strategy: "channel", scaleDType: "f32" },
      { n: 24, k: 64, strategy: "tensor", scaleDType: "f32" },
      { n: 16, k: 96, strategy: "channel", scaleDType: "bf16" },
      { n: 16, k: 96, strategy: "channel", scaleDType: "f16" },
    ] as const)
      expect(await fp8Case(g, c), JSON.stringify(c)).toBeLessThan(TOL);
  },
  nvfp4Matmul: async (g) => {
    await nvfp4Case(g, 40, 64, 2688 / 0.37);
    await nvfp4Case(g, 24, 176, 1234.5678);
    await nvfp4Case(g, 16, 32, null);
  },
  // codes bit-identical to compressed-tensors' quantize (@llmq/schemes) of the same rows
  kvQuantize: async (g) => {
    for (const [name, r] of await kvCases(g)) if (!r.f16) expect(r.codes.gpu, name).toEqual(r.codes.ref);
  },
  // the values attention reads bit-identical to @llmq/kv-cache's dequantized cache (compared as f32 bits: ±0 too)
  kvDequantize: async (g) => {
    for (const [name, r] of await kvCases(g)) if (!r.f16) expect(f32Bits(r.values.gpu), name).toEqual(f32Bits(r.values.ref));
  },
  // the dynamic formats' scales per (token, KV head) bit-identical to computeDynamicQParams' (a zero head: eps)
  kvScales: async (g) => {
    const runs = (await kvCases(g)).filter(([name]) => name.startsWith("dynamic"));
    expect(runs.length).toBe(2);
    for (const [name, r] of runs) {
      expect(r.scales.gpu.length, name).toBe(2 * 8 * 3);
      expect(f32Bits(r.scales.gpu), name).toEqual(f32Bits(r.scales.ref));
    }
  },
  causalAttentionQuantizedKv: async (g) => {
    for (const [name, r] of await kvCases(g)) if (!r.f16) expect(r.attention, name).toBeLessThan(TOL);
  },
  // f16 bits as @llmq/tensor's f16FromNumber (subnormals included), values as @llmq/kv-cache's f16 cache reads them
  kvToF16: async (g) => {
    for (const [, r] of await kvCases(g)) if (r.f16) expect(r.codes.gpu).toEqual(r.codes.ref);
  },
  kvFromF16: async (g) => {
    for (const [, r] of await kvCases(g)) if (r.f16) expect(f32Bits(r.values.gpu)).toEqual(f32Bits(r.values.ref));
  },
  causalAttentionF16Kv: async (g) => {
    for (const [, r] of await kvCases(g)) if (r.f16) expect(r.attention).toBeLessThan(TOL);
  },
  argmax: async (g) => {
    const x = seeded(2 * 97, 14);
    x[97 + 40] = 5;
    x[97 + 60] = 5; // a tie: the first index wins, as greedy sampling picks
    const out = storageBuffer(g, 4);
    const enc = g.device.createCommandEncoder();
    encodeArgmax(g, enc, storageBuffer(g, x), out, 97, 1);
    g.device.queue.submit([enc.finish()]);
    expect(new Uint32Array(await readBuffer(g, out, 4))[0]).toBe(40);
  },
};

describe.skipIf(ctx === null)("GPU kernels against their references", () => {
  it("has a conformance case for every registered kernel", () => {
    expect(Object.keys(CASES).sort()).toEqual(Object.keys(GPU_KERNELS).sort());
  });
  for (const name of Object.keys(GPU_KERNELS) as GpuKernelName[]) it(name, () => CASES[name](ctx!));
});
