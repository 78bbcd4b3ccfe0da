// transformers' TorchAoHfQuantizer with torchao 0.18's Int8Tensor (Int8WeightOnlyConfig,
// Int8DynamicActivationInt8WeightConfig) and Int4Tensor (Int4WeightOnlyConfig, ./torchao-int4.ts): each converted linear's weight becomes Int8Tensor.from_hp — torchao's
// choose_qparams_affine (symmetric, f32 eps, scale computed in the load dtype then stored as f32) and quantize_affine
// (x · (1/scale), round half to even, clamp) — and save_pretrained flattens it as torchao's safetensors support does:
// `<m>._weight_qdata` / `_weight_scale` / `_weight_zero_point` plus per-tensor JSON in the file's __metadata__.
import { type PyJson, type PyJsonObject, type TorchFloat, dumpPythonJson, roundTo } from "@llmq/serialization";
import { Tensor, roundHalfEven } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, hfQuantizeFailed, unsupportedHfQuantization } from "../errors.js";
import { isPyDict, pyRepr, pyStrings } from "../py-values.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { QuantizedTensors, Quantizer } from "../quantizer.js";
import { type TorchAoInt4Params, dequantizeInt4, int4DenseShape, int4KeepsDense, int4MetadataEntry, int4ParamsOf, quantizeInt4 } from "./torchao-int4.js";

const NAME = "torchao";

/** torchao granularities as block shapes over a [out, in] weight (get_block_size). */
type Granularity = { readonly kind: "row"; readonly dim: number } | { readonly kind: "tensor" } | { readonly kind: "group"; readonly size: number };

export interface TorchAoActivation {
  /** PerRow(dim=-1): a scale per token; PerTensor: one for the whole input. */
  readonly perToken: boolean;
  readonly symmetric: boolean;
  readonly reduceRange: boolean;
}

export interface TorchAoInt8Params {
  readonly configType: "Int8WeightOnlyConfig" | "Int8DynamicActivationInt8WeightConfig";
  readonly weight: Granularity;
  readonly reduceRange: boolean;
  /** Dynamic activation quantization (Int8DynamicActivationInt8WeightConfig), null for weight-only. */
  readonly activation: TorchAoActivation | null;
}

const bad = (m: string): E.Either<HfQuantizerError, never> => E.left(unsupportedHfQuantization(NAME, m));

/** The torchao config llmq runs: Int8Tensor's (two configs) or Int4Tensor's. */
export type TorchAoParams = TorchAoInt8Params | TorchAoInt4Params;

const granularityOf = (v: PyJson | undefined, what: string): E.Either<HfQuantizerError, Granularity> => {
  if (!isPyDict(v)) return bad(`${what} must be a torchao granularity (PerRow, PerTensor, PerGroup), got ${pyRepr(v ?? null)}`);
  const data = isPyDict(v._data) ? v._data : {};
  if (v._type === "PerTensor") return E.right({ kind: "tensor" });
  if (v._type === "PerRow") {
    const dim = data.dim ?? -1;
    return dim === -1 || dim === 1 || dim === 0 || dim === -2 ? E.right({ kind: "row", dim: dim as number }) : bad(`${what}: PerRow(dim=${pyRepr(dim)}) on a 2-D weight`);
  }
  if (v._type === "PerGroup") {
    const g = data.group_size;
    return typeof g === "number" && Number.isSafeInteger(g) && g > 0 ? E.right({ kind: "group", size: g }) : bad(`${what}: PerGroup group_size ${pyRepr(g ?? null)} must be a positive integer`);
  }
  return bad(`${what}: granularity ${pyRepr(v._type ?? null)} is not one torchao's Int8Tensor takes (PerRow, PerTensor, PerGroup)`);
};

