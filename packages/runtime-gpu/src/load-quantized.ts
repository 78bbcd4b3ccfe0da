import { checkKvCacheScheme, formatKvCacheError, kvQParamsOf, kvScaleNames } from "@llmq/kv-cache";
import { type LlamaConfig, decodeLlamaConfig, formatModelError, ropeInvFreq } from "@llmq/models";
import { type QuantizationArgs, type QuantizationConfig, decodeQuantizationConfig, formatSchemeError, resolveSchemeForModule } from "@llmq/schemes";
import { type GptqOptions, deserializeSafetensors, formatSerializationError } from "@llmq/serialization";
import { Tensor, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type GpuContext, storageBuffer } from "./gpu-context.js";
import { type GpuError, invalidCheckpoint, unsupportedCheckpoint } from "./gpu-error.js";
import type { GpuLinear, ScaleDType } from "./gpu-kernels.js";
import { type GpuKvQuant, gpuKvQuant } from "./gpu-kv-cache.js";
import { gptqLinear, gptqOptionsOf } from "./gptq-linear.js";
import { isNvfp4Input, nvfp4Linear, zeroPointsOf } from "./linear-params.js";

// A compressed-tensors checkpoint straight onto the GPU: pack-quantized linears keep their packed int32 words and
// float-quantized ones their fp8 codes (the WGSL matmuls dequantize them on the fly), everything else is uploaded as f32. The embedding stays on the CPU (one
// row per token is copied up). What the kernels do not implement yet is refused by name, never run approximately.
// GPTQ checkpoints (quant_method "gptq") load too: their linears are repacked into the pack-quantized layout (gptq-linear.ts).

/** A checkpoint's bytes, from a directory (Node: loadQuantizedDir in "@llmq/runtime-gpu/node"), fetch or File objects. */
export interface QuantizedFiles {
  /** config.json's text. */
  readonly config: string;
  /** model.safetensors (a single file; sharded checkpoints are not supported yet). */
  readonly weights: Uint8Array;
}

export interface GpuLayer {
  readonly inputNorm: GPUBuffer;
  readonly postNorm: GPUBuffer;
  readonly linears: ReadonlyMap<string, GpuLinear>;
  /** The layer's quantized KV cache (the checkpoint's kv_cache_scheme and k/v scales), null for f32. */
  readonly kv: GpuKvQuant | null;
}

export interface GpuModel {
  readonly ctx: GpuContext;
  readonly config: LlamaConfig;
  /** [vocab, hidden] f32, on the CPU. */
  readonly embedding: Float32Array;
  readonly layers: ReadonlyArray<GpuLayer>;
  readonly norm: GPUBuffer;
  readonly lmHead: GpuLinear;
  readonly invFreq: Float32Array;
}

const CONFIG = "config.json";
const WEIGHTS = "model.safetensors";
export const LAYER_LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"];

type Get = (name: string) => Tensor | undefined;

const f32Of = (t: Tensor): Float32Array => cast(t, "f32").data as Float32Array;

const intsOf = (t: Tensor): number[] => Array.from(cast(t, "f32").data as Float32Array);

const denseLinear = (ctx: GpuContext, name: string, w: Tensor): E.Either<GpuError, GpuLinear> => {
  if (w.dtype !== "f32" && w.dtype !== "bf16" && w.dtype !== "f16")
    return E.left(unsupportedCheckpoint(WEIGHTS, `${name}.weight is ${w.dtype} without a weight_scale: only f32 / bf16 / f16 weights run unquantized on the GPU`));
  const [n, k] = w.shape as [number, number];
  return E.right({ kind: "dense", l: { n, k, weight: storageBuffer(ctx, f32Of(w)) } });
};

const isScaleDType = (d: string): d is ScaleDType => d === "f32" || d === "bf16" || d === "f16";

/** Dynamic per-token symmetric input quantization: int8 (W8A8) or fp8 e4m3 (FP8_DYNAMIC), what the kernels implement. */
const dynamicTokenInput = (a: QuantizationArgs): "int8" | "fp8" | "nvfp4" | null =>
  isNvfp4Input(a) ? "nvfp4" :
  a.num_bits === 8 && a.symmetric && a.strategy === "token" && a.dynamic === true && a.scale_dtype === null ? (a.type === "int" ? "int8" : a.type === "float" ? "fp8" : null) : null;

