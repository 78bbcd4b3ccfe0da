import { type QuantizationArgs, computeDynamicQParams, decodeQuantizationArgs, formatSchemeError, quantize } from "@llmq/schemes";
import { FP8_E4M3FN, Tensor, f16FromNumber, f16ToNumber, kernels, miniFloatToNumber, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type KvCacheError, formatKvCacheError, kvQuantizeFailed, kvStoreOverflow } from "./errors.js";
import { transposeHeads } from "./heads-major.js";
import { type MsKvQParams, msModelSlimKvDequantize, msModelSlimKvQuantize } from "./ms-model-slim-kv.js";

// A KV cache for incremental decoding: per decoder layer, the keys (after RoPE) and values of every position so far,
// stored as f32, f16, or quantized codes (fp8 e4m3 / int8) with their scales, and dequantized when attention reads
// them. Quantized formats are either static (the calibrated k_scale / v_scale of a compressed-tensors checkpoint,
// quantized exactly as compressed-tensors' QuantizedKVCache does) or dynamic (llmq's: one symmetric scale per token and
// KV head, computed as compressed-tensors computes a dynamic per-token scale). Storage is allocated once for the
// capacity; quantized and f16 reads go through one f32 scratch per cache (layers are read one at a time), so what
// stays resident is the stored bytes; an f32 cache is read in place.

// ----- model -----

/** Calibrated qparams of keys or values: scale [1] (tensor) or [KV, 1, 1] (attn_head), zero point for asymmetric. */
export interface KvQParams {
  readonly scale: Tensor;
  readonly zeroPoint: Tensor | null;
}

export type KvCacheFormat =
  | { readonly kind: "f32" }
  | { readonly kind: "f16" }
  | { readonly kind: "static"; readonly args: QuantizationArgs; readonly k: KvQParams; readonly v: KvQParams }
  | { readonly kind: "dynamic"; readonly type: "fp8" | "int8" }
  /** msModelSlim's C8: int8 codes with one scale and offset per KV channel (kv_cache_scale / kv_cache_offset). */
  | { readonly kind: "ms-c8"; readonly k: MsKvQParams; readonly v: MsKvQParams };

/** One decoder layer's cache (structurally the `AttentionCache` of @llmq/models' forward). */
export interface LayerKvCache {
  readonly length: () => number;
  /** Appends T tokens' keys and values [T, KV·D]; returns every cached position's keys and values [length, KV·D]. */
  readonly append: (k: Float32Array, v: Float32Array, tokens: number) => E.Either<string, { readonly k: Float32Array; readonly v: Float32Array; readonly tokens: number }>;
  /** Bytes held for the cached positions (codes and scales). */
  readonly bytes: () => number;
}

export interface KvCacheShape {
  readonly layers: number;
  readonly kvHeads: number;
  readonly headDim: number;
  /** Positions each layer can hold. */
  readonly capacity: number;
}

// ----- functions -----

const dynamicArgs = (type: "fp8" | "int8"): QuantizationArgs => {
  const a = decodeQuantizationArgs({ num_bits: 8, type: type === "fp8" ? "float" : "int", symmetric: true, strategy: "token", dynamic: true });
  if (E.isLeft(a)) throw new Error(`llmq internal: dynamic kv args: ${formatSchemeError(a.left)}`);
  return a.right;
};
/** The args of the dynamic formats' per-(token, KV head) scales: symmetric 8-bit, strategy token, dynamic. */
export const DYNAMIC_KV_ARGS: Readonly<Record<"fp8" | "int8", QuantizationArgs>> = { fp8: dynamicArgs("fp8"), int8: dynamicArgs("int8") };

const FP8_LUT = Float32Array.from({ length: 256 }, (_, c) => miniFloatToNumber(FP8_E4M3FN, c));
/** An int8 code's value, indexed by its byte. */
const I8_LUT = Float32Array.from({ length: 256 }, (_, c) => (c < 128 ? c : c - 256));
const bytesOf = (codes: Uint8Array | Int8Array): Uint8Array => (codes instanceof Uint8Array ? codes : new Uint8Array(codes.buffer, codes.byteOffset, codes.length));
let f16Lut: Float32Array | null = null;
const F16_LUT = (): Float32Array => {
  f16Lut ??= Float32Array.from({ length: 65536 }, (_, c) => f16ToNumber(c));
  return f16Lut;
};