const dynamicParams = (d: PyJsonObject): E.Either<HfQuantizerError, TorchAoInt8Params> => {
  const g = d.granularity ?? null;
  // Int8Tensor._normalize_granularity: None → PerRow for both; one → both; a list of two → [activation, weight].
  const [ga, gw] = Array.isArray(g) ? (g.length === 2 ? [g[0], g[1]] : [null, null]) : g === null ? [{ _type: "PerRow", _data: { dim: -1 } }, { _type: "PerRow", _data: { dim: -1 } }] : [g, g];
  if (Array.isArray(g) && g.length !== 2) return bad(`granularity list must have exactly 2 elements, got ${g.length}`);
  const act = granularityOf(ga as PyJson, "activation granularity");
  const w = granularityOf(gw as PyJson, "weight granularity");
  if (E.isLeft(act)) return act;
  if (E.isLeft(w)) return w;
  if (act.right.kind === "group" || w.right.kind === "group") return bad("Int8DynamicActivationInt8WeightConfig supports PerTensor and PerRow only");
  if (act.right.kind === "row" && act.right.dim !== -1) return bad(`Only PerRow(dim=-1) is supported for activation quantization, got PerRow(dim=${act.right.dim})`);
  const mapping = isPyDict(d.act_mapping_type) ? d.act_mapping_type._data : d.act_mapping_type;
  if (mapping !== "SYMMETRIC" && mapping !== "ASYMMETRIC") return bad(`act_mapping_type must be SYMMETRIC or ASYMMETRIC, got ${pyRepr(mapping ?? null)}`);
  const reduceRange = d.reduce_range === true;
  return E.right({ configType: "Int8DynamicActivationInt8WeightConfig", weight: w.right, reduceRange, activation: { perToken: act.right.kind === "row", symmetric: mapping === "SYMMETRIC", reduceRange } });
};

/** The torchao config inside TorchAoConfig's quant_type, as llmq runs it. */
export const torchaoParamsOf = (c: HfQuantizationConfig): E.Either<HfQuantizerError, TorchAoParams> => {
  const qt = c.dict.quant_type;
  const ao = isPyDict(qt) ? qt.default : undefined;
  if (!isPyDict(ao) || !isPyDict(ao._data)) return bad(`quant_type must be {"default": <torchao config dict>}, got ${pyRepr(qt ?? null)}`);
  if (c.dict.include_input_output_embeddings === true)
    return bad("include_input_output_embeddings=true quantizes nn.Embedding weights, which llmq does not write (torchao's embedding layout); leave it false");
  if (ao._type === "Int4WeightOnlyConfig") return int4ParamsOf(ao._data);
  if (ao._type === "Int8DynamicActivationInt8WeightConfig") return dynamicParams(ao._data);
  if (ao._type !== "Int8WeightOnlyConfig") return bad(`${pyRepr(ao._type ?? null)} is not a torchao config llmq quantizes`);
  if ((ao._data.group_size ?? null) !== null) return bad(`Int8WeightOnlyConfig group_size ${pyRepr(ao._data.group_size ?? null)}: torchao 0.18 only takes group_size=None (use granularity PerGroup)`);
  const w = granularityOf(ao._data.granularity ?? { _type: "PerRow", _data: { dim: -1 } }, "granularity");
  return E.map((weight: Granularity): TorchAoInt8Params => ({ configType: "Int8WeightOnlyConfig", weight, reduceRange: false, activation: null }))(w);
};

/** get_block_size on [out, in]. */
const blockOf = (g: Granularity, out: number, inF: number): E.Either<string, readonly [number, number]> => {
  if (g.kind === "tensor") return E.right([out, inF]);
  if (g.kind === "row") return E.right(g.dim === 0 || g.dim === -2 ? [out, 1] : [1, inF]);
  return inF % g.size === 0 ? E.right([1, g.size]) : E.left(`Last dimension of input ${inF} is not divisible by group size ${g.size}`);
};

const EPS = 2 ** -23; // torch.finfo(torch.float32).eps, used by Int8Tensor.from_hp for every dtype