interface LinearScheme {
  readonly w: QuantizationArgs;
  readonly input: "int8" | "fp8" | "nvfp4" | null;
  readonly format: string;
}

/** The scheme of a quantized linear, checked against what the kernels implement. */
const quantizedScheme = (name: string, get: Get, qc: QuantizationConfig | null, what: string): E.Either<GpuError, LinearScheme> => {
  const fail = (d: string) => E.left(unsupportedCheckpoint(WEIGHTS, `${name}: ${d}`));
  if (qc === null) return E.left(invalidCheckpoint(CONFIG, `${name}.${what} without a quantization_config`));
  const r = resolveSchemeForModule(qc, name, ["Linear"]);
  if (E.isLeft(r)) return E.left(invalidCheckpoint(CONFIG, formatSchemeError(r.left)));
  const scheme = r.right?.scheme;
  const w = scheme?.weights;
  if (scheme === undefined || w === null || w === undefined) return E.left(invalidCheckpoint(CONFIG, `${name} is quantized but no config group quantizes its weights`));
  if (scheme.output_activations !== null) return fail("output activation quantization is not implemented on the GPU");
  const intOk = w.type === "int" && 32 % w.num_bits === 0;
  const fpOk = w.type === "float" && (w.num_bits === 8 || w.num_bits === 4);
  if (!intOk && !fpOk) return fail(`${w.type} ${w.num_bits}-bit weights (only int with 2, 4 or 8 bits, fp8 and NVFP4)`);
  if (get(`${name}.weight_g_idx`) !== undefined)
    return fail('weight_g_idx: compressed-tensors 0.20 removed actorder "group" and no longer applies weight_g_idx, so its meaning here is ambiguous (GPTQ-format checkpoints with desc_act / g_idx do run on the GPU)');
  const a = scheme.input_activations;
  const input = a === null ? null : dynamicTokenInput(a);
  if (a !== null && input === null)
    return fail("input activation quantization other than dynamic per-token int8 (W8A8), fp8 (FP8_DYNAMIC) or NVFP4 is not implemented on the GPU yet");
  return E.right({ w, input, format: scheme.format ?? qc.format });
};

/** A float-quantized linear: its fp8 e4m3fn weight codes as they are (four per u32) and its channel or tensor scales. */
const fp8Linear = (ctx: GpuContext, name: string, get: Get, s: LinearScheme): E.Either<GpuError, GpuLinear> => {
  const fail = (d: string) => E.left(unsupportedCheckpoint(WEIGHTS, `${name}: ${d}`));
  const w = get(`${name}.weight`);
  const scale = get(`${name}.weight_scale`);
  if (w === undefined || w.dtype !== "f8_e4m3fn" || w.shape.length !== 2) return E.left(invalidCheckpoint(WEIGHTS, `${name}: float-quantized needs an fp8 e4m3fn weight [N, K]`));
  if (scale === undefined) return E.left(invalidCheckpoint(WEIGHTS, `${name}.weight_scale is missing`));
  if (!isScaleDType(scale.dtype)) return fail(`${scale.dtype} scales (only f32, bf16 and f16)`);
  if (s.input === "int8" || s.input === "nvfp4") return fail(`fp8 weights with ${s.input} inputs are not implemented on the GPU`);
  if (!s.w.symmetric) return fail("asymmetric fp8 weights (zero points) are not implemented on the GPU");
  const [n, k] = w.shape as [number, number];
  const perChannel = s.w.strategy === "channel";
  if (!perChannel && s.w.strategy !== "tensor") return fail(`fp8 weights with strategy ${s.w.strategy} (only channel and tensor)`);
  if (scale.size !== (perChannel ? n : 1)) return E.left(invalidCheckpoint(WEIGHTS, `${name}.weight_scale: expected ${perChannel ? n : 1} values, got [${scale.shape}]`));
  const bytes = w.data as Uint8Array;
  const codes = new Uint8Array(Math.ceil(bytes.length / 4) * 4);
  codes.set(bytes);
  return E.right({
    kind: "fp8",
    l: { n, k, codes: storageBuffer(ctx, new Uint32Array(codes.buffer)), scale: storageBuffer(ctx, f32Of(scale)), perChannel, scaleDType: scale.dtype, fp8Input: s.input === "fp8" },
  });
};

