import { FP4_E2M1_VALUES, Tensor, castFromNumbers, getNumber, sizeOf } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type { CompressionFormat, CompressorContext, CompressorScheme, ModuleState } from "./compression-format.js";
import type { SerializationError } from "./errors.js";
import { PACK_ZP_STRATEGIES, type Result, fail, need, rowsCols, values } from "./internal/compressor-support.js";
import { type ComputeDType, SMALL_CODE_DTYPES, computeDType, dequantize } from "./internal/dequantize-codes.js";
import { FP6_E2M3_MAGNITUDES, mxScaleToBf16 } from "./mx-scale.js";
import { packedWords, unpackColsFromInt32, unpackRowsFromInt32 } from "./pack-int32.js";

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
