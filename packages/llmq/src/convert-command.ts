import { type GgufOutputDType, type ModelError, convertGguf, convertLlama2c, convertMsModelSlim, convertQuantized, formatModelError, writeHfDirectory } from "@llmq/models";
import { type Tensor, cast } from "@llmq/tensor";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import * as E from "fp-ts/lib/Either.js";
import { checkOutputPath } from "./check-output-path.js";
import { type LlmqError, displayPath, ioError, modelError, outputExists, usageError } from "./errors.js";
import { type CtToMsResult, compressedTensorsDirToMsModelSlim } from "./ct-to-ms-model-slim.js";
import { type MsToCompressedTensorsResult, msModelSlimToCompressedTensors } from "./ms-to-compressed-tensors.js";

export const CONVERT_FORMATS = ["llama2c", "gguf", "gptq", "awq", "bnb", "fp8", "hqq", "aqlm", "eetq", "msmodelslim", "compressed-tensors"] as const;
export type ConvertFormat = (typeof CONVERT_FORMATS)[number];

export interface ConvertOptions {
  readonly from: ConvertFormat;
  readonly model: string;
  /** llama2c only: its tokenizer.bin (a GGUF carries its tokenizer in the metadata). */
  readonly tokenizer?: string | undefined;
  readonly output: string;
  readonly overwrite: boolean;
  /** Output dtype of every tensor (default f32: llama2.c is f32, GGUF dequantizes to f32 exactly). */
  readonly dtype?: GgufOutputDType | undefined;
  /**
   * What to write: a dense HF directory (default), a compressed-tensors checkpoint (--from msmodelslim only), or
   * msModelSlim's safe_tensor layout (--from compressed-tensors only).
   */
  readonly to?: ConvertTarget | undefined;
}

export const CONVERT_TARGETS = ["hf", "compressed-tensors", "msmodelslim"] as const;
export type ConvertTarget = (typeof CONVERT_TARGETS)[number];

export interface ConvertResult {
  readonly output: string;
  readonly from: ConvertFormat;
  readonly dtype: GgufOutputDType;
  readonly tensors: number;
  readonly parameters: number;
  readonly tokenizer: boolean;
  readonly files: ReadonlyArray<string>;
  /** GGUF: tensors per source ggml type ({"Q4_1": 210, "F32": 61, "Q8_0": 1}). */
  readonly sourceTypes?: Readonly<Record<string, number>>;
  /** What was not converted and why (e.g. a tokenizer type llmq cannot build yet). */
  readonly warnings: ReadonlyArray<string>;
  /** --to compressed-tensors: the checkpoint's format ("int-quantized", "pack-quantized"). */
  readonly compressedTensors?: string;
  /** --to msmodelslim: the model_quant_type written. */
  readonly msModelSlim?: string;
}

/** The source checkpoint and tokenizer may not be the output, inside it, or contain it; the output must not be a file. */
const checkOutput = (o: ConvertOptions): TE.TaskEither<LlmqError, void> => async () =>
  E.map(() => undefined)(await checkOutputPath(o.output, [o.model, ...(o.tokenizer !== undefined ? [o.tokenizer] : [])]));

/**
 * `llmq convert --from llama2c|gguf|gptq|awq|bnb|fp8|hqq|aqlm|eetq|msmodelslim`: a llama2.c checkpoint (+ tokenizer.bin), a llama.cpp GGUF Llama (any of
 * the dequantized ggml types; tokenizer from its metadata) or a GPTQ / AWQ / bitsandbytes / FP8 / HQQ / AQLM / EETQ / msModelSlim (safe_tensor layout) directory (packed linears dequantized,
 * tokenizer files carried over) → a dense HF directory in the asked dtype.
 */
