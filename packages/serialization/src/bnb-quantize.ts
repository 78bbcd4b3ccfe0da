// bitsandbytes 0.50.2 quantization as transformers runs it when it loads a model with a BitsAndBytesConfig:
// 4-bit NF4/FP4 (`quantize_4bit`, the default backend — the one the CPU runs): per block of `blocksize` flattened
// values absmax in f32, x·(1/absmax) (a ragged tail block divides instead), clamped to [-1, 1], bucketized against the
// f32 midpoints of the sorted code (a value on a midpoint takes the lower code), FP4 mapped back through the sort
// order, two codes per byte with the first in the HIGH nibble. Double quant: offset = mean(absmax), and
// absmax − offset blockwise-8-bit quantized (blocksize 256) with the dynamic map. LLM.int8 weights
// (`Int8Params._quantize`): cast to fp16, per row absmax, round(x·(127/absmax)) half to even.
import { roundHalfEven } from "@llmq/tensor";
import { PyFloat, dumpPythonJson } from "./python-json.js";
import { roundTo } from "./float-rounding.js";
import type { Bnb4bitParts, Bnb4bitState } from "./bnb-dequantize.js";

const fr = Math.fround;

/** bitsandbytes' NF4 table (get_4bit_type("nf4")), f32. */
export const BNB_NF4_CODE = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
  0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

/** bitsandbytes' FP4 table: the e2m1 values in bit-pattern order divided (in f32) by their absmax 12 (its "-0" is the
 * Python int -0, so index 8 holds +0.0 too). */
export const BNB_FP4_CODE = Float32Array.from([0, 0.0625, 8, 12, 4, 6, 2, 3, 0, -0.0625, -8, -12, -4, -6, -2, -3], (v) => fr(v / 12));

/**
 * create_dynamic_map(signed=True, max_exponent_bits=7, total_bits=8) as bitsandbytes 0.50.2 builds it with torch 2.13
 * (f32 little-endian, base64): the double-quant code every checkpoint stores as `nested_quant_map`. It is a table, not
 * recomputed: torch's vectorized f32 linspace inside it rounds some of its 256 values differently per CPU (the map
 * written on an AVX2 and an AVX-512 machine can differ in the last bit), so llmq writes the one bitsandbytes wrote here
 * and always dequantizes with the map stored in the checkpoint.
 */