/**
 * Int8Tensor.from_hp(weight, granularity, SYMMETRIC, reduce_range): per block, scale = amax / ((qmax − qmin) / 2)
 * computed in the weight's dtype (f32 opmath, rounded to it), clamped to eps, stored f32; q = clamp(round(w · (1/scale))).
 */
export const torchaoInt8Weight = (w: Float32Array, out: number, inF: number, block: readonly [number, number], dtype: TorchFloat, reduceRange: boolean) => {
  const [qmin, qmax] = reduceRange ? [-64, 63] : [-128, 127];
  const [br, bc] = block;
  const [sr, sc] = [out / br, inF / bc];
  const scale = new Float32Array(sr * sc);
  const inDtype = roundTo(dtype);
  for (let i = 0; i < sr; i++)
    for (let j = 0; j < sc; j++) {
      let amax = 0;
      for (let r = i * br; r < (i + 1) * br; r++) for (let k = j * bc; k < (j + 1) * bc; k++) amax = Math.max(amax, Math.abs(w[r * inF + k]!));
      const s = inDtype(Math.fround(amax / ((qmax - qmin) / 2)));
      scale[i * sc + j] = s < EPS ? EPS : s;
    }
  const qdata = new Int8Array(out * inF);
  for (let r = 0; r < out; r++)
    for (let k = 0; k < inF; k++) {
      const inv = Math.fround(1 / scale[Math.floor(r / br) * sc + Math.floor(k / bc)]!);
      qdata[r * inF + k] = Math.min(qmax, Math.max(qmin, roundHalfEven(Math.fround(w[r * inF + k]! * inv))));
    }
  return { qdata, scale, scaleShape: [sr, sc] as const };
};

/**
 * Int8Tensor.from_hp on a linear's input [rows, cols] (the act_quant_kwargs path of torchao's int8 linear), returned
 * dequantized, (q − zero_point) · scale: the int8 matmul torchao runs, y = (x_q − z)·s_x · (w_q·s_w)ᵀ, is this input
 * times the dequantized weight. Per token (PerRow(-1)) or per tensor, computed in f32 (llmq's forward dtype).
 */
export const torchaoFakeQuantizeInput = (x: Float32Array, rows: number, cols: number, a: TorchAoActivation): Float32Array => {
  const [qmin, qmax] = a.reduceRange ? [-64, 63] : [-128, 127];
  const out = new Float32Array(x.length);
  const [blocks, len] = a.perToken ? [rows, cols] : [1, rows * cols];
  for (let b = 0; b < blocks; b++) {
    let [lo, hi] = [0, 0]; // min(min, 0), max(max, 0)
    for (let i = b * len; i < (b + 1) * len; i++) [lo, hi] = [Math.min(lo, x[i]!), Math.max(hi, x[i]!)];
    let s = Math.fround(a.symmetric ? Math.max(-lo, hi) / ((qmax - qmin) / 2) : Math.fround(hi - lo) / (qmax - qmin));
    s = s < EPS ? EPS : s;
    const z = a.symmetric ? 0 : Math.min(qmax, Math.max(qmin, qmin - roundHalfEven(Math.fround(lo / s))));
    const inv = Math.fround(1 / s);
    for (let i = b * len; i < (b + 1) * len; i++) out[i] = Math.fround((Math.min(qmax, Math.max(qmin, roundHalfEven(Math.fround(x[i]! * inv)) + z)) - z) * s);
  }
  return out;
};