/** The source / target / option combinations convert refuses, before anything is read. */
const usageProblem = (o: ConvertOptions): LlmqError | null => {
  const to = o.to ?? "hf";
  if (o.from !== "llama2c" && o.tokenizer !== undefined) return usageError("--tokenizer", `is for --from llama2c only: a ${o.from} source carries its own tokenizer`, "drop --tokenizer");
  if (to === "compressed-tensors" && o.from !== "msmodelslim") return usageError("--to", `compressed-tensors is written from --from msmodelslim only, not ${o.from}`, "drop --to");
  if (to === "msmodelslim" && o.from !== "compressed-tensors") return usageError("--to", `msmodelslim is written from --from compressed-tensors only, not ${o.from}`, "drop --to");
  if (o.from === "compressed-tensors" && to !== "msmodelslim")
    return usageError("--from", "compressed-tensors converts to msModelSlim's layout only (llmq eval and transformers load a compressed-tensors checkpoint as it is)", "add --to msmodelslim");
  if (to !== "hf" && o.dtype !== undefined && o.dtype !== "f32") return usageError("--dtype", `is for dense output: --to ${to} keeps the stored dtypes`, "drop --dtype");
  return null;
};

export const convertCommand = (o: ConvertOptions): TE.TaskEither<LlmqError, ConvertResult> => {
  const bad = usageProblem(o);
  if (bad !== null) return TE.left(bad);
  const run = o.to === "compressed-tensors" ? toCompressedTensors : o.to === "msmodelslim" ? toMsModelSlim : convertFrom;
  return pipe(
    checkOutput(o),
    TE.chain(() => run(o)),
  );
};

const toMsModelSlim = (o: ConvertOptions): TE.TaskEither<LlmqError, ConvertResult> =>
  TE.map(
    (r: CtToMsResult): ConvertResult => ({
      output: o.output,
      from: o.from,
      dtype: r.dtype,
      tensors: r.tensors,
      parameters: r.parameters,
      tokenizer: r.tokenizer,
      files: r.files,
      warnings: r.warnings,
      msModelSlim: r.type,
    }),
  )(compressedTensorsDirToMsModelSlim(o.model, o.output, o.overwrite));

const toCompressedTensors = (o: ConvertOptions): TE.TaskEither<LlmqError, ConvertResult> =>
  TE.map(
    (r: MsToCompressedTensorsResult): ConvertResult => ({
      output: r.output,
      from: o.from,
      dtype: r.dtype as GgufOutputDType,
      tensors: r.tensors,
      parameters: r.parameters,
      tokenizer: r.tokenizer,
      files: r.files,
      sourceTypes: { [`${r.type} linears`]: r.quantized },
      warnings: r.warnings,
      compressedTensors: r.format,
    }),
  )(msModelSlimToCompressedTensors(o.model, o.output, o.overwrite));

/** Both sources as one shape: HF files in memory plus what the report says about them. */
interface Converted {
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
  readonly tokenizerFiles?: Readonly<Record<string, Record<string, unknown>>> | undefined;
  readonly sourceTypes?: Readonly<Record<string, number>>;
  readonly warnings: ReadonlyArray<string>;
}

const TORCH_DTYPE: Readonly<Record<GgufOutputDType, string>> = { f32: "float32", bf16: "bfloat16", f16: "float16" };

