// bitsandbytes checkpoints (transformers' bnb serialization) dequantized as bitsandbytes 0.50 does on the CPU:
// 4-bit NF4/FP4 (`functional.dequantize_4bit`: code[nibble]·absmax in f32, first element in the HIGH nibble, absmax
// itself blockwise-8-bit with double quant: nested_code[u8]·nested_absmax + offset, all f32; the result rounded to the
// quant_state dtype) and LLM.int8 (`int8_vectorwise_dequant`: (CB·SCB)·(1/127) in f32).
import * as E from "fp-ts/lib/Either.js";
import { roundTo } from "./float-rounding.js";
import type { DenseWeight } from "./gptq-awq-dequantize.js";

/** The JSON bitsandbytes stores (as uint8 bytes) under `<m>.weight.quant_state.bitsandbytes__<type>`. */
export interface Bnb4bitState {
  readonly quant_type: "nf4" | "fp4";
  readonly blocksize: number;
  readonly dtype: "float32" | "bfloat16" | "float16";
  readonly shape: ReadonlyArray<number>;
  readonly nested_blocksize?: number;
  readonly nested_offset?: number;
}

export interface Bnb4bitParts {
  /** packed codes, two per byte */
  readonly weight: Uint8Array;
  /** f32 per block, or u8 codes per block (double quant) */
  readonly absmax: Float32Array | Uint8Array;
  readonly quantMap: Float32Array;
  readonly nestedAbsmax?: Float32Array | undefined;
  readonly nestedQuantMap?: Float32Array | undefined;
  readonly state: Bnb4bitState;
}

const fr = Math.fround;
const posInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;

/** Parses and checks the quant_state JSON bytes. */
export const parseBnbQuantState = (bytes: Uint8Array): E.Either<string, Bnb4bitState> => {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes));
  } catch (e) {
    return E.left(`quant_state is not UTF-8 JSON (${(e as Error).message})`);
  }
  const s = v as Record<string, unknown>;
  if (typeof v !== "object" || v === null) return E.left("quant_state must be a JSON object");
  if (s.quant_type !== "nf4" && s.quant_type !== "fp4") return E.left(`quant_type ${JSON.stringify(s.quant_type)} (bitsandbytes has nf4, fp4)`);
  if (!posInt(s.blocksize)) return E.left(`blocksize ${JSON.stringify(s.blocksize)} must be a positive integer`);
  if (s.dtype !== "float32" && s.dtype !== "bfloat16" && s.dtype !== "float16") return E.left(`dtype ${JSON.stringify(s.dtype)} (bitsandbytes dequantizes to float32, bfloat16, float16)`);
  if (!Array.isArray(s.shape) || s.shape.length === 0 || !s.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) return E.left(`shape ${JSON.stringify(s.shape)} must be a list of sizes`);
  if (s.nested_blocksize !== undefined && !posInt(s.nested_blocksize)) return E.left(`nested_blocksize ${JSON.stringify(s.nested_blocksize)} must be a positive integer`);
  if (s.nested_offset !== undefined && typeof s.nested_offset !== "number") return E.left("nested_offset must be a number");
  return E.right(s as unknown as Bnb4bitState);
};

/** Per-block absmax in f32: stored directly, or (double quant) nested_code[u8]·nested_absmax[i / nested_blocksize] + offset. */
const blockAbsmax = (p: Bnb4bitParts, blocks: number): E.Either<string, Float32Array> => {
  if (p.absmax.length !== blocks) return E.left(`absmax has ${p.absmax.length} values for ${blocks} blocks`);
  if (p.absmax instanceof Float32Array) return p.nestedAbsmax === undefined ? E.right(p.absmax) : E.left("nested_absmax given but absmax is not uint8 codes");
  const nb = p.state.nested_blocksize ?? 256;
  if (p.nestedAbsmax === undefined || p.nestedQuantMap === undefined) return E.left("uint8 absmax needs nested_absmax and nested_quant_map (double quant)");
  if (p.nestedQuantMap.length !== 256) return E.left(`nested_quant_map has ${p.nestedQuantMap.length} values, expected 256`);
  if (p.nestedAbsmax.length !== Math.ceil(blocks / nb)) return E.left(`nested_absmax has ${p.nestedAbsmax.length} values, expected ${Math.ceil(blocks / nb)}`);
  const offset = fr(p.state.nested_offset ?? 0);
  const out = new Float32Array(blocks);
  for (let i = 0; i < blocks; i++) out[i] = fr(p.nestedQuantMap[p.absmax[i]!]! * p.nestedAbsmax[Math.floor(i / nb)]!) + offset;
  return E.right(out);
};

/** NF4 / FP4 weight of quant_state.shape ([out, in]); values already rounded to quant_state.dtype. */
export const dequantizeBnb4bit = (p: Bnb4bitParts): E.Either<string, DenseWeight> => {
  const { shape, blocksize } = p.state;
  if (shape.length !== 2) return E.left(`shape ${JSON.stringify(shape)} is not a 2-D linear weight`);
  const n = shape[0]! * shape[1]!;
  if (p.weight.length !== Math.ceil(n / 2)) return E.left(`weight has ${p.weight.length} bytes for ${n} 4-bit values`);
  if (p.quantMap.length !== 16) return E.left(`quant_map has ${p.quantMap.length} values, expected 16`);
  const blocks = Math.ceil(n / blocksize);
  const am = blockAbsmax(p, blocks);
  if (E.isLeft(am)) return am;
  const y = new Float32Array(n);
  const round = roundTo(p.state.dtype);
  for (let i = 0; i < n; i++) {
    const b = p.weight[i >> 1]!;
    // f32 product, then the cast to the quant_state dtype (a second rounding for bf16/f16)
    y[i] = round(fr(p.quantMap[i & 1 ? b & 0xf : b >> 4]! * am.right[Math.floor(i / blocksize)]!));
  }

  return E.right({ data: y, shape: [shape[0]!, shape[1]!] });
};

/** 1/127 as bitsandbytes writes it (7.874015718698502e-3), applied in f32 after the f32 product CB·SCB. */
const INV_127 = fr(7.874015718698502e-3);

/** LLM.int8: weight int8 [out, in], SCB f32 [out] → (CB·SCB)·(1/127). */
export const dequantizeBnbInt8 = (cb: Int8Array, shape: ReadonlyArray<number>, scb: Float32Array): E.Either<string, DenseWeight> => {
  if (shape.length !== 2 || shape[0]! * shape[1]! !== cb.length) return E.left(`weight shape [${shape.join(", ")}] does not hold ${cb.length} values`);
  if (scb.length !== shape[0]) return E.left(`SCB has ${scb.length} values for ${shape[0]} rows`);
  const [rows, cols] = [shape[0]!, shape[1]!];
  const y = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) y[r * cols + c] = fr(cb[r * cols + c]! * scb[r]!) * INV_127;
  return E.right({ data: y, shape: [rows, cols] });
};