const quantizeTorchAo = (c: HfQuantizationConfig, w: Tensor, dtype: TorchFloat): E.Either<HfQuantizerError, QuantizedTensors> => {
  const p = torchaoParamsOf(c);
  if (E.isLeft(p)) return p;
  if (p.right.configType === "Int4WeightOnlyConfig") return quantizeInt4(p.right, w, dtype);
  const [out, inF] = w.shape as [number, number];
  const block = blockOf(p.right.weight, out, inF);
  if (E.isLeft(block)) return E.left(hfQuantizeFailed(NAME, block.left));
  const q = torchaoInt8Weight(w.data as Float32Array, out, inF, block.right, dtype, p.right.reduceRange);
  return E.right([
    ["_weight_qdata", new Tensor("i8", [out, inF], q.qdata)],
    ["_weight_scale", new Tensor("f32", q.scaleShape, q.scale)],
    ["_weight_zero_point", new Tensor("i8", q.scaleShape, new Int8Array(q.scale.length))],
  ]);
};

/** Int8Tensor.dequantize as f32: (qdata − zero_point) · scale per block (Int4Tensor: ./torchao-int4.ts). */
const dequantizeTorchAo = (c: HfQuantizationConfig, parts: ReadonlyMap<string, Tensor>): E.Either<HfQuantizerError, Tensor> => {
  const p = torchaoParamsOf(c);
  if (E.isLeft(p)) return p;
  if (p.right.configType === "Int4WeightOnlyConfig") return dequantizeInt4(parts);
  const [q, s, z] = ["_weight_qdata", "_weight_scale", "_weight_zero_point"].map((n) => parts.get(n));
  if (q === undefined || s === undefined) return E.left(hfQuantizeFailed(NAME, "an Int8Tensor needs _weight_qdata and _weight_scale"));
  if (q.dtype !== "i8" || q.rank !== 2 || s.rank !== 2 || s.dtype !== "f32") return E.left(hfQuantizeFailed(NAME, `Int8Tensor parts: qdata ${q.dtype}[${q.shape}], scale ${s.dtype}[${s.shape}] (want int8 2-D, f32 2-D)`));
  const [out, inF] = q.shape as [number, number];
  const [sr, sc] = s.shape as [number, number];
  if (out % sr !== 0 || inF % sc !== 0) return E.left(hfQuantizeFailed(NAME, `scale [${sr}, ${sc}] does not tile qdata [${out}, ${inF}]`));
  const [br, bc] = [out / sr, inF / sc];
  const [qd, sd, zd] = [q.data as Int8Array, s.data as Float32Array, z?.data as Int8Array | undefined];
  const outData = new Float32Array(out * inF);
  for (let r = 0; r < out; r++)
    for (let k = 0; k < inF; k++) {
      const b = Math.floor(r / br) * sc + Math.floor(k / bc);
      outData[r * inF + k] = Math.fround((qd[r * inF + k]! - (zd?.[b] ?? 0)) * sd[b]!);
    }
  return E.right(new Tensor("f32", [out, inF], outData));
};

const DTYPE_JSON = (dtype: TorchFloat): PyJsonObject => ({ _type: "torch.dtype", _data: dtype });

const actKwargsJson = (a: TorchAoActivation): PyJsonObject => ({
  _type: "QuantizeTensorToInt8Kwargs",
  _data: {
    granularity: a.perToken ? { _type: "PerRow", _data: { dim: -1 } } : { _type: "PerTensor", _data: {} },
    mapping_type: { _type: "MappingType", _data: a.symmetric ? "SYMMETRIC" : "ASYMMETRIC" },
    reduce_range: a.reduceRange,
  },
});

/**
 * save_pretrained's safetensors metadata for a torchao model: flatten_tensor_state_dict's JSON per state-dict entry
 * (TensorSubclassAttributeJSONEncoder on Int8Tensor, {"_type": "Tensor"} for plain ones), "tensor_names", then
 * transformers' "format": "pt". Key order is the state dict's (Python's own order is a Rust HashMap's, per process).
 */
