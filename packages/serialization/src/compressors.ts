import {
  type DType,
  FP4_E2M1_VALUES,
  Tensor,
  castFromNumbers,
  fp4e2m1FromNumber,
  getNumber,
  roundToDType,
  sizeOf,
} from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type SerializationError, compressorError } from "./errors.js";
import { packColsToInt32, packRowsToInt32, packedWords, unpackColsFromInt32, unpackRowsFromInt32 } from "./pack-int32.js";

// ----- model -----

/** compressed-tensors 0.20.0 `CompressionFormat` values that have a compressor (the legacy sparse ones do not). */
export type CompressionFormat =
  | "dense"
  | "naive-quantized"
  | "int-quantized"
  | "float-quantized"
  | "pack-quantized"
  | "nvfp4-pack-quantized"
  | "mxfp4-pack-quantized"
  | "mxfp6-pack-quantized"
  | "mxfp8-quantized";

/** The model-level format: the single format of the quantized modules, or mixed-precision. */
export type ModelFormat = CompressionFormat | "mixed-precision";

/**
 * The QuantizationArgs fields the compressors read (wire names). @llmq/schemes' QuantizationArgs fits this shape;
 * fields the compressed-tensors dump leaves out may be missing.
 */
export interface CompressorArgs {
  readonly num_bits: number;
  readonly type: "int" | "float" | string;
  readonly symmetric: boolean;
  readonly strategy: string;
  readonly group_size?: number | null;
  readonly block_structure?: ReadonlyArray<number> | null;
  readonly scale_dtype?: string | null;
  readonly dynamic?: boolean | string;
}

export interface CompressorScheme {
  readonly weights?: CompressorArgs | null;
  readonly input_activations?: CompressorArgs | null;
  readonly output_activations?: CompressorArgs | null;
}

/** A module's tensors under local names (`weight`, `weight_scale`, `weight_zero_point`, `input_scale`, …). */
export type ModuleState = ReadonlyMap<string, Tensor>;

export interface CompressorContext {
  /** Module name (prefix) used in error messages, e.g. "model.layers.0.self_attn.q_proj". */
  readonly module?: string;
  /** File the module belongs to, for error messages. */
  readonly file?: string;
}

// ----- constants -----

/** compressed-tensors 0.20.0 COMPRESSION_FORMAT_PRIORITY: the first format whose can_compress holds wins. */
export const FORMAT_PRIORITY: ReadonlyArray<CompressionFormat> = [
  "mxfp4-pack-quantized",
  "mxfp6-pack-quantized",
  "mxfp8-quantized",
  "nvfp4-pack-quantized",
  "int-quantized",
  "pack-quantized",
  "float-quantized",
  "naive-quantized",
  "dense",
];

/** COMPRESSIBLE_MODULE_TYPES = (torch.nn.Linear, torch.nn.Embedding). */
export const COMPRESSIBLE_MODULE_TYPES: ReadonlyArray<string> = ["Linear", "Embedding"];

const PACK_ZP_STRATEGIES = ["group", "channel"];

// ----- format inference -----

const torchName = (d: string | null | undefined): string | null => (d === null || d === undefined ? null : d.replace(/^torch\./, ""));

/** `can_compress` of each compressor (module type = the class name, or a name in its MRO such as "Linear"). */
export const canCompress = (format: CompressionFormat, scheme: CompressorScheme, moduleType = "Linear"): boolean => {
  if (format === "dense") return true;
  const w = scheme.weights ?? null;
  if (!COMPRESSIBLE_MODULE_TYPES.includes(moduleType) || w === null) return false;
  const ia = scheme.input_activations ?? null;
  switch (format) {
    case "mxfp4-pack-quantized":
      return w.num_bits === 4 && w.type === "float" && w.group_size === 32;
    case "mxfp6-pack-quantized":
      return w.num_bits === 6 && w.type === "float" && w.group_size === 32;
    case "mxfp8-quantized":
      return w.num_bits === 8 && w.type === "float" && w.group_size === 32 && torchName(w.scale_dtype) === "uint8";
    case "nvfp4-pack-quantized":
      return w.num_bits === 4 && w.type === "float" && w.group_size === 16;
    case "int-quantized":
      return ia !== null && w.type === "int";
    case "pack-quantized":
      return (ia === null || ia.type !== "float") && w.num_bits >= 1 && w.num_bits <= 8 && w.type === "int";
    case "float-quantized":
      return ia !== null && w.type === "float";
    case "naive-quantized":
      return true;
  }
};

