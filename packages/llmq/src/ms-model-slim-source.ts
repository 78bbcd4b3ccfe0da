import type { KvCacheFormat } from "@llmq/kv-cache";
import { type WeightSource, memoryWeightSource, readMsModelSlimFiles } from "@llmq/models";
import { decodeQuantizationArgs, formatSchemeError } from "@llmq/schemes";
import { dequantizeMsModelSlim } from "@llmq/serialization";
import { type Tensor, Tensor as TensorClass, nodeBuiltin, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import type { InputQuantSpec } from "./activation-quant.js";
import { type LlmqError, modelError } from "./errors.js";
import { MS_CT_TYPES } from "./ms-to-compressed-tensors.js";
const { readdir } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");

// An msModelSlim directory opened for running (llmq eval / generate), as an Ascend runtime runs it: the linears'
// weights dequantized ((W − offset)·scale, what `llmq convert --from msmodelslim` writes), W8A8 linears' inputs
// quantized with their static input_scale / input_offset (W8A8_DYNAMIC: per token, as llmq calibrated them), and with
// C8 the KV cache holding int8 codes with one kv_cache_scale / kv_cache_offset per KV channel. msModelSlim calibrates
// C8 on the k/v projection outputs (before RoPE) but quantizes what enters the cache (its fake-quant model hooks the
// attention's cache, whose keys are rotated), so the keys are quantized after RoPE here too.

/** Whether `dir` holds msModelSlim's description file. */
export const isMsModelSlimDir = async (dir: string): Promise<boolean> =>
  (await readdir(dir).catch(() => [] as string[])).some((f) => /^quant_model_description(_[a-z0-9_]+)?\.json$/.test(f));

export interface MsModelSlimParts {
  readonly source: WeightSource;
  readonly inputs: ReadonlyMap<string, InputQuantSpec>;
  /** Attention module ("model.layers.3.self_attn") → its C8 cache format. */
  readonly kv: ReadonlyMap<string, KvCacheFormat>;
}

const kvFormats = (tensors: ReadonlyMap<string, Tensor>): E.Either<string, Map<string, KvCacheFormat>> => {
  const out = new Map<string, KvCacheFormat>();
  const q = (p: string) => {
    const [s, o] = [tensors.get(`${p}.kv_cache_scale`), tensors.get(`${p}.kv_cache_offset`)];
    return s === undefined || o === undefined ? null : { scale: Float32Array.from(toFloat32(s).data), offset: Float32Array.from(toFloat32(o).data) };
  };
  for (const n of tensors.keys()) {
    if (!n.endsWith(".k_proj.kv_cache_scale")) continue;
    const attn = n.slice(0, -".k_proj.kv_cache_scale".length);
    const [k, v] = [q(`${attn}.k_proj`), q(`${attn}.v_proj`)];
    if (k === null || v === null) return E.left(`${attn}: C8 needs k_proj and v_proj kv_cache_scale and kv_cache_offset`);
    out.set(attn, { kind: "ms-c8", k, v });
  }
  return E.right(out);
};

const inputSpecs = (type: string, linears: ReadonlyArray<string>, tensors: ReadonlyMap<string, Tensor>): E.Either<string, Map<string, InputQuantSpec>> => {
  const out = new Map<string, InputQuantSpec>();
  const spec = MS_CT_TYPES[type]?.input ?? null;
  if (spec === null) return E.right(out);
  const args = decodeQuantizationArgs(spec);
  if (E.isLeft(args)) return E.left(formatSchemeError(args.left));
  for (const l of linears) {
    if (args.right.dynamic !== false) {
      out.set(l, { args: args.right, scale: null, zeroPoint: null, globalScale: null });
      continue;
    }
    const [s, o] = [tensors.get(`${l}.input_scale`), tensors.get(`${l}.input_offset`)];
    if (s === undefined || o === undefined) return E.left(`${l}: W8A8 needs input_scale and input_offset`);
    out.set(l, { args: args.right, scale: s, zeroPoint: new TensorClass("i8", [1], Int8Array.from(toFloat32(o).data)), globalScale: null });
  }
  return E.right(out);
};

/** The weights, input quantization and C8 cache of the msModelSlim directory `dir`. */
export const msModelSlimParts =
  (dir: string): TE.TaskEither<LlmqError, MsModelSlimParts> =>
  async () => {
    const raw = await readMsModelSlimFiles(dir)();
    if (E.isLeft(raw)) return E.left(modelError(`${dir}: ${JSON.stringify(raw.left)}`));
    const { description, tensors } = raw.right;
    const dense = dequantizeMsModelSlim(description, tensors);
    if (E.isLeft(dense)) return E.left(modelError(`${raw.right.descriptionFile}: ${dense.left}`));
    const inputs = inputSpecs(dense.right.type, dense.right.dequantized, tensors);
    const kv = kvFormats(tensors);
    if (E.isLeft(inputs) || E.isLeft(kv)) return E.left(modelError(`${raw.right.descriptionFile}: ${E.isLeft(inputs) ? inputs.left : (kv as E.Left<string>).left}`));
    return E.right({ source: memoryWeightSource(dense.right.tensors, dir), inputs: inputs.right, kv: kv.right });
  };