/** Bytes one position takes in one layer's keys (or values): codes, plus an f32 scale per KV head when dynamic. */
const halfBytesPerToken = (format: KvCacheFormat, kvHeads: number, headDim: number): number => {
  const n = kvHeads * headDim;
  return format.kind === "f32" ? 4 * n : format.kind === "f16" ? 2 * n : format.kind === "static" || format.kind === "ms-c8" ? n : n + 4 * kvHeads;
};

/** Bytes one cached position takes in every layer's keys and values (codes plus per-token scales). */
export const kvBytesPerToken = (format: KvCacheFormat, shape: Pick<KvCacheShape, "layers" | "kvHeads" | "headDim">): number =>
  2 * shape.layers * halfBytesPerToken(format, shape.kvHeads, shape.headDim);

/** One half (keys or values) of a layer: storage, how new rows are encoded, how rows are decoded. */
interface Half {
  encode(x: Float32Array, at: number, tokens: number): E.Either<KvCacheError, void>;
  decode(tokens: number, out: Float32Array): void;
  /** The stored rows themselves when they are f32 (read without a copy). */
  view?(tokens: number): Float32Array;
}

const plainHalf = (n: number, capacity: number, half: boolean): Half => {
  const f32 = half ? null : new Float32Array(capacity * n);
  const f16 = half ? new Uint16Array(capacity * n) : null;
  return {
    encode: (x, at, tokens) => {
      if (f32 !== null) f32.set(x.subarray(0, tokens * n), at * n);
      else for (let i = 0; i < tokens * n; i++) f16![at * n + i] = f16FromNumber(x[i]!);
      return E.right(undefined);
    },
    decode: (tokens, out) => {
      if (f32 !== null) out.set(f32.subarray(0, tokens * n));
      else {
        const lut = F16_LUT();
        for (let i = 0; i < tokens * n; i++) out[i] = lut[f16![i]!]!;
      }
    },
    ...(f32 !== null ? { view: (tokens: number) => f32.subarray(0, tokens * n) } : {}),
  };
};

/** Codes quantized with the calibrated qparams, exactly compressed-tensors' `quantize` (dequantized as `dequantize`). */
const staticHalf = (args: QuantizationArgs, qp: KvQParams, name: string, kvHeads: number, d: number, capacity: number): Half => {
  const n = kvHeads * d;
  const fp8 = args.type === "float";
  const codes = fp8 ? new Uint8Array(capacity * n) : new Int8Array(capacity * n);
  const perHead = qp.scale.size > 1;
  const scale = toFloat32(qp.scale).data;
  const zp = args.symmetric || qp.zeroPoint === null ? null : toFloat32(qp.zeroPoint).data;
  return {
    encode: (x, at, tokens) => {
      const rows = x.subarray(0, tokens * n);
      const view = perHead ? new Tensor("f32", [kvHeads, tokens, d], transposeHeads(rows, tokens, kvHeads, d, true, new Float32Array(rows.length))) : new Tensor("f32", [tokens, n], rows);
      const q = quantize(view, qp.scale, zp === null ? null : qp.zeroPoint, args, { dtype: fp8 ? "f8_e4m3fn" : "i8" });
      if (E.isLeft(q)) return E.left(kvQuantizeFailed(name, formatSchemeError(q.left)));
      const c = q.right.data as Uint8Array | Int8Array;
      if (perHead) transposeHeads(c, tokens, kvHeads, d, false, codes.subarray(at * n, (at + tokens) * n) as typeof c);
      else codes.set(c, at * n);
      return E.right(undefined);
    },
    // compressed-tensors' dequantize with an f32 scale: f32((q − zp) · s), q the code's value
    decode: (tokens, out) =>
      kernels().lutDequant(bytesOf(codes).subarray(0, tokens * n), fp8 ? FP8_LUT : I8_LUT, scale, zp, perHead ? d : n, perHead ? kvHeads : 1, out),
  };
};