/** int-quantized int8 weights [N, K] as the pack-quantized words of the same codes (4 per u32, offset by 128). */
const int8AsPacked = (q: Int8Array, n: number, k: number): Int32Array => {
  const words = Math.ceil(k / 4);
  const out = new Int32Array(n * words);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) out[r * words + (c >> 2)]! |= ((q[r * k + c]! + 128) & 255) << ((c & 3) * 8);
  return out;
};

const packedLinear = (ctx: GpuContext, name: string, get: Get, qc: QuantizationConfig | null): E.Either<GpuError, GpuLinear> => {
  const fail = (d: string) => E.left(unsupportedCheckpoint(WEIGHTS, `${name}: ${d}`));
  const sch = quantizedScheme(name, get, qc, get(`${name}.weight_packed`) !== undefined ? "weight_packed" : "weight");
  if (E.isLeft(sch)) return sch;
  const { w, input, format } = sch.right;
  // compressed-tensors stores fp8 weights as e4m3fn codes in both formats (naive-quantized: one scale per tensor, no activations)
  if ((format === "float-quantized" || format === "naive-quantized") && w.type === "float") return fp8Linear(ctx, name, get, sch.right);
  if (format === "nvfp4-pack-quantized" && w.type === "float" && w.num_bits === 4) {
    if (input !== null && input !== "nvfp4") return fail(`NVFP4 weights with ${input} inputs are not implemented on the GPU`);
    return nvfp4Linear(ctx, name, get, w, input === "nvfp4");
  }
  if (format !== "pack-quantized" && format !== "int-quantized") return fail(`format ${format} (only pack-quantized, int-quantized, float-quantized and nvfp4-pack-quantized)`);
  if (input === "fp8" || input === "nvfp4") return fail(`int weights with ${input} inputs are not implemented on the GPU`);
  const int8 = get(`${name}.weight`);
  if (format === "int-quantized" && (int8 === undefined || int8.dtype !== "i8" || w.num_bits !== 8))
    return E.left(invalidCheckpoint(WEIGHTS, `${name}: int-quantized needs an int8 weight and 8-bit args`));
  const packed =
    format === "int-quantized"
      ? new Tensor("i32", [int8!.shape[0]!, Math.ceil(int8!.shape[1]! / 4)], int8AsPacked(int8!.data as Int8Array, int8!.shape[0]!, int8!.shape[1]!))
      : get(`${name}.weight_packed`);
  const shape = format === "int-quantized" ? new Tensor("i32", [2], Int32Array.from(int8!.shape)) : get(`${name}.weight_shape`);
  if (packed === undefined) return E.left(invalidCheckpoint(WEIGHTS, `${name}.weight_packed is missing`));
  const scale = get(`${name}.weight_scale`);
  if (scale === undefined || shape === undefined) return E.left(invalidCheckpoint(WEIGHTS, `${name}: weight_scale or weight_shape is missing`));
  if (!isScaleDType(scale.dtype)) return fail(`${scale.dtype} scales (only f32, bf16 and f16)`);
  const [n, k] = intsOf(shape) as [number, number];
  const words = Math.ceil((k * w.num_bits) / 32);
  const group = w.strategy === "group" ? w.group_size! : w.strategy === "channel" ? k : 0;
  if (group === 0) return fail(`strategy ${w.strategy} (only group and channel)`);
  const groups = Math.ceil(k / group);
  if (packed.dtype !== "i32" || packed.size !== n * words) return E.left(invalidCheckpoint(WEIGHTS, `${name}.weight_packed: expected int32 [${n}, ${words}], got ${packed.dtype} [${packed.shape}]`));
  if (scale.size !== n * groups) return E.left(invalidCheckpoint(WEIGHTS, `${name}.weight_scale: expected ${n}×${groups} values, got [${scale.shape}]`));
  const zp = zeroPointsOf(name, get(`${name}.weight_zero_point`), w, format, n, groups);
  if (E.isLeft(zp)) return zp;
  return E.right({
    kind: "packed",
    l: {
      n,
      k,
      bits: w.num_bits,
      group,
      groups,
      words,
      scaleDType: scale.dtype,
      packed: storageBuffer(ctx, packed.data as Int32Array),
      scale: storageBuffer(ctx, f32Of(scale)),
      zeroPoint: storageBuffer(ctx, zp.right),
      int8Input: input === "int8",
    },
  });
};

