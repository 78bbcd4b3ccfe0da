// Dequantization of GPTQ (AutoGPTQ v1 / GPTQModel v2) and AWQ (AutoAWQ GEMM / GEMV) packed linears to an f32
// [out, in] weight. W = (q − z)·scale is exact in f32 (|q − z| < 2^9, scale fp16), so the result is the one value both
// GPTQModel's `convert_gptq_file` (f32) and AutoAWQ's `dequantize_gemm` (with f32 scales) give. Reading a checkpoint
// (quantized-checkpoint.ts) then rounds it to the stored scales' dtype, as the runtimes' f16 multiply does.
import * as E from "fp-ts/lib/Either.js";

/** One packed linear's tensors: int32 words and f32 scales (fp16 widened), each with its stored shape. */
export interface PackedTensor<A> {
  readonly data: A;
  readonly shape: ReadonlyArray<number>;
}

export interface GptqParts {
  readonly qweight: PackedTensor<Int32Array>;
  readonly qzeros: PackedTensor<Int32Array>;
  readonly scales: PackedTensor<Float32Array>;
  /** Absent → k // group_size (GPTQModel and transformers write it; old AutoGPTQ files may not). */
  readonly gIdx?: PackedTensor<Int32Array> | undefined;
}

export interface GptqOptions {
  readonly bits: 2 | 3 | 4 | 8;
  /** −1 = one group over all inputs. */
  readonly groupSize: number;
  /** checkpoint_format "gptq" (v1: zeros stored minus one) or "gptq_v2". */
  readonly v1: boolean;
}

export interface AwqParts {
  readonly qweight: PackedTensor<Int32Array>;
  readonly qzeros: PackedTensor<Int32Array>;
  readonly scales: PackedTensor<Float32Array>;
}

export interface AwqOptions {
  readonly groupSize: number;
  readonly version: "gemm" | "gemv";
}

export interface DenseWeight {
  readonly data: Float32Array;
  /** [out_features, in_features] */
  readonly shape: readonly [number, number];
}

export const GPTQ_BITS: ReadonlyArray<number> = [2, 3, 4, 8];

// ----- bit unpacking -----

/**
 * The 32 3-bit values of three consecutive words (AutoGPTQ `pack` / GPTQModel `_pack_rows_3`): 10 values, one that
 * straddles words 0/1 (low 2 bits at 30–31, bit 2 at bit 0 of word 1), 10, one straddling 1/2, 10.
 */
const unpack3 = (w0: number, w1: number, w2: number, out: Int32Array, o: number, stride: number): void => {
  for (let j = 0; j < 10; j++) out[o + j * stride] = (w0 >>> (3 * j)) & 7;
  out[o + 10 * stride] = ((w0 >>> 30) & 3) | ((w1 & 1) << 2);
  for (let j = 0; j < 10; j++) out[o + (11 + j) * stride] = (w1 >>> (3 * j + 1)) & 7;
  out[o + 21 * stride] = ((w1 >>> 31) & 1) | ((w2 & 3) << 1);
  for (let j = 0; j < 10; j++) out[o + (22 + j) * stride] = (w2 >>> (3 * j + 2)) & 7;
};

/** Codes packed along the first dimension: words [R, C] → values [R·32/bits, C] (qweight). */
export const unpackRows = (words: Int32Array, rows: number, cols: number, bits: number): Int32Array => {
  const out = new Int32Array((rows * 32 / bits) * cols);
  if (bits === 3) {
    for (let r = 0; r < rows; r += 3)
      for (let c = 0; c < cols; c++) unpack3(words[r * cols + c]!, words[(r + 1) * cols + c]!, words[(r + 2) * cols + c]!, out, (r / 3) * 32 * cols + c, cols);
    return out;
  }
  const pf = 32 / bits;
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++)
    for (let i = 0; i < pf; i++) for (let c = 0; c < cols; c++) out[(r * pf + i) * cols + c] = (words[r * cols + c]! >>> (bits * i)) & mask;
  return out;
};

/** Codes packed along the last dimension: words [R, C] → values [R, C·32/bits] (qzeros, AWQ qweight). */
export const unpackCols = (words: Int32Array, rows: number, cols: number, bits: number): Int32Array => {
  const n = (cols * 32) / bits;
  const out = new Int32Array(rows * n);
  if (bits === 3) {
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c += 3) unpack3(words[r * cols + c]!, words[r * cols + c + 1]!, words[r * cols + c + 2]!, out, r * n + (c / 3) * 32, 1);
    return out;
  }
  const pf = 32 / bits;
  const mask = (1 << bits) - 1;
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) for (let i = 0; i < pf; i++) out[r * n + c * pf + i] = (words[r * cols + c]! >>> (bits * i)) & mask;
  return out;
};

// ----- shape checks -----