export const torchaoMetadata = (
  c: HfQuantizationConfig,
  stateDict: ReadonlyArray<string>,
  shapes: ReadonlyMap<string, ReadonlyArray<number>>,
  dtype: TorchFloat,
): E.Either<HfQuantizerError, Record<string, string>> => {
  const p = torchaoParamsOf(c);
  if (E.isLeft(p)) return p;
  const meta: Record<string, string> = {};
  for (const name of stateDict) {
    const shape = shapes.get(name);
    if (shape === undefined) {
      meta[name] = dumpPythonJson({ _type: "Tensor" });
      continue;
    }
    if (p.right.configType === "Int4WeightOnlyConfig") {
      meta[name] = dumpPythonJson(int4MetadataEntry(p.right, shape));
      continue;
    }
    const block = blockOf(p.right.weight, shape[0]!, shape[1]!);
    if (E.isLeft(block)) return E.left(hfQuantizeFailed(NAME, block.left));
    meta[name] = dumpPythonJson({
      _type: "Int8Tensor",
      _data: { act_quant_kwargs: p.right.activation === null ? null : actKwargsJson(p.right.activation), reduce_range: p.right.reduceRange, block_size: [...block.right], dtype: DTYPE_JSON(dtype) },
      _tensor_data_names: ["zero_point", "qdata", "scale"],
    });
  }
  meta.tensor_names = dumpPythonJson([...stateDict]);
  meta.format = "pt";
  return E.right(meta);
};

const warnings = (c: HfQuantizationConfig, p: TorchAoParams): ReadonlyArray<string> => {
  const ao = ((c.dict.quant_type as PyJsonObject).default as PyJsonObject)._data as PyJsonObject;
  const int4 = p.configType === "Int4WeightOnlyConfig";
  return [
    ...(ao.weight_only_decode === true ? ["weight_only_decode=true is saved in the config but torchao 0.18 does not read it (no effect on the weights or the forward)"] : []),
    ...(int4 && ao.int4_tile_packed_ntile === 16 ? ["int4_tile_packed_ntile=16 only applies to int4_packing_format tile_packed_to_4d: saved, no effect on the plain layout"] : []),
    ...(c.dict.untie_embedding_weights === true ? ["untie_embedding_weights only acts with include_input_output_embeddings=true: saved, no effect"] : []),
    ...(!int4 && p.activation !== null ? ["Int8DynamicActivationInt8WeightConfig quantizes each linear's input at run time: llmq eval runs torchao's per-token (or per-tensor) int8 activation quantization on the inputs"] : []),
  ];
};

export const TorchAoQuantizer: Quantizer = {
  name: NAME,
  requiresCalibration: false,
  isSerializable: true,
  isTrainable: true,
  skipModules: (c) => pyStrings(c.dict.modules_to_not_convert),
  addDefaultSkips: false,
  skipMatchesParameter: true,
  validateEnvironment: (c) => E.map((p: TorchAoParams) => warnings(c, p))(torchaoParamsOf(c)),
  updateDtype: (_c, dtype) => dtype ?? "float32",
  keepsDense: (c, shape) => {
    const p = torchaoParamsOf(c);
    return E.isRight(p) && p.right.configType === "Int4WeightOnlyConfig" ? int4KeepsDense(p.right, shape) : null;
  },
  quantizeLinear: quantizeTorchAo,
  dequantizeLinear: dequantizeTorchAo,
  storedParts: ["_weight_qdata", "_weight_scale", "_weight_zero_point"],
  denseShape: (shapes, c) => {
    const p = torchaoParamsOf(c);
    return E.isRight(p) && p.right.configType === "Int4WeightOnlyConfig" ? int4DenseShape(shapes.get("_weight_qdata")) : shapes.get("_weight_qdata");
  },
  safetensorsMetadata: torchaoMetadata,
  inputQuantizer: (c) =>
    E.map((p: TorchAoParams) => (p.configType === "Int4WeightOnlyConfig" || p.activation === null ? null : (x: Float32Array, rows: number, cols: number) => torchaoFakeQuantizeInput(x, rows, cols, p.activation!)))(torchaoParamsOf(c)),
};
