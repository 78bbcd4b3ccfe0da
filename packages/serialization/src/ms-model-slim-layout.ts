import { type Tensor, Tensor as TensorClass, cast, roundHalfEven, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { msUnpackW4A16 } from "./ms-model-slim-save.js";

// msModelSlim's safe_tensor output (reference/formats.md §1.5; MSL save/saver/safetensors.py, complex_quantifier.py,
// docs quantized_weight_format.md): one `quant_model_weight_<type>.safetensors` with every tensor of the model and a
// `quant_model_description_<type>.json` naming each tensor's type ("FLOAT" or the model_quant_type) plus
// `model_quant_type` (and `kv_cache_type` / `kv_quant_type` "C8" with KV int8). Per quantized linear <L> (n out, k in):
// `<L>.weight` int8 [n, k] (4-bit values in [−8, 7]), `<L>.weight_scale` / `<L>.weight_offset` f32 [n, 1] per channel or
// [n, k/g] per group (offset 0 when symmetric); W8A8 adds `input_scale` / `input_offset` [1] in the model dtype,
// `deq_scale` [n] (input_scale·weight_scale in f32, stored as int64 holding the f32 bit pattern unless the model is
// bf16) and `quant_bias` int32 [n] = round(bias/deq_scale − input_offset·Σ_k W[n, k]). Dequantization of a weight is
// (W − offset)·scale per channel or per group of g consecutive input elements.

// ----- model -----

export type MsLayoutType = "W8A8" | "W8A8_DYNAMIC" | "W8A16" | "W4A16";

/** One quantized linear in msModelSlim's terms (signed codes, float scale and offset). */
export interface MsLinear {
  readonly name: string;
  readonly out: number;
  readonly in: number;
  /** Signed codes [out, in]. */
  readonly codes: Int8Array;
  /** [out] per channel or [out · in/g] per group (row-major [out, in/g]). */
  readonly scale: Float32Array;
  readonly offset: Float32Array;
  /** g for per-group, null per channel. */
  readonly groupSize: number | null;
  /** W8A8: the static per-tensor input qparams (offset integer-valued). */
  readonly input?: { readonly scale: number; readonly offset: number };
  readonly bias?: Float32Array | null;
}

export interface MsLayout {
  readonly tensors: ReadonlyArray<readonly [string, Tensor]>;
  readonly description: Readonly<Record<string, string>>;
  readonly weightFile: string;
  readonly descriptionFile: string;
}

// ----- functions -----

/** The file names Calibrator.save gives a type (lower-cased model_quant_type). */
export const msModelSlimFileNames = (type: string): { readonly weightFile: string; readonly descriptionFile: string } => ({
  weightFile: `quant_model_weight_${type.toLowerCase()}.safetensors`,
  descriptionFile: `quant_model_description_${type.toLowerCase()}.json`,
});

const f32t = (data: Float32Array, shape: ReadonlyArray<number>): Tensor => new TensorClass("f32", shape, data);

/** A scalar [1] in the model dtype (bf16 / f16 by round-to-nearest-even cast). */
const scalarIn = (dtype: "f32" | "bf16" | "f16", v: number): Tensor => {
  const t = f32t(Float32Array.of(v), [1]);
  return dtype === "f32" ? t : cast(t, dtype);
};

/** W8A8's deq_scale and quant_bias (complex_quantifier), in the dtype msModelSlim stores for the model dtype. */
const w8a8Derived = (l: MsLinear, dtype: "f32" | "bf16" | "f16"): ReadonlyArray<readonly [string, Tensor]> => {
  const input = l.input!;
  const deq = new Float32Array(l.out);
  const bias = new Int32Array(l.out);
  for (let n = 0; n < l.out; n++) {
    deq[n] = Math.fround(input.scale * l.scale[n]!);
    let sum = 0;
    for (let k = 0; k < l.in; k++) sum += l.codes[n * l.in + k]!;
    const b = l.bias?.[n] ?? 0;
    bias[n] = roundHalfEven(Math.fround(b / deq[n]!) - input.offset * sum); // torch.round: half to even
  }
  const deqT =
    dtype === "bf16"
      ? f32t(deq, [l.out])
      : new TensorClass("i64", [l.out], BigInt64Array.from(new Uint32Array(deq.buffer), (u) => BigInt(u)));
  return [
    [`${l.name}.deq_scale`, deqT],
    [`${l.name}.quant_bias`, new TensorClass("i32", [l.out], bias)],
  ];
};

/** The tensors and description of a model in msModelSlim's layout; `floats` are every other tensor, kept as they are. */
export const msModelSlimLayout = (
  type: MsLayoutType,
  linears: ReadonlyArray<MsLinear>,
  floats: ReadonlyMap<string, Tensor>,
  modelDtype: "f32" | "bf16" | "f16",
): E.Either<string, MsLayout> => {
  const tensors: Array<readonly [string, Tensor]> = [...floats];
  const description: Record<string, string> = { model_quant_type: type };
  for (const name of floats.keys()) description[name] = isKv(name) ? type : "FLOAT";
  // KV int8 parameters are typed like the linears (msModelSlim's docs example) and flag the model as C8
  if ([...floats.keys()].some(isKv)) Object.assign(description, { kv_cache_type: "C8", kv_quant_type: "C8" });
  for (const l of linears) {
    if ((type === "W8A8") !== (l.input !== undefined)) return E.left(`${l.name}: ${type} ${type === "W8A8" ? "needs" : "has no"} static input qparams`);
    if (floats.has(`${l.name}.weight`)) return E.left(`${l.name}.weight is given both as float and as quantized`);
    if (l.groupSize !== null && (l.groupSize < 1 || l.in % l.groupSize !== 0)) return E.left(`${l.name}: group size ${l.groupSize} does not divide its ${l.in} input features`);
    const cols = l.groupSize === null ? 1 : l.in / l.groupSize;
    if (l.codes.length !== l.out * l.in || l.scale.length !== l.out * cols || l.offset.length !== l.scale.length)
      return E.left(`${l.name}: codes / scale / offset sizes do not match [${l.out}, ${l.in}] with ${cols} scale column(s)`);
    const own: Array<readonly [string, Tensor]> = [
      [`${l.name}.weight`, new TensorClass("i8", [l.out, l.in], l.codes)],
      [`${l.name}.weight_scale`, f32t(l.scale, [l.out, cols])],
      [`${l.name}.weight_offset`, f32t(l.offset, [l.out, cols])],
    ];
    if (type === "W8A8") {
      own.push([`${l.name}.input_scale`, scalarIn(modelDtype, l.input!.scale)], [`${l.name}.input_offset`, scalarIn(modelDtype, l.input!.offset)]);
      own.push(...w8a8Derived(l, modelDtype));
      if (l.bias) own.push([`${l.name}.bias`, f32t(l.bias, [l.out])]);
    } else if (l.bias) own.push([`${l.name}.bias`, f32t(l.bias, [l.out])]);
    for (const [n, t] of own) {
      tensors.push([n, t]);
      description[n] = type;
    }
  }
  return E.right({ tensors, description, ...msModelSlimFileNames(type) });
};

const isKv = (name: string): boolean => name.endsWith(".kv_cache_scale") || name.endsWith(".kv_cache_offset");

/** The quantized linears of a layout: names whose `.weight` is typed other than FLOAT and that have a weight_scale. */
const quantizedLinears = (description: Readonly<Record<string, string>>, has: (n: string) => boolean): ReadonlyArray<string> =>
  Object.keys(description)
    .filter((n) => n.endsWith(".weight") && description[n] !== "FLOAT" && has(`${n}_scale`))
    .map((n) => n.slice(0, -".weight".length));

/** Whether a description's W4A16 weights are ascendV1's packed int4 pairs. */
const isPacked = (description: Readonly<Record<string, unknown>>): boolean => typeof description.version === "string" && description.model_quant_type === "W4A16";

/** The signed int8 codes [n, k] of a quantized linear `l` of a layout (ascendV1 int4 pairs unpacked). */
export const msWeightCodes = (description: Readonly<Record<string, unknown>>, tensors: ReadonlyMap<string, Tensor>, l: string): E.Either<string, { readonly q: Int8Array; readonly n: number; readonly k: number }> => {
  const [w, s] = [tensors.get(`${l}.weight`), tensors.get(`${l}.weight_scale`)];
  return w === undefined || s === undefined ? E.left(`${l}: no weight / weight_scale`) : codesOf(l, w, s, isPacked(description));
};

const DERIVED = ["weight_scale", "weight_offset", "input_scale", "input_offset", "deq_scale", "quant_bias"];

/**
 * Reads a layout back to dense f32 weights: each quantized linear's `weight` = (W − offset)·scale (per channel, or per
 * group of in/cols consecutive elements), its derived tensors dropped; the C8 KV parameters set aside (`kvCache`: a
 * dense model has no place for them); every other tensor as stored. Every tensor must be described (msModelSlim's own
 * check), and the description must name model_quant_type. A versioned (ascendV1) W4A16 description means packed int4.
 */
export const dequantizeMsModelSlim = (
  description: Readonly<Record<string, unknown>>,
  tensors: ReadonlyMap<string, Tensor>,
): E.Either<string, { readonly tensors: Map<string, Tensor>; readonly type: string; readonly dequantized: ReadonlyArray<string>; readonly kvCache: ReadonlyArray<string> }> => {
  const type = description.model_quant_type;
  if (typeof type !== "string") return E.left("the description has no model_quant_type");
  const desc = description as Readonly<Record<string, string>>;
  for (const n of tensors.keys()) if (!(n in desc)) return E.left(`tensor ${n} is not in the description (msModelSlim requires every tensor to be described)`);
  const linears = quantizedLinears(desc, (n) => tensors.has(n));
  const out = new Map<string, Tensor>();
  const derived = new Set(linears.flatMap((l) => DERIVED.map((d) => `${l}.${d}`)));
  for (const [n, t] of tensors) if (!derived.has(n) && !isKv(n)) out.set(n, t);
  const packed = isPacked(description);
  for (const l of linears) {
    const w = dequantizeMsWeight(l, tensors, packed);
    if (E.isLeft(w)) return w;
    out.set(`${l}.weight`, w.right);
  }
  return E.right({ tensors: out, type, dequantized: linears, kvCache: [...tensors.keys()].filter(isKv) });
};

/** The int8 codes [n, k] of a weight, unpacking ascendV1's int4 pairs (`packed`): n from the scale's rows. */
const codesOf = (l: string, w: Tensor, s: Tensor, packed: boolean): E.Either<string, { q: Int8Array; n: number; k: number }> => {
  if (w.dtype !== "i8" || w.rank !== 2) return E.left(`${l}.weight must be int8 [n, k], got ${w.dtype} [${w.shape}]`);
  if (!packed) return E.right({ q: w.data as Int8Array, n: w.shape[0]!, k: w.shape[1]! });
  const n = s.shape[0]!;
  const k = w.shape[0] === n ? 2 * w.shape[1]! : w.shape[1]!;
  return E.bimap((e: string) => `${l}.weight: ${e}`, (q: Int8Array) => ({ q, n, k }))(msUnpackW4A16(w, n, k));
};

const dequantizeMsWeight = (l: string, tensors: ReadonlyMap<string, Tensor>, packed: boolean): E.Either<string, Tensor> => {
  const w = tensors.get(`${l}.weight`)!;
  const s = tensors.get(`${l}.weight_scale`)!;
  const o = tensors.get(`${l}.weight_offset`);
  const codes = codesOf(l, w, s, packed);
  if (E.isLeft(codes)) return codes;
  const { q, n, k } = codes.right;
  const cols = s.size / n;
  if (!Number.isInteger(cols) || cols < 1 || k % cols !== 0) return E.left(`${l}.weight_scale [${s.shape}] is neither per channel nor per group of [${n}, ${k}]`);
  if (o !== undefined && o.size !== s.size) return E.left(`${l}.weight_offset [${o.shape}] does not match weight_scale [${s.shape}]`);
  const sv = toFloat32(s).data;
  const ov = o === undefined ? new Float32Array(s.size) : toFloat32(o).data;
  const g = k / cols;
  const y = new Float32Array(n * k);
  for (let r = 0; r < n; r++)
    for (let c = 0; c < k; c++) {
      const j = r * cols + Math.floor(c / g);
      y[r * k + c] = Math.fround(Math.fround(q[r * k + c]! - ov[j]!) * sv[j]!);
    }
  return E.right(f32t(y, [n, k]));
};
