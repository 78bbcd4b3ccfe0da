import { DTYPES, type Tensor, Tensor as TensorClass } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type { MsLayout } from "./ms-model-slim-layout.js";

// What Calibrator.save does beyond the safe_tensor layout (reference/formats.md §1.5; MSL save/saver/ascend_v1.py,
// save/writer/buffered_safetensor.py, save/complex_quantifier.py):
// - save_type "ascendV1": the same tensors, but W4A16 weights packed two int4 per int8 (`_pack_int4`: along the last
//   dim, element 2j in the low nibble, 2j+1 in the high one), per channel along k → [n, k/2], per group on the
//   transpose → [n/2, k]; the description is `quant_model_description.json` with "version": "1.0.0" and, for
//   per-group weights, "group_size".
// - part_file_size (GiB): tensors in the order msModelSlim yields them (named_modules order) go to the pending file
//   until adding one would reach the limit; files `<prefix>-0000i-of-0000N.safetensors` and
//   `<prefix>.safetensors.index.json` {metadata.total_size, weight_map}.

export const MS_ASCEND_V1_VERSION = "1.0.0";
export const MS_ASCEND_V1_DESCRIPTION = "quant_model_description.json";
/** BufferedSafetensorsWriter's ONE_GB_FILE_BYTES. */
export const MS_GIB = 1073741824;

/** `_pack_int4`: rows × cols int4 values (cols even) → rows × cols/2 bytes, low nibble first. */
export const msPackInt4 = (codes: Int8Array, rows: number, cols: number): Int8Array => {
  const out = new Int8Array((rows * cols) / 2);
  for (let i = 0; i < out.length; i++) out[i] = ((codes[2 * i + 1]! << 4) | (codes[2 * i]! & 0xf)) << 24 >> 24;
  return out;
};

/** The inverse of msPackInt4 (sign-extended nibbles). */
export const msUnpackInt4 = (packed: Int8Array): Int8Array => {
  const out = new Int8Array(packed.length * 2);
  for (let i = 0; i < packed.length; i++) {
    out[2 * i] = (packed[i]! << 28) >> 28;
    out[2 * i + 1] = packed[i]! >> 4;
  }
  return out;
};

const transpose = (a: Int8Array, rows: number, cols: number): Int8Array => {
  const t = new Int8Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c]!;
  return t;
};

/** `_w4a16_pack_int4`: per channel (one scale column) packed along k; per group packed along n of the transpose. */
export const msPackW4A16 = (codes: Int8Array, n: number, k: number, perChannel: boolean): E.Either<string, Tensor> => {
  if (perChannel) return k % 2 === 0 ? E.right(new TensorClass("i8", [n, k / 2], msPackInt4(codes, n, k))) : E.left(`k = ${k} must be even to pack int4`);
  if (n % 2 !== 0) return E.left(`n = ${n} must be even to pack int4`);
  return E.right(new TensorClass("i8", [n / 2, k], transpose(msPackInt4(transpose(codes, n, k), k, n), k, n / 2)));
};

/** msPackW4A16 undone: the int8 [n, k] codes of a packed W4A16 weight. */
export const msUnpackW4A16 = (w: Tensor, n: number, k: number): E.Either<string, Int8Array> => {
  const d = w.data as Int8Array;
  if (w.dtype !== "i8") return E.left(`packed W4A16 weight must be int8, got ${w.dtype}`);
  if (w.shape[0] === n && w.shape[1]! * 2 === k) return E.right(msUnpackInt4(d));
  if (w.shape[0]! * 2 === n && w.shape[1] === k) return E.right(transpose(msUnpackInt4(transpose(d, n / 2, k)), k, n));
  return E.left(`packed W4A16 weight [${w.shape}] is neither [${n}, ${k / 2}] nor [${n / 2}, ${k}]`);
};