const fromSource = (o: ConvertOptions & { readonly from: Exclude<ConvertFormat, "compressed-tensors"> }, dtype: GgufOutputDType): TE.TaskEither<ModelError, Converted> =>
  o.from !== "llama2c" && o.from !== "gguf"
    ? pipe(
        o.from === "msmodelslim" ? convertMsModelSlim(o.model, { dtype }) : convertQuantized(o.model, o.from, { dtype }),
        TE.map((m) => ({
          configJson: m.configJson,
          generationConfigJson: m.generationConfigJson ?? { _from_model_config: true },
          tensors: m.tensors,
          tokenizerFiles: Object.keys(m.tokenizerFiles).length > 0 ? m.tokenizerFiles : undefined,
          sourceTypes: { [`${m.method} linears`]: m.dequantized },
          warnings: [...(m.warnings ?? []), ...(Object.keys(m.tokenizerFiles).length > 0 ? [] : [`${o.model} has no tokenizer files to carry over`])],
        })),
      )
    : o.from === "gguf"
    ? pipe(
        convertGguf(o.model, { dtype }),
        TE.map((m) => {
          const counts: Record<string, number> = {};
          for (const t of m.sourceTypes.values()) counts[t] = (counts[t] ?? 0) + 1;
          return { ...m, sourceTypes: counts, warnings: m.tokenizerProblem === undefined ? [] : [`no tokenizer files written: ${m.tokenizerProblem}`] };
        }),
      )
    : pipe(
        convertLlama2c(o.model, o.tokenizer !== undefined ? { tokenizerBinPath: o.tokenizer } : {}),
        TE.map((m) => ({
          configJson: { ...m.configJson, torch_dtype: TORCH_DTYPE[dtype] },
          generationConfigJson: m.generationConfigJson,
          tensors: dtype === "f32" ? m.tensors : new Map([...m.tensors].map(([n, t]) => [n, cast(t, dtype)] as const)),
          tokenizerFiles: m.tokenizerFiles,
          warnings: [],
        })),
      );

const convertFrom = (o: ConvertOptions): TE.TaskEither<LlmqError, ConvertResult> => {
  const dtype = o.dtype ?? "f32";
  const from = o.from;
  if (from === "compressed-tensors") return TE.left(usageError("--from", "compressed-tensors converts to msModelSlim's layout only", "add --to msmodelslim"));
  return pipe(
    fromSource({ ...o, from }, dtype),
    TE.chain((m) =>
      pipe(
        writeHfDirectory(
          o.output,
          {
            configJson: m.configJson,
            generationConfigJson: m.generationConfigJson,
            tensors: m.tensors,
            ...(m.tokenizerFiles !== undefined ? { tokenizerFiles: m.tokenizerFiles } : {}),
          },
          { overwrite: o.overwrite },
        ),
        TE.map(
          (w): ConvertResult => ({
            output: w.dir,
            from: o.from,
            dtype,
            tensors: m.tensors.size,
            parameters: [...m.tensors.values()].reduce((a, t) => a + t.size, 0),
            tokenizer: m.tokenizerFiles !== undefined,
            files: w.files,
            ...(m.sourceTypes !== undefined ? { sourceTypes: m.sourceTypes } : {}),
            warnings: m.warnings,
          }),
        ),
      ),
    ),
    TE.mapLeft(convertFailure),
  );
};

/** The errno code a message ends a reason with ("… (ENOSPC)"), if any. */
const errnoIn = (detail: string): string | null => /\((E[A-Z0-9]+)\)/.exec(detail)?.[1] ?? null;

/** Writing the output failed for a system reason (full or read-only disk): an I/O error on the output, not a model error. */
const convertFailure = (e: ModelError): LlmqError => {
  if (e._tag === "OutputExists") return outputExists(e.path);
  if ((e._tag === "IoError" || e._tag === "CheckpointError") && errnoIn(e.detail) !== null)
    return ioError(displayPath(e.path), e.detail.replace(/^\S*: (?=\S+ failed: )/, ""), errnoIn(e.detail));
  return modelError(formatModelError(e));
};

export const formatConvert = (r: ConvertResult): string =>
  [
    `converted ${r.from} → ${r.output}${r.compressedTensors !== undefined ? ` (compressed-tensors, ${r.compressedTensors})` : ""}${r.msModelSlim !== undefined ? ` (msModelSlim ${r.msModelSlim})` : ""}: ${r.tensors} tensors, ${r.parameters.toLocaleString("en-US")} ${r.msModelSlim !== undefined ? "stored elements" : `parameters (${r.dtype})`}${r.tokenizer ? ", tokenizer.json" : ""}`,
    ...(r.sourceTypes === undefined ? [] : [`source types: ${Object.entries(r.sourceTypes).map(([t, n]) => `${n} ${t}`).join(", ")}`]),
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