const DYNAMIC_MAP_B64 =
  "MzN+v5qZer8AAHe/ZmZzv83Mb78zM2y/mplovwAAZb9mZmG/zcxdvzMzWr+amVa/AABTv2ZmT7/NzEu/MzNIv5qZRL8AAEG/ZmY9v83MOb80Mza/mpkyvwAA" +
  "L79mZiu/zcwnvzQzJL+amSC/AAAdv2ZmGb/NzBW/NDMSv5qZDr8AAAu/ZmYHv8zMA78zMwC/MjP5vgAA8r7MzOq+mpnjvmZm3L4zM9W+AADOvszMxr6amb++" +
  "Zma4vjMzsb4AAKq+zMyivpqZm75mZpS+NDONvgAAhr6ZmX2+MzNvvs3MYL5mZlK+AABEvpqZNb4zMye+zcwYvmZmCr4AAPi9NDPbvYXryb33KMS9Z2a+vdej" +
  "uL1I4bK9uB6tvSpcp72amaG9CtebvXsUlr3rUZC9XY+Kvc3MhL17FH69XY9yvT0KZ70fhVu9AABQveF6RL3D9Ti9o3AtvYXrIb1nZha9SOEKvVK4/rwVrue8" +
  "16PQvJqZubxdj6K8H4WLvMP1aLxI4Tq8ZDsfvBgEFrzNzAy8gZUDvGq89LvTTeK7O9/Pu6RwvbsNAqu7dJOYu90khruKbGe7XI9Cuy2yHbv8qfG6ne+nuv9l" +
  "d7o+6Fm6gGo8usHsHroBbwG6g+LHuQXnjLkL1yO5Sx+6uLPvirg0gDe4BkKyt/8FAreUGlq2t6MTtQAAAAC3oxM1lBpaNv8FAjcGQrI3NIA3OLPvijhLH7o4" +
  "C9cjOQXnjDmD4sc5AW8BOsHsHjqAajw6PuhZOv9ldzqd76c6/KnxOi2yHTtcj0I7imxnO90khjt0k5g7DQKrO6RwvTs73887003iO2q89DuBlQM8zcwMPBgE" +
  "FjxkOx88SOE6PMP1aDwfhYs8XY+iPJqZuTzXo9A8Fa7nPFK4/jxI4Qo9Z2YWPYXrIT2jcC09w/U4PeF6RD0AAFA9H4VbPT0KZz1dj3I9exR+Pc3MhD1dj4o9" +
  "61GQPXsUlj0K15s9mpmhPSpcpz24Hq09SOGyPdejuD1nZr499yjEPYXryT00M9s9AAD4PWZmCj7NzBg+MzMnPpqZNT4AAEQ+ZmZSPs3MYD4zM28+mZl9PgAA" +
  "hj40M40+ZmaUPpqZmz7MzKI+AACqPjMzsT5mZrg+mpm/PszMxj4AAM4+MzPVPmZm3D6ameM+zMzqPgAA8j4yM/k+MzMAP8zMAz9mZgc/AAALP5qZDj80MxI/" +
  "zcwVP2ZmGT8AAB0/mpkgPzQzJD/NzCc/ZmYrPwAALz+amTI/NDM2P83MOT9mZj0/AABBP5qZRD8zM0g/zcxLP2ZmTz8AAFM/mplWPzMzWj/NzF0/ZmZhPwAA" +
  "ZT+amWg/MzNsP83Mbz9mZnM/AAB3P5qZej8zM34/AACAPw==";

export const bnbDynamicMap = (): Float32Array => {
  const bin = atob(DYNAMIC_MAP_B64);
  const bytes = Uint8Array.from(bin, (ch) => ch.charCodeAt(0));
  return new Float32Array(bytes.buffer);
};

/** The sort order of a code (stable: FP4's +0 sorts before −0, as torch.argsort gives it) and its f32 midpoints. */
const bounds = (code: Float32Array): { readonly order: Int32Array; readonly mids: Float32Array } => {
  const order = Int32Array.from(Array.from(code.keys()).sort((a, b) => code[a]! - code[b]!));
  const mids = Float32Array.from({ length: code.length - 1 }, (_, i) => fr(fr(code[order[i]!]! + code[order[i + 1]!]!) / 2));
  return { order, mids };
};

/** torch.bucketize(x, mids) (right=False): how many midpoints are strictly below x. */
const bucketize = (x: number, mids: Float32Array): number => {
  let lo = 0;
  let hi = mids.length;
  while (lo < hi) {
    const m = (lo + hi) >> 1;
    if (mids[m]! < x) lo = m + 1;
    else hi = m;
  }
  return lo;
};

const TINY = fr(1e-38);

/** The default backend's blockwise step: per-block absmax and the bucket index of every scaled value. */
export const quantizeBlockwise = (x: Float32Array, code: Float32Array, blocksize: number): { readonly q: Uint8Array; readonly absmax: Float32Array } => {
  const n = x.length;
  const blocks = Math.ceil(n / blocksize);
  const { order, mids } = bounds(code);
  const sortedIsIdentity = order.every((v, i) => v === i);
  const q = new Uint8Array(n);
  const absmax = new Float32Array(blocks);
  for (let b = 0; b < blocks; b++) {
    const s = b * blocksize;
    const e = Math.min(n, s + blocksize);
    let m = 0;
    for (let i = s; i < e; i++) m = Math.max(m, Math.abs(x[i]!));
    absmax[b] = m;
    const am = Math.max(m, TINY);
    const ragged = e - s < blocksize;
    const inv = fr(1 / am); // 1.0 / absmax: reciprocal(absmax) * 1.0
    for (let i = s; i < e; i++) {
      const v = Math.min(1, Math.max(-1, ragged ? fr(x[i]! / am) : fr(x[i]! * inv)));
      const k = bucketize(v, mids);
      q[i] = sortedIsIdentity ? k : order[k]!;
    }
  }
  return { q, absmax };
};