/** compressed-tensors' infer_module_format: the first format in FORMAT_PRIORITY that can compress the module. */
export const inferFormat = (scheme: CompressorScheme, moduleType = "Linear"): CompressionFormat =>
  FORMAT_PRIORITY.find((f) => canCompress(f, scheme, moduleType)) ?? "dense";

/** The model format from the module formats: dense if none, the one format, or mixed-precision. */
export const inferModelFormat = (formats: Iterable<CompressionFormat>): ModelFormat => {
  const s = new Set([...formats].filter((f) => f !== "dense"));
  if (s.size === 0) return "dense";
  if (s.size === 1) return [...s][0]!;
  return "mixed-precision";
};

// ----- helpers -----

type Result = E.Either<SerializationError, Map<string, Tensor>>;

const ctxName = (ctx: CompressorContext, local: string): string => (ctx.module === undefined || ctx.module === "" ? local : `${ctx.module}.${local}`);

const fail = (ctx: CompressorContext, local: string, format: string, detail: string): SerializationError =>
  compressorError(ctx.file ?? ctx.module ?? "<module>", ctxName(ctx, local), format, detail);

const need = (state: ModuleState, ctx: CompressorContext, local: string, format: string): E.Either<SerializationError, Tensor> => {
  const t = state.get(local);
  return t === undefined ? E.left(fail(ctx, local, format, `missing tensor ${local} (have: ${[...state.keys()].join(", ")})`)) : E.right(t);
};

