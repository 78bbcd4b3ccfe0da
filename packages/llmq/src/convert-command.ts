import { type ModelError, convertLlama2c, formatModelError, writeHfDirectory } from "@llmq/models";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import * as E from "fp-ts/lib/Either.js";
import { checkOutputPath } from "./check-output-path.js";
import { type LlmqError, displayPath, ioError, modelError, outputExists } from "./errors.js";

export interface ConvertOptions {
  readonly from: "llama2c";
  readonly model: string;
  readonly tokenizer?: string | undefined;
  readonly output: string;
  readonly overwrite: boolean;
}

export interface ConvertResult {
  readonly output: string;
  readonly from: "llama2c";
  readonly tensors: number;
  readonly parameters: number;
  readonly tokenizer: boolean;
  readonly files: ReadonlyArray<string>;
}

/** The source checkpoint and tokenizer may not be the output, inside it, or contain it; the output must not be a file. */
const checkOutput = (o: ConvertOptions): TE.TaskEither<LlmqError, void> => async () =>
  E.map(() => undefined)(await checkOutputPath(o.output, [o.model, ...(o.tokenizer !== undefined ? [o.tokenizer] : [])]));

/** `llmq convert --from llama2c`: a llama2.c checkpoint (+ tokenizer.bin) → an HF Llama directory. */
export const convertCommand = (o: ConvertOptions): TE.TaskEither<LlmqError, ConvertResult> =>
  pipe(
    checkOutput(o),
    TE.chain(() => convertFrom(o)),
  );

const convertFrom = (o: ConvertOptions): TE.TaskEither<LlmqError, ConvertResult> =>
  pipe(
    convertLlama2c(o.model, o.tokenizer !== undefined ? { tokenizerBinPath: o.tokenizer } : {}),
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
            tensors: m.tensors.size,
            parameters: [...m.tensors.values()].reduce((a, t) => a + t.size, 0),
            tokenizer: m.tokenizerFiles !== undefined,
            files: w.files,
          }),
        ),
      ),
    ),
    TE.mapLeft(convertFailure),
  );

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
  `converted ${r.from} → ${r.output}: ${r.tensors} tensors, ${r.parameters.toLocaleString("en-US")} parameters${r.tokenizer ? ", tokenizer.json" : ""}`;