const linearOf = (ctx: GpuContext, name: string, get: Get, qc: QuantizationConfig | null, gptq: GptqOptions | null): E.Either<GpuError, GpuLinear> => {
  if (gptq !== null && get(`${name}.qweight`) !== undefined) return gptqLinear(ctx, name, get, gptq);
  if (get(`${name}.weight_packed`) !== undefined || get(`${name}.weight_scale`) !== undefined) return packedLinear(ctx, name, get, qc);
  const w = get(`${name}.weight`);
  return w === undefined ? E.left(invalidCheckpoint(WEIGHTS, `${name}.weight is missing`)) : denseLinear(ctx, name, w);
};

const checkConfig = (raw: Record<string, unknown>, cfg: LlamaConfig, gptq: GptqOptions | null): E.Either<GpuError, QuantizationConfig | null> => {
  if (cfg.attention_bias || cfg.mlp_bias) return E.left(unsupportedCheckpoint(CONFIG, "linear biases are not implemented on the GPU yet"));
  if (cfg.hidden_act !== "silu") return E.left(unsupportedCheckpoint(CONFIG, `hidden_act ${cfg.hidden_act} (only silu)`));
  if (raw.quantization_config === undefined || gptq !== null) return E.right(null);
  const qc = decodeQuantizationConfig(raw.quantization_config, "quantization_config");
  if (E.isLeft(qc)) return E.left(invalidCheckpoint(CONFIG, formatSchemeError(qc.left)));
  if (qc.right.kv_cache_scheme !== null) {
    const kv = checkKvCacheScheme(qc.right.kv_cache_scheme);
    if (E.isLeft(kv)) return E.left(unsupportedCheckpoint(CONFIG, formatKvCacheError(kv.left)));
  }
  const nonEmpty = (v: unknown): boolean => typeof v === "object" && v !== null && Object.keys(v).length > 0;
  const qraw = raw.quantization_config as Record<string, unknown>;
  if (nonEmpty(raw.transform_config) || nonEmpty(qraw.transform_config))
    return E.left(unsupportedCheckpoint(CONFIG, "online transforms (transform_config) are not implemented on the GPU yet"));
  if (nonEmpty(qraw.sparsity_config)) return E.left(unsupportedCheckpoint(CONFIG, "sparsity_config: sparse checkpoints are not implemented on the GPU yet"));
  return E.right(qc.right);
};

/**
 * Layer i's KV-cache format as llmq's CPU runtime takes it (open-model's kvCacheOf): the kv_cache_scheme with the
 * k/v scales stored beside the layer's attention module; a layer without them keeps an f32 cache, as on the CPU.
 */
const layerKv = (ctx: GpuContext, i: number, get: Get, names: ReadonlyArray<string>, qc: QuantizationConfig | null, kvHeads: number): E.Either<GpuError, GpuKvQuant | null> => {
  const args = qc?.kv_cache_scheme ?? null;
  if (args === null) return E.right(null);
  const attention = `model.layers.${i}.self_attn`;
  const n = kvScaleNames(names.filter((x) => x.startsWith(`${attention}.`))).get(attention);
  if (n === undefined) return E.right(null);
  const opt = (name: string | null): Tensor | null => (name === null ? null : (get(name) ?? null));
  const k = kvQParamsOf(args, n.k, get(n.k)!, opt(n.kZeroPoint), kvHeads);
  const v = kvQParamsOf(args, n.v, get(n.v)!, opt(n.vZeroPoint), kvHeads);
  if (E.isLeft(k)) return E.left(invalidCheckpoint(WEIGHTS, formatKvCacheError(k.left)));
  if (E.isLeft(v)) return E.left(invalidCheckpoint(WEIGHTS, formatKvCacheError(v.left)));
  const q = gpuKvQuant(ctx, args, k.right, v.right, kvHeads);
  return E.isLeft(q) ? E.left(unsupportedCheckpoint(WEIGHTS, `${attention}: ${q.left}`)) : E.right(q.right);
};

