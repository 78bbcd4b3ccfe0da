// `llmq convert --from gptq|awq`: a pre-quantized HF directory (AutoGPTQ / GPTQModel / AutoAWQ / transformers) read
// back to a dense model: packed linears dequantized (exact f32), quantization_config dropped, tokenizer files kept.
import {
  type QuantizedFormat,
  type SerializationError,
  dequantizeCheckpoint,
  dequantizeMsModelSlim,
  formatSerializationError,
  openCheckpoint,
  openSafetensors,
  quantizedFormatOf,
} from "@llmq/serialization";
import { type Tensor, cast, nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type ModelError, checkpointError, invalidCheckpoint, invalidConfig } from "./errors.js";
import type { GgufOutputDType } from "./gguf-llama.js";
import { readConfigJson } from "./open-model.js";
const { readFile, readdir } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

const fromSerialization = (e: SerializationError): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));

/** A dense HF model made from a GPTQ / AWQ directory. */
export interface ConvertedQuantized {
  readonly method: QuantizedFormat["method"] | "msmodelslim";
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson?: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly tokenizerFiles: Readonly<Record<string, Record<string, unknown>>>;
  /** Packed linears that were dequantized. */
  readonly dequantized: number;
  /** What the dense model cannot carry (msModelSlim's C8 KV parameters). */
  readonly warnings?: ReadonlyArray<string>;
}

const TORCH: Readonly<Record<GgufOutputDType, string>> = { f32: "float32", bf16: "bfloat16", f16: "float16" };
const CARRIED = ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json"];

const readJsonFiles = (dir: string): TE.TaskEither<ModelError, Record<string, Record<string, unknown>>> => async () => {
  const out: Record<string, Record<string, unknown>> = {};
  for (const name of CARRIED) {
    const text = await readFile(join(dir, name), "utf8").catch(() => null);
    if (text === null) continue;
    try {
      out[name] = JSON.parse(text) as Record<string, unknown>;
    } catch (e) {
      return E.left(invalidConfig(join(dir, name), "", `not valid JSON: ${(e as Error).message}`));
    }
  }
  return E.right(out);
};

/**
 * Reads a GPTQ, AWQ, bitsandbytes (4-bit NF4/FP4, LLM.int8), FP8 (fine-grained, FBGEMM), HQQ, AQLM or EETQ directory (method from config.json's quantization_config, as transformers dispatches it;
 * `expect` refuses a directory of the other method) into dense tensors of `dtype`.
 */
/** The `--from` name of a quantization method. */
const flagOf = (m: QuantizedFormat["method"]): QuantizedSource => (m === "gptq" || m === "awq" || m === "hqq" || m === "aqlm" || m === "eetq" ? m : m === "fp8" || m === "fbgemm_fp8" ? "fp8" : "bnb");
export type QuantizedSource = "gptq" | "awq" | "bnb" | "fp8" | "hqq" | "aqlm" | "eetq";

/** Float tensors cast to `dtype`; integer tensors as they are. */
const denseIn = (tensors: ReadonlyMap<string, Tensor>, dtype: GgufOutputDType): Map<string, Tensor> => {
  const dense = new Map<string, Tensor>();
  for (const [n, t] of tensors) dense.set(n, t.dtype === dtype || !["f32", "f16", "bf16"].includes(t.dtype) ? t : cast(t, dtype));
  return dense;
};

/** The dense model of a read-back checkpoint: config.json without quantization_config, the carried JSON files. */
const denseModel = (
  dir: string,
  config: Record<string, unknown>,
  dtype: GgufOutputDType,
  m: Pick<ConvertedQuantized, "method" | "tensors" | "dequantized"> & { readonly warnings: ReadonlyArray<string> },
): TE.TaskEither<ModelError, ConvertedQuantized> =>
  pipe(
    readJsonFiles(dir),
    TE.map((files): ConvertedQuantized => {
      const { "generation_config.json": gen, ...tokenizerFiles } = files;
      const { quantization_config: _dropped, ...rest } = config;
      return {
        method: m.method,
        configJson: { ...rest, torch_dtype: TORCH[dtype] },
        ...(gen === undefined ? {} : { generationConfigJson: gen }),
        tensors: denseIn(m.tensors, dtype),
        tokenizerFiles,
        dequantized: m.dequantized,
        ...(m.warnings.length > 0 ? { warnings: m.warnings } : {}),
      };
    }),
  );

export const convertQuantized = (dir: string, expect: QuantizedSource, opts: { readonly dtype?: GgufOutputDType } = {}): TE.TaskEither<ModelError, ConvertedQuantized> => {
  const dtype = opts.dtype ?? "f32";
  return pipe(
    readConfigJson(dir),
    TE.chainEitherK((config) =>
      pipe(
        quantizedFormatOf(join(dir, "config.json"), config.quantization_config),
        E.mapLeft(fromSerialization),
        E.chain((fmt) =>
          flagOf(fmt.method) === expect
            ? E.right({ config, fmt })
            : E.left(invalidConfig(join(dir, "config.json"), "quantization_config.quant_method", `is ${fmt.method}, not ${expect} (use --from ${flagOf(fmt.method)})`)),
        ),
      ),
    ),
    TE.chain(({ config, fmt }) =>
      pipe(
        openCheckpoint(dir),
        TE.mapLeft(fromSerialization),
        TE.chain((ckpt) => async () => {
          const r = await pipe(dequantizeCheckpoint(ckpt, fmt), TE.mapLeft(fromSerialization))();
          await ckpt.close();
          return r;
        }),
        TE.chain(({ tensors, dequantized }) => denseModel(dir, config, dtype, { method: fmt.method, tensors, dequantized: dequantized.length, warnings: [] })),
      ),
    ),
  );
};