/** A safe_tensor layout as save_type ascendV1 writes it (W4A16 packed; versioned description). */
export const msAscendV1 = (layout: MsLayout, groupSize: number | null): E.Either<string, MsLayout> => {
  const { model_quant_type, ...rest } = layout.description;
  const head: Record<string, string | number> = { version: MS_ASCEND_V1_VERSION, model_quant_type: model_quant_type! };
  const { kv_cache_type, kv_quant_type, ...named } = rest;
  if (kv_cache_type !== undefined) Object.assign(head, { kv_cache_type, kv_quant_type });
  if (groupSize !== null && groupSize > 0) head.group_size = groupSize;
  const byName = new Map(layout.tensors);
  const tensors: Array<readonly [string, Tensor]> = [];
  for (const [name, t] of layout.tensors) {
    const scale = name.endsWith(".weight") && model_quant_type === "W4A16" && named[name] === "W4A16" ? byName.get(`${name}_scale`) : undefined;
    if (scale === undefined) {
      tensors.push([name, t]);
      continue;
    }
    const p = msPackW4A16(t.data as Int8Array, t.shape[0]!, t.shape[1]!, scale.shape[1] === 1);
    if (E.isLeft(p)) return E.left(`${name}: ${p.left}`);
    tensors.push([name, p.right]);
  }
  return E.right({ ...layout, tensors, description: { ...head, ...named } as Record<string, string>, descriptionFile: MS_ASCEND_V1_DESCRIPTION });
};

// ----- tensor order and shards -----

const LAYER = /^model\.layers\.(\d+)\.(.+)$/;
const MODULE_RANK = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"];
const PARAM_RANK = ["kv_cache_scale", "kv_cache_offset", "weight", "bias", "weight_scale", "weight_offset", "input_scale", "input_offset", "quant_bias", "deq_scale"];

const keyOf = (name: string): readonly [number, number, string, number] => {
  const dot = name.lastIndexOf(".");
  const [module, param] = [name.slice(0, dot), name.slice(dot + 1)];
  const p = PARAM_RANK.indexOf(param);
  const pr = p < 0 ? PARAM_RANK.length : p;
  const m = LAYER.exec(module);
  if (m !== null) {
    const r = MODULE_RANK.indexOf(m[2]!);
    return [Number(m[1]), r < 0 ? MODULE_RANK.length : r, m[2]!, pr];
  }
  const outer = module === "model.embed_tokens" ? -1 : module === "lm_head" ? Number.MAX_SAFE_INTEGER : Number.MAX_SAFE_INTEGER - 1;
  return [outer, 0, module, pr];
};

/** Tensors in the order msModelSlim yields them for a Llama (named_modules order; per module kv, weight, bias, scales…). */
export const msTensorOrder = <T>(tensors: ReadonlyArray<readonly [string, T]>): Array<readonly [string, T]> =>
  tensors
    .map((e) => ({ e, k: keyOf(e[0]) }))
    .sort((a, b) => a.k[0] - b.k[0] || a.k[1] - b.k[1] || (a.k[2] < b.k[2] ? -1 : a.k[2] > b.k[2] ? 1 : 0) || a.k[3] - b.k[3] || (a.e[0] < b.e[0] ? -1 : 1))
    .map((x) => x.e);

export interface MsShards {
  readonly files: ReadonlyArray<{ readonly file: string; readonly tensors: ReadonlyArray<readonly [string, Tensor]> }>;
  readonly indexFile: string;
  readonly index: { readonly metadata: { readonly total_size: number }; readonly weight_map: Readonly<Record<string, string>> };
}

const shardName = (prefix: string, i: number, n: number): string =>
  n <= 99999 ? `${prefix}-${String(i).padStart(5, "0")}-of-${String(n).padStart(5, "0")}.safetensors` : `${prefix}-${i}-of-${n}.safetensors`;

/** BufferedSafetensorsWriter: `weightFile`'s tensors (in msTensorOrder) cut into files below `maxBytes` each. */
export const msShards = (weightFile: string, tensors: ReadonlyArray<readonly [string, Tensor]>, maxBytes: number): MsShards => {
  const prefix = weightFile.replace(".safetensors", "");
  const groups: Array<Array<readonly [string, Tensor]>> = [];
  let pending: Array<readonly [string, Tensor]> = [];
  let pendingBytes = 0;
  let total = 0;
  for (const [name, t] of msTensorOrder(tensors)) {
    const size = t.data.length * DTYPES[t.dtype].wordBytes; // numel · element_size, as torch counts
    if (pendingBytes + size >= maxBytes && pending.length > 0) {
      groups.push(pending);
      [pending, pendingBytes] = [[], 0];
    }
    pending.push([name, t]);
    pendingBytes += size;
    total += size;
  }
  if (pending.length > 0) groups.push(pending);
  const files = groups.map((g, i) => ({ file: shardName(prefix, i + 1, groups.length), tensors: g }));
  const weight_map = Object.fromEntries(files.flatMap((f) => f.tensors.map(([n]) => [n, f.file] as const)));
  return { files, indexFile: `${prefix}.safetensors.index.json`, index: { metadata: { total_size: total }, weight_map } };
};