/** Codes with one symmetric scale per (token, KV head), from compressed-tensors' dynamic per-token qparams. */
const dynamicHalf = (type: "fp8" | "int8", name: string, kvHeads: number, d: number, capacity: number): Half => {
  const n = kvHeads * d;
  const args = DYNAMIC_KV_ARGS[type];
  const codes = type === "fp8" ? new Uint8Array(capacity * n) : new Int8Array(capacity * n);
  const scales = new Float32Array(capacity * kvHeads);
  return {
    encode: (x, at, tokens) => {
      const view = new Tensor("f32", [1, tokens * kvHeads, d], x.subarray(0, tokens * n));
      const qp = computeDynamicQParams(view, args);
      if (E.isLeft(qp)) return E.left(kvQuantizeFailed(name, formatSchemeError(qp.left)));
      const q = quantize(view, qp.right.scale, null, args, { dtype: type === "fp8" ? "f8_e4m3fn" : "i8" });
      if (E.isLeft(q)) return E.left(kvQuantizeFailed(name, formatSchemeError(q.left)));
      codes.set(q.right.data as Uint8Array & Int8Array, at * n);
      scales.set(toFloat32(qp.right.scale).data, at * kvHeads);
      return E.right(undefined);
    },
    decode: (tokens, out) =>
      kernels().lutDequant(bytesOf(codes).subarray(0, tokens * n), type === "fp8" ? FP8_LUT : I8_LUT, scales.subarray(0, tokens * kvHeads), null, d, tokens * kvHeads, out),
  };
};

/** msModelSlim C8: each row's KV·D channels quantized with their own scale and offset (channel = head·D + d). */
const msC8Half = (qp: MsKvQParams, name: string, n: number, capacity: number): Half => {
  const codes = new Int8Array(capacity * n);
  return {
    encode: (x, at, tokens) => {
      if (qp.scale.length !== n) return E.left(kvQuantizeFailed(name, `${qp.scale.length} kv_cache_scale channels for rows of ${n}`));
      msModelSlimKvQuantize(x.subarray(0, tokens * n), qp, codes.subarray(at * n, (at + tokens) * n));
      return E.right(undefined);
    },
    decode: (tokens, out) => {
      msModelSlimKvDequantize(codes.subarray(0, tokens * n), qp, out);
    },
  };
};

const halfOf = (format: KvCacheFormat, kind: "k" | "v", name: string, shape: KvCacheShape): Half => {
  const n = shape.kvHeads * shape.headDim;
  switch (format.kind) {
    case "f32":
    case "f16":
      return plainHalf(n, shape.capacity, format.kind === "f16");
    case "static":
      return staticHalf(format.args, format[kind], name, shape.kvHeads, shape.headDim, shape.capacity);
    case "dynamic":
      return dynamicHalf(format.type, name, shape.kvHeads, shape.headDim, shape.capacity);
    case "ms-c8":
      return msC8Half(format[kind], name, n, shape.capacity);
  }
};

/**
 * A KV cache of `shape.layers` layers in `format` (static formats: one entry of `formats` per layer, since every layer
 * has its own k_scale / v_scale). Layers share one pair of f32 read buffers; an f32 cache returns views of its storage.
 */
export const createKvCache = (formats: ReadonlyArray<KvCacheFormat>, shape: KvCacheShape): ReadonlyArray<LayerKvCache> => {
  const n = shape.kvHeads * shape.headDim;
  let scratch: { k: Float32Array; v: Float32Array } | null = null;
  return formats.map((format, layer) => {
    const k = halfOf(format, "k", `layer ${layer} keys`, shape);
    const v = halfOf(format, "v", `layer ${layer} values`, shape);
    let length = 0;
    return {
      length: () => length,
      bytes: () => 2 * length * halfBytesPerToken(format, shape.kvHeads, shape.headDim),
      append: (kn, vn, tokens) => {
        if (length + tokens > shape.capacity) return E.left(formatKvCacheError(kvStoreOverflow(layer, shape.capacity, length + tokens)));
        const r = E.flatMap(k.encode(kn, length, tokens), () => v.encode(vn, length, tokens));
        if (E.isLeft(r)) return E.left(formatKvCacheError(r.left));
        length += tokens;
        if (k.view !== undefined && v.view !== undefined) return E.right({ k: k.view(length), v: v.view(length), tokens: length });
        scratch ??= { k: new Float32Array(shape.capacity * n), v: new Float32Array(shape.capacity * n) };
        const [ko, vo] = [scratch.k.subarray(0, length * n), scratch.v.subarray(0, length * n)];
        k.decode(length, ko);
        v.decode(length, vo);
        return E.right({ k: ko, v: vo, tokens: length });
      },
    };
  });
};