const loadLayer = (ctx: GpuContext, i: number, get: Get, qc: QuantizationConfig | null, gptq: GptqOptions | null, kv: GpuKvQuant | null): E.Either<GpuError, GpuLayer> => {
  const p = `model.layers.${i}`;
  const inputNorm = get(`${p}.input_layernorm.weight`);
  const postNorm = get(`${p}.post_attention_layernorm.weight`);
  if (inputNorm === undefined || postNorm === undefined) return E.left(invalidCheckpoint(WEIGHTS, `${p}: a layer norm weight is missing`));
  const linears = new Map<string, GpuLinear>();
  for (const local of LAYER_LINEARS) {
    const l = linearOf(ctx, `${p}.${local}`, get, qc, gptq);
    if (E.isLeft(l)) return l;
    linears.set(local, l.right);
  }
  return E.right({ inputNorm: storageBuffer(ctx, f32Of(inputNorm)), postNorm: storageBuffer(ctx, f32Of(postNorm)), linears, kv });
};

const parseConfig = (text: string): E.Either<GpuError, { raw: Record<string, unknown>; cfg: LlamaConfig }> => {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    return E.left(invalidCheckpoint(CONFIG, `invalid JSON: ${(e as Error).message}`));
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return E.left(invalidCheckpoint(CONFIG, "the top level must be an object"));
  const cfg = decodeLlamaConfig(CONFIG, raw);
  return E.isLeft(cfg) ? E.left(invalidCheckpoint(CONFIG, formatModelError(cfg.left))) : E.right({ raw: raw as Record<string, unknown>, cfg: cfg.right });
};

/** Uploads a compressed-tensors (or dense) Llama-family checkpoint to the GPU. */
export const loadQuantized = (ctx: GpuContext, files: QuantizedFiles): E.Either<GpuError, GpuModel> => {
  const parsed = parseConfig(files.config);
  if (E.isLeft(parsed)) return parsed;
  const { raw, cfg } = parsed.right;
  const gptq = gptqOptionsOf(raw);
  if (E.isLeft(gptq)) return gptq;
  const qc = checkConfig(raw, cfg, gptq.right);
  if (E.isLeft(qc)) return qc;
  const st = deserializeSafetensors(WEIGHTS, files.weights);
  if (E.isLeft(st)) return E.left(invalidCheckpoint(WEIGHTS, formatSerializationError(st.left)));
  const get: Get = (n) => st.right.tensors.get(n);
  const emb = get("model.embed_tokens.weight");
  const norm = get("model.norm.weight");
  if (emb === undefined || norm === undefined) return E.left(invalidCheckpoint(WEIGHTS, "model.embed_tokens.weight or model.norm.weight is missing"));
  const layers: GpuLayer[] = [];
  const names = [...st.right.tensors.keys()];
  if (qc.right?.kv_cache_scheme != null && kvScaleNames(names).size === 0)
    return E.left(invalidCheckpoint(WEIGHTS, "config.json has a kv_cache_scheme but the checkpoint stores no self_attn.k_scale / v_scale (nor legacy k_proj.output_scale)"));
  for (let i = 0; i < cfg.num_hidden_layers; i++) {
    const kv = layerKv(ctx, i, get, names, qc.right, cfg.num_key_value_heads);
    if (E.isLeft(kv)) return kv;
    const l = loadLayer(ctx, i, get, qc.right, gptq.right, kv.right);
    if (E.isLeft(l)) return l;
    layers.push(l.right);
  }
  const head = cfg.tie_word_embeddings && get("lm_head.weight") === undefined ? denseLinear(ctx, "model.embed_tokens", emb) : linearOf(ctx, "lm_head", get, qc.right, gptq.right);
  if (E.isLeft(head)) return head;
  return E.right({ ctx, config: cfg, embedding: f32Of(emb), layers, norm: storageBuffer(ctx, f32Of(norm)), lmHead: head.right, invFreq: ropeInvFreq(cfg) });
};
