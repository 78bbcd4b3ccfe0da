import { type DType, type Tensor, getNumber, sizeOf } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type { CompressorArgs, CompressorContext, CompressorScheme, ModuleState } from "../compression-format.js";
import { type SerializationError, compressorError } from "../errors.js";

/** Strategies whose asymmetric zero points pack-quantized packs along dim 0. */
export const PACK_ZP_STRATEGIES = ["group", "channel"];

// ----- helpers -----

export type Result = E.Either<SerializationError, Map<string, Tensor>>;

export const ctxName = (ctx: CompressorContext, local: string): string => (ctx.module === undefined || ctx.module === "" ? local : `${ctx.module}.${local}`);

export const fail = (ctx: CompressorContext, local: string, format: string, detail: string): SerializationError =>
  compressorError(ctx.file ?? ctx.module ?? "<module>", ctxName(ctx, local), format, detail);

export const need = (state: ModuleState, ctx: CompressorContext, local: string, format: string): E.Either<SerializationError, Tensor> => {
  const t = state.get(local);
  return t === undefined ? E.left(fail(ctx, local, format, `missing tensor ${local} (have: ${[...state.keys()].join(", ")})`)) : E.right(t);
};

export const INT_DTYPES: ReadonlyArray<DType> = ["i8", "i16", "i32", "i64", "u8"];
export const FLOAT_DTYPES: ReadonlyArray<DType> = ["f64", "f32", "f16", "bf16", "f8_e4m3fn", "f8_e5m2"];

export const f32Scratch = new Float32Array(1);
export const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Element values as f64 (typed-array fast paths for the dtypes that dominate checkpoints). */
export const values = (t: Tensor): Float64Array => {
  const n = t.size;
  switch (t.dtype) {
    case "f64":
    case "f32":
    case "i32":
    case "i16":
    case "i8":
    case "u8":
      return Float64Array.from(t.data as ArrayLike<number>);
    case "bf16": {
      const d = t.data as Uint16Array;
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        u32Scratch[0] = d[i]! << 16;
        out[i] = f32Scratch[0]!;
      }
      return out;
    }
    default: {
      const out = new Float64Array(n);
      for (let i = 0; i < n; i++) out[i] = getNumber(t, i);
      return out;
    }
  }
};

/** f32 → bf16 round to nearest even (NaN kept), the way torch rounds an f32 opmath result to bfloat16. */
export const roundBf16 = (x: number): number => {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return f32Scratch[0]!;
  u32Scratch[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return f32Scratch[0]!;
};

/** Integer codes of a tensor, checked against [lo, hi]. */
export const intCodes = (t: Tensor, lo: number, hi: number, ctx: CompressorContext, local: string, format: string): E.Either<SerializationError, Int32Array> => {
  if (!INT_DTYPES.includes(t.dtype)) return E.left(fail(ctx, local, format, `integer codes expected (i8/i16/i32/i64/u8), got ${t.dtype}`));
  const n = t.size;
  const out = new Int32Array(n);
  const src: ArrayLike<number> | null = t.dtype === "i64" ? null : (t.data as ArrayLike<number>);
  for (let i = 0; i < n; i++) {
    const v = src === null ? getNumber(t, i) : src[i]!;
    if (!(v >= lo && v <= hi)) return E.left(fail(ctx, local, format, `code ${v} at index ${i} is outside [${lo}, ${hi}]`));
    out[i] = v;
  }
  return E.right(out);
};

/** _remove_symmetric_zp: zero points of symmetric args are not saved (vLLM does not load them). */
export const removeSymmetricZp = (m: Map<string, Tensor>, scheme: CompressorScheme): Map<string, Tensor> => {
  if (scheme.input_activations?.symmetric) m.delete("input_zero_point");
  if (scheme.weights?.symmetric) m.delete("weight_zero_point");
  if (scheme.output_activations?.symmetric) m.delete("output_zero_point");
  return m;
};

export const rowsCols = (shape: ReadonlyArray<number>): [number, number] => [sizeOf(shape.slice(0, -1)), shape[shape.length - 1] ?? 1];

/** The torch dtype a naive compressor stores codes in (QuantizationArgs.pytorch_dtype). */
export const naiveDType = (w: CompressorArgs): DType | null =>
  w.type === "float" ? (w.num_bits === 8 ? "f8_e4m3fn" : null) : w.type === "int" ? (w.num_bits <= 8 ? "i8" : w.num_bits <= 16 ? "i16" : "i32") : null;

export const TORCH_FLOAT: Readonly<Record<string, DType>> = {
  float8_e4m3fn: "f8_e4m3fn",
  float8_e5m2: "f8_e5m2",
  bfloat16: "bf16",
  float16: "f16",
  float32: "f32",
  float64: "f64",
};
