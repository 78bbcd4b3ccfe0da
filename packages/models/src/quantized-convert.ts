// `llmq convert --from gptq|awq`: a pre-quantized HF directory (AutoGPTQ / GPTQModel / AutoAWQ / transformers) read
// back to a dense model: packed linears dequantized (exact f32), quantization_config dropped, tokenizer files kept.
import { type QuantizedFormat, type SerializationError, dequantizeCheckpoint, formatSerializationError, openCheckpoint, quantizedFormatOf } from "@llmq/serialization";
import { type Tensor, cast, nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type ModelError, checkpointError, invalidConfig } from "./errors.js";
import type { GgufOutputDType } from "./gguf-llama.js";
import { readConfigJson } from "./open-model.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

const fromSerialization = (e: SerializationError): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));

/** A dense HF model made from a GPTQ / AWQ directory. */
export interface ConvertedQuantized {
  readonly method: QuantizedFormat["method"];
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson?: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly tokenizerFiles: Readonly<Record<string, Record<string, unknown>>>;
  /** Packed linears that were dequantized. */
  readonly dequantized: number;
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
 * Reads a GPTQ, AWQ, bitsandbytes (4-bit NF4/FP4, LLM.int8), FP8 (fine-grained, FBGEMM), HQQ or AQLM directory (method from config.json's quantization_config, as transformers dispatches it;
 * `expect` refuses a directory of the other method) into dense tensors of `dtype`.
 */
/** The `--from` name of a quantization method. */
const flagOf = (m: QuantizedFormat["method"]): QuantizedSource => (m === "gptq" || m === "awq" || m === "hqq" || m === "aqlm" ? m : m === "fp8" || m === "fbgemm_fp8" ? "fp8" : "bnb");
export type QuantizedSource = "gptq" | "awq" | "bnb" | "fp8" | "hqq" | "aqlm";

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
        TE.chain(({ tensors, dequantized }) =>
          pipe(
            readJsonFiles(dir),
            TE.map((files): ConvertedQuantized => {
              const { "generation_config.json": gen, ...tokenizerFiles } = files;
              const { quantization_config: _dropped, ...rest } = config;
              const dense = new Map<string, Tensor>();
              for (const [n, t] of tensors) dense.set(n, t.dtype === dtype || !["f32", "f16", "bf16"].includes(t.dtype) ? t : cast(t, dtype));
              return {
                method: fmt.method,
                configJson: { ...rest, torch_dtype: TORCH[dtype] },
                ...(gen === undefined ? {} : { generationConfigJson: gen }),
                tensors: dense,
                tokenizerFiles,
                dequantized: dequantized.length,
              };
            }),
          ),
        ),
      ),
    ),
  );
};