const dims2 = (what: string, t: PackedTensor<{ readonly length: number }>): E.Either<string, readonly [number, number]> => {
  if (!(t.shape.length === 2 && t.shape.every((d) => Number.isSafeInteger(d) && d > 0))) return E.left(`${what} must be 2-D and non-empty, got shape [${t.shape.join(", ")}]`);
  return t.data.length === t.shape[0]! * t.shape[1]! ? E.right([t.shape[0]!, t.shape[1]!]) : E.left(`${what} holds ${t.data.length} values for shape [${t.shape.join(", ")}]`);
};

const expectShape = (what: string, got: readonly [number, number], want: readonly [number, number]): E.Either<string, void> =>
  got[0] === want[0] && got[1] === want[1] ? E.right(undefined) : E.left(`${what} has shape [${got.join(", ")}], expected [${want.join(", ")}]`);

const gptqShapes = (p: GptqParts, o: GptqOptions): E.Either<string, { k: number; n: number; groups: number }> => {
  if (!GPTQ_BITS.includes(o.bits)) return E.left(`bits ${o.bits} (GPTQ packs 2, 3, 4 or 8)`);
  const perBlock = o.bits === 3 ? 3 : 1;
  const valuesPerBlock = o.bits === 3 ? 32 : 32 / o.bits;
  return pipeE(dims2("qweight", p.qweight), (qw) => {
    if (qw[0] % perBlock !== 0) return E.left(`3-bit qweight rows ${qw[0]} are not a multiple of 3`);
    const k = (qw[0] / perBlock) * valuesPerBlock;
    const n = qw[1];
    if (!(o.groupSize === -1 || (Number.isSafeInteger(o.groupSize) && o.groupSize > 0))) return E.left(`group_size ${o.groupSize} must be -1 or positive`);
    const groups = o.groupSize === -1 ? 1 : Math.ceil(k / o.groupSize);
    const zCols = (n * o.bits) / 32;
    if (!Number.isInteger(zCols)) return E.left(`out_features ${n} is not a multiple of ${32 / gcd(32, o.bits)} for ${o.bits}-bit qzeros`);
    return pipeE(dims2("scales", p.scales), (sc) =>
      pipeE(expectShape("scales", sc, [p.gIdx === undefined ? groups : sc[0], n]), () =>
        pipeE(dims2("qzeros", p.qzeros), (qz) =>
          pipeE(expectShape("qzeros", qz, [sc[0], zCols]), () => {
            if (p.gIdx !== undefined && (p.gIdx.shape.length !== 1 || p.gIdx.shape[0] !== k || p.gIdx.data.length !== k)) return E.left(`g_idx has shape [${p.gIdx.shape.join(", ")}], expected [${k}]`);
            const bad = p.gIdx === undefined ? -1 : p.gIdx.data.findIndex((g) => g < 0 || g >= sc[0]);
            return bad >= 0 ? E.left(`g_idx[${bad}] = ${p.gIdx!.data[bad]} is outside 0..${sc[0] - 1}`) : E.right({ k, n, groups: sc[0] });
          }),
        ),
      ),
    );
  });
};

const gcd = (a: number, b: number): number => (b === 0 ? a : gcd(b, a % b));
const pipeE = <A, B>(e: E.Either<string, A>, f: (a: A) => E.Either<string, B>): E.Either<string, B> => (E.isLeft(e) ? e : f(e.right));

// ----- GPTQ -----

/**
 * W[n, k] = (q[k, n] − z[g, n])·scales[g, n] with g = g_idx[k]. v1 zeros are the stored field plus one, wrapped to
 * the bit width as GPTQModel's `_correct_gptq_v1_qzeros` does (a v1 asymmetric zero of 0 was stored as −1 and is
 * lost — AutoGPTQ's OR-packing of −1 also sets every higher field of its word; both are reproduced, not repaired).
 */
export const dequantizeGptq = (p: GptqParts, o: GptqOptions): E.Either<string, DenseWeight> =>
  pipeE(unpackGptq(p, o), ({ k, n, q, z, gIdx }) => {
    const s = p.scales.data;
    const w = new Float32Array(n * k);
    for (let kk = 0; kk < k; kk++) {
      const g = gIdx[kk]!;
      for (let nn = 0; nn < n; nn++) w[nn * k + kk] = (q[kk * n + nn]! - z[g * n + nn]!) * s[g * n + nn]!;
    }
    return E.right({ data: w, shape: [n, k] as const });
  });

/** A GPTQ linear's codes unpacked, checked against each other's shapes (scales stay as stored: [groups, N]). */
export interface UnpackedGptq {
  readonly k: number;
  readonly n: number;
  readonly groups: number;
  /** Unsigned codes [K, N]. */
  readonly q: Int32Array;
  /** Zero points [groups, N], v1's stored-minus-one corrected. */
  readonly z: Int32Array;
  /** Column → group [K]: the stored g_idx, else k / group_size. */
  readonly gIdx: Int32Array;
}