export type BnbFloat = "float32" | "float16" | "bfloat16";

export interface Bnb4bitOptions {
  readonly quantType: "nf4" | "fp4";
  readonly blocksize: number;
  readonly doubleQuant: boolean;
  /** The weight's dtype (stored in quant_state; dequantization rounds to it). */
  readonly dtype: BnbFloat;
}

/** What `<m>.weight` and `<m>.weight.*` hold after Params4bit quantization, ready for dequantizeBnb4bit too. */
export interface Bnb4bitQuantized extends Bnb4bitParts {
  readonly nestedOffset: number | undefined;
}

/** A [out, in] weight (values already in `dtype`) → packed NF4/FP4 codes and their quant state. */
export const quantizeBnb4bit = (w: Float32Array, shape: readonly [number, number], o: Bnb4bitOptions): Bnb4bitQuantized => {
  const code = o.quantType === "nf4" ? BNB_NF4_CODE : BNB_FP4_CODE;
  const { q, absmax } = quantizeBlockwise(w, code, o.blocksize);
  const padded = q.length % 2 === 1 ? (o.quantType === "nf4" ? 7 : 0) : null; // bucket of the 0.0 pad value
  const packed = new Uint8Array(Math.ceil(q.length / 2));
  for (let i = 0; i < packed.length; i++) packed[i] = (q[2 * i]! << 4) | (2 * i + 1 < q.length ? q[2 * i + 1]! : (padded ?? 0));
  const state: Bnb4bitState = { quant_type: o.quantType, blocksize: o.blocksize, dtype: o.dtype, shape: [shape[0], shape[1]] };
  if (!o.doubleQuant) return { weight: packed, absmax, quantMap: code, state, nestedOffset: undefined };
  let sum = 0;
  for (const a of absmax) sum += a;
  const offset = fr(fr(sum) / absmax.length);
  const nestedCode = bnbDynamicMap();
  const nested = quantizeBlockwise(
    absmax.map((a) => fr(a - offset)),
    nestedCode,
    256,
  );
  return {
    weight: packed,
    absmax: nested.q,
    quantMap: code,
    nestedAbsmax: nested.absmax,
    nestedQuantMap: nestedCode,
    state: { ...state, nested_blocksize: 256, nested_offset: offset },
    nestedOffset: offset,
  };
};

/** The bytes of `<m>.weight.quant_state.bitsandbytes__<type>`: json.dumps of the non-tensor quant state. */
export const bnbQuantStateBytes = (s: Bnb4bitState): Uint8Array => {
  const nested = s.nested_offset === undefined ? {} : { nested_blocksize: s.nested_blocksize ?? 256, nested_dtype: "float32", nested_offset: new PyFloat(s.nested_offset) };
  return new TextEncoder().encode(dumpPythonJson({ quant_type: s.quant_type, blocksize: s.blocksize, dtype: s.dtype, shape: [...s.shape], ...nested }));
};

/** LLM.int8 weight: fp16 cast, per-row absmax (SCB), round(x·(127/absmax)) to int8 (an all-zero row stays 0). */
export const quantizeBnbInt8 = (w: Float32Array, rows: number, cols: number): { readonly cb: Int8Array; readonly scb: Float32Array } => {
  const h = w.map(roundTo("float16"));
  const cb = new Int8Array(rows * cols);
  const scb = new Float32Array(rows);
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let c = 0; c < cols; c++) m = Math.max(m, Math.abs(h[r * cols + c]!));
    scb[r] = m;
    if (m === 0) continue;
    const s = fr(fr(1 / m) * 127); // torch evaluates scalar / tensor as reciprocal(tensor) * scalar
    for (let c = 0; c < cols; c++) cb[r * cols + c] = roundHalfEven(fr(h[r * cols + c]! * s));
  }
  return { cb, scb };
};