const MS_DESCRIPTION = /^quant_model_description(_[a-z0-9_]+)?\.json$/;
const MS_WEIGHTS = /^quant_model_weight(_[a-z0-9_]+)?\.safetensors$/;
const MS_INDEX = /^quant_model_weight(_[a-z0-9_]+)?\.safetensors\.index\.json$/;

/** The weight files of an msModelSlim directory: one safetensors file, or the shards its part_file_size index names. */
const msWeightFiles = async (dir: string, files: ReadonlyArray<string>): Promise<ReadonlyArray<string> | string> => {
  const single = files.find((f) => MS_WEIGHTS.test(f));
  if (single !== undefined) return [single];
  const index = files.find((f) => MS_INDEX.test(f));
  if (index === undefined) return "no quant_model_weight*.safetensors (or its .index.json) beside the description (msModelSlim's layout)";
  try {
    const map = (JSON.parse(await readFile(join(dir, index), "utf8")) as { weight_map?: Record<string, string> }).weight_map;
    if (map === undefined || typeof map !== "object") return `${index} has no weight_map`;
    return [...new Set(Object.values(map))];
  } catch (e) {
    return `${index} is not valid JSON: ${(e as Error).message}`;
  }
};

/** Every tensor of the given safetensors files of `dir`. */
const readAllTensors = async (dir: string, weights: ReadonlyArray<string>): Promise<E.Either<ModelError, Map<string, Tensor>>> => {
  const tensors = new Map<string, Tensor>();
  for (const file of weights) {
    const f = await openSafetensors(join(dir, file))();
    if (E.isLeft(f)) return E.left(fromSerialization(f.left));
    try {
      for (const n of f.right.names) {
        const t = await f.right.read(n)();
        if (E.isLeft(t)) return E.left(fromSerialization(t.left));
        tensors.set(n, t.right);
      }
    } finally {
      await f.right.close();
    }
  }
  return E.right(tensors);
};

/** msModelSlim's files in `dir` as stored: the description and every tensor of its safe_tensor / ascendV1 weights (sharded or not). */
export const readMsModelSlimFiles =
  (dir: string): TE.TaskEither<ModelError, { readonly description: Record<string, unknown>; readonly descriptionFile: string; readonly tensors: Map<string, Tensor> }> =>
  async () => {
    const files = await readdir(dir).catch(() => [] as string[]);
    const desc = files.find((f) => MS_DESCRIPTION.test(f));
    if (desc === undefined) return E.left(invalidCheckpoint(dir, "no quant_model_description*.json (msModelSlim's safe_tensor / ascendV1 layout)"));
    const weights = await msWeightFiles(dir, files);
    if (typeof weights === "string") return E.left(invalidCheckpoint(dir, weights));
    let description: Record<string, unknown>;
    try {
      description = JSON.parse(await readFile(join(dir, desc), "utf8")) as Record<string, unknown>;
    } catch (e) {
      return E.left(invalidConfig(join(dir, desc), "", `not valid JSON: ${(e as Error).message}`));
    }
    const tensors = await readAllTensors(dir, weights);
    return E.map((t: Map<string, Tensor>) => ({ description, descriptionFile: join(dir, desc), tensors: t }))(tensors);
  };

/** The tensors of msModelSlim's files in `dir`, dequantized (every tensor must be described). */
const readMsModelSlim = (dir: string): TE.TaskEither<ModelError, { readonly tensors: Map<string, Tensor>; readonly dequantized: number; readonly kvCache: ReadonlyArray<string> }> => async () => {
  const raw = await readMsModelSlimFiles(dir)();
  if (E.isLeft(raw)) return raw;
  const r = dequantizeMsModelSlim(raw.right.description, raw.right.tensors);
  return E.isLeft(r) ? E.left(invalidCheckpoint(raw.right.descriptionFile, r.left)) : E.right({ tensors: r.right.tensors, dequantized: r.right.dequantized.length, kvCache: r.right.kvCache });
};

/**
 * `llmq convert --from msmodelslim`: a directory in msModelSlim's safe_tensor layout (plus the model's config.json and
 * tokenizer files, which msModelSlim leaves to the user to copy) read back to a dense model.
 */
export const convertMsModelSlim = (dir: string, opts: { readonly dtype?: GgufOutputDType } = {}): TE.TaskEither<ModelError, ConvertedQuantized> => {
  const dtype = opts.dtype ?? "f32";
  return pipe(
    readConfigJson(dir),
    TE.chain((config) =>
      pipe(
        readMsModelSlim(dir),
        TE.chain((m) =>
          denseModel(dir, config, dtype, {
            method: "msmodelslim",
            tensors: m.tensors,
            dequantized: m.dequantized,
            warnings:
              m.kvCache.length > 0
                ? [`${m.kvCache.length} C8 KV-cache tensors (kv_cache_scale / kv_cache_offset) are not part of a dense model and were left out; the dense model runs an unquantized KV cache`]
                : [],
          }),
        ),
      ),
    ),
  );
};
