import { FP4_E2M1_VALUES, Tensor, castFromNumbers, fp4e2m1FromNumber, sizeOf } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type CompressionFormat, type CompressorContext, type CompressorScheme, type ModuleState, torchName } from "./compression-format.js";
import {
  FLOAT_DTYPES,
  PACK_ZP_STRATEGIES,
  type Result,
  TORCH_FLOAT,
  fail,
  intCodes,
  naiveDType,
  need,
  removeSymmetricZp,
  rowsCols,
  values,
} from "./internal/compressor-support.js";
import { FP6_E2M3_MAGNITUDES, mxScaleFromFloat } from "./mx-scale.js";
import { packColsToInt32, packRowsToInt32, packedWords } from "./pack-int32.js";

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