/** qweight / qzeros / g_idx of a GPTQ linear unpacked (what dequantizeGptq multiplies out; runtimes repack it). */
export const unpackGptq = (p: GptqParts, o: GptqOptions): E.Either<string, UnpackedGptq> =>
  pipeE(gptqShapes(p, o), ({ k, n, groups }) => {
    const q = unpackRows(p.qweight.data, p.qweight.shape[0]!, n, o.bits);
    const z = unpackCols(p.qzeros.data, groups, p.qzeros.shape[1]!, o.bits);
    const mask = (1 << o.bits) - 1;
    if (o.v1) for (let i = 0; i < z.length; i++) z[i] = (z[i]! + 1) & mask;
    const gs = o.groupSize === -1 ? k : o.groupSize;
    const gIdx = p.gIdx === undefined ? Int32Array.from({ length: k }, (_, kk) => Math.floor(kk / gs)) : p.gIdx.data;
    return E.right({ k, n, groups, q, z, gIdx });
  });

// ----- AWQ -----

/** Column c of an 8-column AWQ GEMM chunk lives in nibble AWQ_REVERSE_ORDER[c] (AutoAWQ packing_utils). */
const AWQ_REVERSE_ORDER = [0, 4, 1, 5, 2, 6, 3, 7] as const;

const unpackAwqGemm = (words: Int32Array, rows: number, cols: number): Int32Array => {
  const out = new Int32Array(rows * cols * 8);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) {
      const w = words[r * cols + c]!;
      for (let j = 0; j < 8; j++) out[r * cols * 8 + c * 8 + j] = (w >>> (4 * AWQ_REVERSE_ORDER[j]!)) & 15;
    }
  return out;
};

/** AutoAWQ gemv.py calculate_zeros_width: int32 words of zeros per output row (groups padded for the kernel). */
export const awqGemvZerosWidth = (inFeatures: number, groupSize: number): E.Either<string, number> => {
  const mult = groupSize >= 128 ? 1 : groupSize === 64 ? 2 : groupSize === 32 ? 4 : 0;
  if (mult === 0) return E.left(`AWQ GEMV supports group_size 32, 64 or ≥ 128, got ${groupSize}`);
  const base = Math.ceil(inFeatures / groupSize / 8);
  return E.right(Math.ceil(base / mult) * mult);
};

const awqGemm = (p: AwqParts, gs: number): E.Either<string, DenseWeight> =>
  pipeE(dims2("qweight", p.qweight), ([k, nw]) => {
    const n = nw * 8;
    if (k % gs !== 0) return E.left(`in_features ${k} is not a multiple of group_size ${gs}`);
    const g = k / gs;
    return pipeE(dims2("scales", p.scales), (sc) =>
      pipeE(expectShape("scales", sc, [g, n]), () =>
        pipeE(dims2("qzeros", p.qzeros), (qz) =>
          pipeE(expectShape("qzeros", qz, [g, nw]), () => {
            const q = unpackAwqGemm(p.qweight.data, k, nw);
            const z = unpackAwqGemm(p.qzeros.data, g, nw);
            const s = p.scales.data;
            const w = new Float32Array(n * k);
            for (let kk = 0; kk < k; kk++) {
              const gi = Math.floor(kk / gs);
              for (let nn = 0; nn < n; nn++) w[nn * k + kk] = (q[kk * n + nn]! - z[gi * n + nn]!) * s[gi * n + nn]!;
            }
            return E.right({ data: w, shape: [n, k] as const });
          }),
        ),
      ),
    );
  });

const awqGemv = (p: AwqParts, gs: number): E.Either<string, DenseWeight> =>
  pipeE(dims2("qweight", p.qweight), ([n, kw]) => {
    const k = kw * 8;
    if (k % gs !== 0) return E.left(`in_features ${k} is not a multiple of group_size ${gs}`);
    return pipeE(awqGemvZerosWidth(k, gs), (zw) =>
      pipeE(dims2("scales", p.scales), (sc) =>
        pipeE(expectShape("scales", sc, [n, zw * 8]), () =>
          pipeE(dims2("qzeros", p.qzeros), (qz) =>
            pipeE(expectShape("qzeros", qz, [n, zw]), () => {
              const q = unpackCols(p.qweight.data, n, kw, 4);
              const z = unpackCols(p.qzeros.data, n, zw, 4);
              const s = p.scales.data;
              const w = new Float32Array(n * k);
              for (let nn = 0; nn < n; nn++)
                for (let kk = 0; kk < k; kk++) {
                  const gi = Math.floor(kk / gs);
                  w[nn * k + kk] = (q[nn * k + kk]! - z[nn * zw * 8 + gi]!) * s[nn * zw * 8 + gi]!;
                }
              return E.right({ data: w, shape: [n, k] as const });
            }),
          ),
        ),
      ),
    );
  });

/** AWQ 4-bit with zero points: GEMM (qweight [in, out/8], AWQ nibble order) or GEMV (qweight [out, in/8], natural). */
export const dequantizeAwq = (p: AwqParts, o: AwqOptions): E.Either<string, DenseWeight> =>
  !(Number.isSafeInteger(o.groupSize) && o.groupSize > 0) ? E.left(`group_size ${o.groupSize} must be positive`) : o.version === "gemm" ? awqGemm(p, o.groupSize) : awqGemv(p, o.groupSize);