const INT_DTYPES: ReadonlyArray<DType> = ["i8", "i16", "i32", "i64", "u8"];
const FLOAT_DTYPES: ReadonlyArray<DType> = ["f64", "f32", "f16", "bf16", "f8_e4m3fn", "f8_e5m2"];

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Element values as f64 (typed-array fast paths for the dtypes that dominate checkpoints). */
const values = (t: Tensor): Float64Array => {
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
const roundBf16 = (x: number): number => {
  f32Scratch[0] = x;
  const b = u32Scratch[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && (b & 0x007fffff) !== 0) return f32Scratch[0]!;
  u32Scratch[0] = (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  return f32Scratch[0]!;
};

/** Integer codes of a tensor, checked against [lo, hi]. */
const intCodes = (t: Tensor, lo: number, hi: number, ctx: CompressorContext, local: string, format: string): E.Either<SerializationError, Int32Array> => {
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
const removeSymmetricZp = (m: Map<string, Tensor>, scheme: CompressorScheme): Map<string, Tensor> => {
  if (scheme.input_activations?.symmetric) m.delete("input_zero_point");
  if (scheme.weights?.symmetric) m.delete("weight_zero_point");
  if (scheme.output_activations?.symmetric) m.delete("output_zero_point");
  return m;
};

const rowsCols = (shape: ReadonlyArray<number>): [number, number] => [sizeOf(shape.slice(0, -1)), shape[shape.length - 1] ?? 1];

/** The torch dtype a naive compressor stores codes in (QuantizationArgs.pytorch_dtype). */
const naiveDType = (w: CompressorArgs): DType | null =>
  w.type === "float" ? (w.num_bits === 8 ? "f8_e4m3fn" : null) : w.type === "int" ? (w.num_bits <= 8 ? "i8" : w.num_bits <= 16 ? "i16" : "i32") : null;

// ----- E8M0 (MX) scales -----

/** compress_mx_scale: 127 + floor(log2(scale)) as uint8 (log2 evaluated in the scale's dtype, like torch). */
export const mxScaleFromFloat = (scale: Tensor): Tensor<"u8"> => {
  const d = scale.dtype;
  const n = scale.size;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const l = Math.log2(getNumber(scale, i));
    const lr = d === "f64" ? l : d === "f32" ? Math.fround(l) : d === "bf16" || d === "f16" ? roundToDType(d, Math.fround(l)) : Math.fround(l);
    const f = Math.floor(lr);
    // torch's float → int32 cast of ±inf/NaN gives INT_MIN on x86; the uint8 cast keeps the low byte.
    const e = Number.isFinite(f) ? f : -2147483648;
    out[i] = (127 + e) & 0xff;
  }
  return new Tensor("u8", scale.shape, out);
};

/** decompress_mx_scale: 2^(e − 127) in bfloat16. */
export const mxScaleToBf16 = (scale: Tensor): Tensor<"bf16"> => {
  const n = scale.size;
  const v = new Float64Array(n);
  for (let i = 0; i < n; i++) v[i] = 2 ** (getNumber(scale, i) - 127);
  return castFromNumbers("bf16", v, scale.shape);
};

// ----- FP6 E2M3 (MXFP6) -----

/** Magnitudes of the 32 non-negative E2M3 codes, in code order (kE2M3ToFloat). */
export const FP6_E2M3_MAGNITUDES: ReadonlyArray<number> = [
  ...Array.from({ length: 8 }, (_, m) => m / 8),
  ...[0, 1, 2].flatMap((e) => Array.from({ length: 8 }, (_, m) => (1 + m / 8) * 2 ** e)),
];

// ----- dequantization (CT _dequantize in the scale's dtype) -----

type ComputeDType = "f64" | "f32" | "f16" | "bf16";

/** Rounds an f64 result the way a torch op in `d` does on CPU: computed in f32 (opmath), then rounded to `d`. */
const rnd = (d: ComputeDType, x: number): number =>
  d === "f64" ? x : d === "f32" ? Math.fround(x) : d === "bf16" ? roundBf16(x) : roundToDType(d, Math.fround(x));

/** Scale index of element (r, c) = rowPart[r] + colPart[c] for every weight strategy. */
interface QParamIndex {
  readonly row: Int32Array;
  readonly col: Int32Array;
}

const indexOf = (rows: number, cols: number, rowOf: (r: number) => number, colOf: (c: number) => number): QParamIndex => ({
  row: Int32Array.from({ length: rows }, (_, r) => rowOf(r)),
  col: Int32Array.from({ length: cols }, (_, c) => colOf(c)),
});

/** Where element (r, c) finds its scale/zero point for the strategy (tensor, channel, group, tensor_group, block). */
const qparamIndex = (
  w: CompressorArgs,
  rows: number,
  cols: number,
  qshape: ReadonlyArray<number>,
  weightShape: ReadonlyArray<number>,
): E.Either<string, QParamIndex> => {
  const n = sizeOf(qshape);
  switch (w.strategy) {
    case "tensor":
      return n === 1 ? E.right(indexOf(rows, cols, () => 0, () => 0)) : E.left(`tensor strategy needs one scale, got shape [${qshape.join(", ")}]`);
    case "channel":
    case "token":
      return n === rows ? E.right(indexOf(rows, cols, (r) => r, () => 0)) : E.left(`channel strategy needs ${rows} scales, got shape [${qshape.join(", ")}]`);
    case "group":
    case "tensor_group": {
      const gs = w.group_size ?? 0;
      if (!(gs > 0)) return E.left("group strategy needs a positive group_size");
      if (cols % gs !== 0) return E.left(`tensor column shape must be divisible by the given group_size ${gs} but got ${cols}`);
      const g = cols / gs;
      return n === rows * g
        ? E.right(indexOf(rows, cols, (r) => r * g, (c) => Math.floor(c / gs)))
        : E.left(`group strategy needs [${rows}, ${g}] scales, got [${qshape.join(", ")}]`);
    }
    case "block": {
      const bs = w.block_structure ?? null;
      if (bs === null || bs.length !== 2 || weightShape.length !== 2) return E.left("block strategy needs block_structure [h, w] and a 2-D weight");
      const [bh, bw] = bs as [number, number];
      const br = Math.ceil(rows / bh);
      const bc = Math.ceil(cols / bw);
      return n === br * bc
        ? E.right(indexOf(rows, cols, (r) => Math.floor(r / bh) * bc, (c) => Math.floor(c / bw)))
        : E.left(`block strategy needs [${br}, ${bc}] scales, got [${qshape.join(", ")}]`);
    }
    default:
      return E.left(`strategy ${w.strategy} is not supported for weights`);
  }
};

/**
 * x_q → (x_q − zp)·s evaluated as compressed-tensors does: every op in the scale's dtype `d` (f32 opmath on CPU);
 * with a global scale, scale/global_scale and the product are float32 and the result is cast to `outDType`.
 */
const dequantize = (
  q: ArrayLike<number>,
  weightShape: ReadonlyArray<number>,
  scale: Float64Array,
  scaleShape: ReadonlyArray<number>,
  zp: Float64Array | null,
  w: CompressorArgs,
  d: ComputeDType,
  globalScale: number | null,
  outDType: ComputeDType,
  exactCodes: boolean,
  codeRange: readonly [number, number] | null = null,
): E.Either<string, Float32Array> => {
  const [rows, cols] = rowsCols(weightShape);
  const idx = qparamIndex(w, rows, cols, scaleShape, weightShape);
  if (E.isLeft(idx)) return idx;
  const { row, col } = idx.right;
  if (zp !== null && zp.length !== scale.length) return E.left(`zero point has ${zp.length} values but scale has ${scale.length}`);
  const out = new Float32Array(rows * cols);
  if (exactCodes && globalScale === null && codeRange !== null) {
    // Integer codes from a small range: every element of a run sharing one scale/zero point maps through a table of
    // the 2^b possible results, so the rounding runs once per code value rather than once per element.
    const [lo, hi] = codeRange;
    const lut = new Float32Array(hi - lo + 1);
    for (let r = 0; r < rows; r++) {
      const rk = row[r]!;
      const base = r * cols;
      let c = 0;
      while (c < cols) {
        const ck = col[c]!;
        let end = c + 1;
        while (end < cols && col[end] === ck) end++;
        const k = rk + ck;
        const s = scale[k]!;
        const z = zp === null ? 0 : zp[k]!;
        if (end - c >= lut.length) {
          for (let v = lo; v <= hi; v++) lut[v - lo] = rnd(d, (v - z) * s);
          for (let j = c; j < end; j++) out[base + j] = lut[q[base + j]! - lo]!;
        } else for (let j = c; j < end; j++) out[base + j] = rnd(d, (q[base + j]! - z) * s);
        c = end;
      }
    }
    return E.right(out);
  }
  for (let r = 0; r < rows; r++) {
    const rk = row[r]!;
    for (let c = 0; c < cols; c++) {
      const k = rk + col[c]!;
      let x: number;
      if (globalScale !== null) {
        const s = Math.fround(scale[k]! / globalScale);
        x = Math.fround(q[r * cols + c]! * s);
        x = rnd(outDType, x);
      } else if (exactCodes) {
        // codes (and code differences) are exact in d, so only the product rounds
        x = rnd(d, (zp === null ? q[r * cols + c]! : q[r * cols + c]! - zp[k]!) * scale[k]!);
      } else {
        x = rnd(d, q[r * cols + c]!);
        if (zp !== null) x = rnd(d, x - rnd(d, zp[k]!));
        x = rnd(d, x * scale[k]!);
      }
      out[r * cols + c] = x;
    }
  }
  return E.right(out);
};

/** Code dtypes whose values (and int8 differences) every compute dtype (bf16 and wider) holds exactly. */
const SMALL_CODE_DTYPES: ReadonlyArray<DType> = ["i8", "u8", "f8_e4m3fn", "f8_e5m2"];

const computeDType = (t: Tensor): ComputeDType | null =>
  t.dtype === "f64" || t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16" ? t.dtype : null;

// ----- compress -----

/**
 * Compresses one module's state for `format`, as compressed-tensors 0.20.0's compressor does, from the quantized
 * codes: `weight` holds integer codes (int formats), fp8 codes (float formats) or fp4/fp6 values (nvfp4/mx formats),
 * next to `weight_scale`, optional `weight_zero_point` (integer codes), `weight_global_scale`, `weight_g_idx` and the
 * activation qparams, which pass through. Key order follows the Python dict operations.
 */
export const compressModule = (format: CompressionFormat, scheme: CompressorScheme, state: ModuleState, ctx: CompressorContext = {}): Result => {
  if (format === "dense") return E.right(new Map(state));
  const w = scheme.weights ?? null;
  if (w === null) return E.left(fail(ctx, "weight", format, "the scheme has no weights args"));
  const weight = need(state, ctx, "weight", format);
  if (E.isLeft(weight)) return weight;
  const wt = weight.right;
  const m = new Map(state);
  switch (format) {
    case "pack-quantized": {
      const bits = w.num_bits;
      if (!(Number.isInteger(bits) && bits >= 1 && bits <= 8)) return E.left(fail(ctx, "weight", format, `num_bits must be in 1..8, got ${bits}`));
      if (wt.rank < 2) return E.left(fail(ctx, "weight", format, `weight must have rank ≥ 2, got [${wt.shape.join(", ")}]`));
      const lo = -(1 << (bits - 1));
      const codes = intCodes(wt, lo, -lo - 1, ctx, "weight", format);
      if (E.isLeft(codes)) return codes;
      const [rows, cols] = rowsCols(wt.shape);
      const packed = packRowsToInt32(codes.right, rows, cols, bits);
      m.delete("weight");
      m.set("weight_packed", new Tensor("i32", [...wt.shape.slice(0, -1), packedWords(cols, bits)], packed));
      m.set("weight_shape", new Tensor("i64", [wt.rank], BigInt64Array.from(wt.shape, (d) => BigInt(d))));
      if (!w.symmetric && PACK_ZP_STRATEGIES.includes(w.strategy)) {
        const zp = need(state, ctx, "weight_zero_point", format);
        if (E.isLeft(zp)) return zp;
        const z = zp.right;
        const zc = intCodes(z, lo, -lo - 1, ctx, "weight_zero_point", format);
        if (E.isLeft(zc)) return zc;
        if (z.rank < 2) return E.left(fail(ctx, "weight_zero_point", format, `zero point must have rank ≥ 2, got [${z.shape.join(", ")}]`));
        const zr = z.shape[z.rank - 2]!;
        const zcols = z.shape[z.rank - 1]!;
        const slices = sizeOf(z.shape.slice(0, -2));
        const words = packedWords(zr, bits);
        const out = new Int32Array(slices * words * zcols);
        for (let s = 0; s < slices; s++)
          out.set(packColsToInt32(zc.right.subarray(s * zr * zcols, (s + 1) * zr * zcols), zr, zcols, bits), s * words * zcols);
        m.set("weight_zero_point", new Tensor("i32", [...z.shape.slice(0, -2), words, zcols], out));
      }
      return E.right(removeSymmetricZp(m, scheme));
    }
    case "naive-quantized":
    case "int-quantized":
    case "float-quantized":
    case "mxfp8-quantized": {
      const target = naiveDType(w);
      if (target === null) return E.left(fail(ctx, "weight", format, `no storage dtype for ${w.type} ${w.num_bits}-bit weights (only int ≤ 32 bits and fp8)`));
      let stored: Tensor;
      if (target === "f8_e4m3fn") {
        if (wt.dtype === "f8_e4m3fn") stored = wt;
        else if (FLOAT_DTYPES.includes(wt.dtype)) {
          stored = castFromNumbers("f8_e4m3fn", values(wt), wt.shape);
          const back = values(stored);
          const orig = values(wt);
          for (let i = 0; i < back.length; i++)
            if (back[i] !== orig[i] && !(Number.isNaN(back[i]!) && Number.isNaN(orig[i]!)))
              return E.left(fail(ctx, "weight", format, `value ${orig[i]} at index ${i} is not an fp8 e4m3fn code`));
        } else return E.left(fail(ctx, "weight", format, `fp8 codes expected, got ${wt.dtype}`));
      } else {
        const range = target === "i8" ? 128 : target === "i16" ? 32768 : 2147483648;
        const lo = w.num_bits <= 31 ? -(2 ** (w.num_bits - 1)) : -range;
        const codes = intCodes(wt, lo, -lo - 1, ctx, "weight", format);
        if (E.isLeft(codes)) return codes;
        stored = castFromNumbers(target, codes.right, wt.shape);
      }
      m.delete("weight");
      m.set("weight", stored);
      if (format === "mxfp8-quantized") {
        const s = need(state, ctx, "weight_scale", format);
        if (E.isLeft(s)) return s;
        m.set("weight_scale", mxScaleFromFloat(s.right));
      }
      return E.right(removeSymmetricZp(m, scheme));
    }
    case "nvfp4-pack-quantized":
    case "mxfp4-pack-quantized": {
      if (!w.symmetric) return E.left(fail(ctx, "weight", format, "only symmetric weights are supported"));
      if (wt.rank !== 2 || wt.shape[1]! % 2 !== 0)
        return E.left(fail(ctx, "weight", format, `tensor must be 2-D with an even number of columns, got [${wt.shape.join(", ")}]`));
      let codes: Tensor;
      if (wt.dtype === "f4_e2m1") codes = wt;
      else if (FLOAT_DTYPES.includes(wt.dtype)) {
        const v = values(wt);
        const bytes = new Uint8Array(v.length / 2);
        for (let i = 0; i < v.length; i++) {
          const code = fp4e2m1FromNumber(v[i]!);
          if (FP4_E2M1_VALUES[code] !== v[i] && !(v[i] === 0)) return E.left(fail(ctx, "weight", format, `value ${v[i]} at index ${i} is not an fp4 e2m1 value`));
          bytes[i >> 1]! |= code << ((i & 1) * 4);
        }
        codes = new Tensor("f4_e2m1", wt.shape, bytes);
      } else return E.left(fail(ctx, "weight", format, `fp4 values expected, got ${wt.dtype}`));
      const s = need(state, ctx, "weight_scale", format);
      if (E.isLeft(s)) return s;
      const bytes = codes.data as Uint8Array;
      m.delete("weight");
      m.delete("weight_scale");
      m.set("weight_packed", new Tensor("u8", [wt.shape[0]!, wt.shape[1]! / 2], bytes.slice(0, wt.size / 2)));
      if (format === "mxfp4-pack-quantized") {
        if (w.scale_dtype !== undefined && w.scale_dtype !== null && torchName(w.scale_dtype) !== "uint8")
          return E.left(fail(ctx, "weight_scale", format, `scale_dtype ${w.scale_dtype} is not supported (uint8 only)`));
        m.set("weight_scale", mxScaleFromFloat(s.right));
      } else {
        const sd = torchName(w.scale_dtype) ?? "float8_e4m3fn";
        const target = TORCH_FLOAT[sd];
        if (target === undefined) return E.left(fail(ctx, "weight_scale", format, `scale_dtype ${w.scale_dtype} is not supported`));
        m.set("weight_scale", s.right.dtype === target ? s.right : castFromNumbers(target, values(s.right), s.right.shape));
      }
      return E.right(removeSymmetricZp(m, scheme));
    }
    case "mxfp6-pack-quantized": {
      if (wt.rank !== 2 || wt.shape[1]! % 4 !== 0)
        return E.left(fail(ctx, "weight", format, `tensor must be 2-D with a multiple of 4 columns, got [${wt.shape.join(", ")}]`));
      if (!FLOAT_DTYPES.includes(wt.dtype)) return E.left(fail(ctx, "weight", format, `fp6 e2m3 values expected, got ${wt.dtype}`));
      const v = values(wt);
      const [rows, cols] = [wt.shape[0]!, wt.shape[1]!];
      const out = new Uint8Array((rows * cols * 3) / 4);
      for (let g = 0; g < v.length / 4; g++) {
        let word = 0;
        for (let j = 0; j < 4; j++) {
          const x = v[g * 4 + j]!;
          const code = FP6_E2M3_MAGNITUDES.indexOf(Math.abs(x));
          if (code < 0) return E.left(fail(ctx, "weight", format, `value ${x} at index ${g * 4 + j} is not an fp6 e2m3 value`));
          const sign = x < 0 || Object.is(x, -0) ? 32 : 0;
          word |= (code | sign) << (6 * j);
        }
        out[g * 3] = word & 0xff;
        out[g * 3 + 1] = (word >>> 8) & 0xff;
        out[g * 3 + 2] = (word >>> 16) & 0xff;
      }
      const s = need(state, ctx, "weight_scale", format);
      if (E.isLeft(s)) return s;
      m.delete("weight");
      m.delete("weight_scale");
      m.set("weight_packed", new Tensor("u8", [rows, (cols * 3) / 4], out));
      m.set("weight_scale", mxScaleFromFloat(s.right));
      return E.right(removeSymmetricZp(m, scheme));
    }
  }
};

const TORCH_FLOAT: Readonly<Record<string, DType>> = {
  float8_e4m3fn: "f8_e4m3fn",
  float8_e5m2: "f8_e5m2",
  bfloat16: "bf16",
  float16: "f16",
  float32: "f32",
  float64: "f64",
};

// ----- decompress -----

/**
 * Decompresses one module's on-disk state as compressed-tensors 0.20.0 does; `weight` comes back as float32 holding
 * exactly the values compressed-tensors computes (in the scale's dtype, or bfloat16 for nvfp4/mx formats).
 */
export const decompressModule = (format: CompressionFormat, scheme: CompressorScheme, state: ModuleState, ctx: CompressorContext = {}): Result => {
  if (format === "dense") return E.right(new Map(state));
  const w = scheme.weights ?? null;
  if (w === null) return E.left(fail(ctx, "weight", format, "the scheme has no weights args"));
  const m = new Map(state);
  const scaleE = need(state, ctx, "weight_scale", format);
  if (E.isLeft(scaleE)) return scaleE;
  const scale = scaleE.right;
  const deq = (
    q: ArrayLike<number>,
    shape: ReadonlyArray<number>,
    s: Tensor,
    zp: Float64Array | null,
    gs: number | null,
    d: ComputeDType,
    exactCodes: boolean,
    codeRange: readonly [number, number] | null = null,
  ): E.Either<SerializationError, Tensor> => {
    const r = dequantize(q, shape, values(s), s.shape, zp, w, d, gs, d === "f64" ? "f64" : "bf16", exactCodes, codeRange);
    return E.isLeft(r) ? E.left(fail(ctx, "weight", format, r.left)) : E.right(new Tensor("f32", shape, r.right));
  };
  switch (format) {
    case "pack-quantized": {
      const packedE = need(state, ctx, "weight_packed", format);
      if (E.isLeft(packedE)) return packedE;
      const shapeE = need(state, ctx, "weight_shape", format);
      if (E.isLeft(shapeE)) return shapeE;
      const packed = packedE.right;
      const bits = w.num_bits;
      if (!(Number.isInteger(bits) && bits >= 1 && bits <= 8)) return E.left(fail(ctx, "weight_packed", format, `num_bits must be in 1..8, got ${bits}`));
      if (packed.dtype !== "i32") return E.left(fail(ctx, "weight_packed", format, `expected int32, got ${packed.dtype}`));
      const shape = Array.from(values(shapeE.right));
      if (shape.length < 2 || !shape.every((d) => Number.isSafeInteger(d) && d >= 0))
        return E.left(fail(ctx, "weight_shape", format, `invalid weight_shape [${shape.join(", ")}]`));
      const [rows, cols] = rowsCols(shape);
      const words = packedWords(cols, bits);
      if (packed.size !== rows * words || packed.shape[packed.rank - 1] !== words)
        return E.left(fail(ctx, "weight_packed", format, `shape [${packed.shape.join(", ")}] does not hold weight_shape [${shape.join(", ")}] at ${bits} bits`));
      const d = computeDType(scale);
      if (d === null) return E.left(fail(ctx, "weight_scale", format, `scale dtype ${scale.dtype} is not a float dtype`));
      const codes = unpackRowsFromInt32(packed.data as Int32Array, rows, cols, bits);
      let zpValues: Float64Array | null = null;
      if (!w.symmetric && PACK_ZP_STRATEGIES.includes(w.strategy)) {
        const zE = need(state, ctx, "weight_zero_point", format);
        if (E.isLeft(zE)) return zE;
        const z = zE.right;
        if (z.dtype !== "i32") return E.left(fail(ctx, "weight_zero_point", format, `expected packed int32, got ${z.dtype}`));
        const zr = shape[shape.length - 2]!;
        const zc = scale.shape[scale.rank - 1] ?? 1;
        const slices = sizeOf(shape.slice(0, -2));
        const zw = packedWords(zr, bits);
        if (z.size !== slices * zw * zc) return E.left(fail(ctx, "weight_zero_point", format, `shape [${z.shape.join(", ")}] does not hold [${zr}, ${zc}] at ${bits} bits`));
        const unpacked = new Int8Array(slices * zr * zc);
        for (let s = 0; s < slices; s++)
          unpacked.set(unpackColsFromInt32((z.data as Int32Array).subarray(s * zw * zc, (s + 1) * zw * zc), zr, zc, bits), s * zr * zc);
        zpValues = Float64Array.from(unpacked);
        m.set("weight_zero_point", new Tensor("i8", [...shape.slice(0, -1), zc], unpacked));
      } else if (!w.symmetric && state.has("weight_zero_point")) zpValues = values(state.get("weight_zero_point")!);
      const zpDType = state.get("weight_zero_point")?.dtype;
      const half = 1 << (bits - 1);
      const exact = zpValues === null || zpDType === "i32" || zpDType === "i8" || zpDType === "u8";
      const wt = deq(codes, shape, scale, zpValues, null, d, exact, [-half, half - 1]);
      if (E.isLeft(wt)) return wt;
      m.delete("weight_packed");
      m.set("weight", wt.right);
      return E.right(m);
    }
    case "naive-quantized":
    case "int-quantized":
    case "float-quantized":
    case "mxfp8-quantized": {
      const qE = need(state, ctx, "weight", format);
      if (E.isLeft(qE)) return qE;
      let s = scale;
      if (format === "mxfp8-quantized") {
        s = mxScaleToBf16(scale);
        m.set("weight_scale", s);
      }
      const d = computeDType(s);
      if (d === null) return E.left(fail(ctx, "weight_scale", format, `scale dtype ${s.dtype} is not a float dtype`));
      const zp = !w.symmetric && state.has("weight_zero_point") ? values(state.get("weight_zero_point")!) : null;
      const smallCodes = SMALL_CODE_DTYPES.includes(qE.right.dtype);
      const zpDType = state.get("weight_zero_point")?.dtype;
      const exact = smallCodes && (zp === null || zpDType === "i8" || zpDType === "u8");
      const q = qE.right;
      const wt =
        q.dtype === "i8"
          ? deq(q.data as Int8Array, q.shape, s, zp, null, d, exact, [-128, 127])
          : deq(values(q), q.shape, s, zp, null, d, exact);
      if (E.isLeft(wt)) return wt;
      m.delete("weight");
      m.set("weight", wt.right);
      return E.right(m);
    }
    case "nvfp4-pack-quantized":
    case "mxfp4-pack-quantized":
    case "mxfp6-pack-quantized": {
      const pE = need(state, ctx, "weight_packed", format);
      if (E.isLeft(pE)) return pE;
      const p = pE.right;
      if (p.dtype !== "u8" || p.rank !== 2) return E.left(fail(ctx, "weight_packed", format, `expected 2-D uint8, got ${p.dtype}[${p.shape.join(", ")}]`));
      const [rows, pcols] = [p.shape[0]!, p.shape[1]!];
      const bytes = p.data as Uint8Array;
      let q: Float64Array;
      let cols: number;
      if (format === "mxfp6-pack-quantized") {
        if (pcols % 3 !== 0) return E.left(fail(ctx, "weight_packed", format, `packed columns ${pcols} are not a multiple of 3`));
        cols = (pcols * 4) / 3;
        q = new Float64Array(rows * cols);
        for (let g = 0; g < q.length / 4; g++) {
          const word = bytes[g * 3]! | (bytes[g * 3 + 1]! << 8) | (bytes[g * 3 + 2]! << 16);
          for (let j = 0; j < 4; j++) {
            const code = (word >>> (6 * j)) & 0x3f;
            const mag = FP6_E2M3_MAGNITUDES[code & 0x1f]!;
            q[g * 4 + j] = code & 0x20 ? -mag : mag;
          }
        }
      } else {
        cols = pcols * 2;
        q = new Float64Array(rows * cols);
        for (let i = 0; i < q.length; i++) q[i] = FP4_E2M1_VALUES[(bytes[i >> 1]! >> ((i & 1) * 4)) & 0xf]!;
      }
      const sf = format === "nvfp4-pack-quantized" ? castFromNumbers("bf16", values(scale), scale.shape) : mxScaleToBf16(scale);
      const g = format === "nvfp4-pack-quantized" && state.has("weight_global_scale") ? getNumber(state.get("weight_global_scale")!, 0) : null;
      const wt = deq(q, [rows, cols], sf, null, g, "bf16", true);
      if (E.isLeft(wt)) return wt;
      m.delete("weight_packed");
      m.set("weight", wt.right);
      m.set("weight_scale", sf);
      return E.right(m);
    }
  }
};
