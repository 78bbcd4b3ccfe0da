import { nodeBuiltin } from "@llmq/tensor";
import { type SerializationError, describeErrno, formatSerializationError, stageDirectory, writeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type ModelError, checkpointError, ioError, outputExists } from "./errors.js";
const { writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { basename, join } = nodeBuiltin<typeof import("node:path")>("node:path");

/** What an HF model directory is made of: JSON files by name and the tensors of `model.safetensors`. */
export interface HfDirectoryContents {
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson?: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** Extra JSON files (tokenizer.json, tokenizer_config.json, special_tokens_map.json…) by file name. */
  readonly tokenizerFiles?: Readonly<Record<string, Record<string, unknown>>>;
}

const json = (v: unknown): string => `${JSON.stringify(v, null, 2)}\n`;

/**
 * Writes an HF directory (config.json, generation_config.json, tokenizer files, model.safetensors with
 * `{"format": "pt"}` metadata) atomically: everything goes to a hidden sibling that is renamed into place, so a
 * failure or interruption leaves no partial `outDir`. An existing non-empty `outDir` is refused unless `overwrite`.
 */
export const writeHfDirectory = (
  outDir: string,
  contents: HfDirectoryContents,
  opts: { readonly overwrite?: boolean } = {},
): TE.TaskEither<ModelError, { readonly dir: string; readonly files: ReadonlyArray<string> }> => {
  const files: Array<[string, string]> = [
    ["config.json", json(contents.configJson)],
    ...(contents.generationConfigJson === undefined ? [] : [["generation_config.json", json(contents.generationConfigJson)] as [string, string]]),
    ...Object.entries(contents.tokenizerFiles ?? {}).map(([n, v]): [string, string] => [n, json(v)]),
  ];
  const fromSerialization = (e: SerializationError): ModelError =>
    e._tag === "OutputExists" ? outputExists(outDir) : checkpointError(e.file, e.tensor, formatSerializationError(e));
  return pipe(
    stageDirectory(outDir, opts),
    TE.mapLeft(fromSerialization),
    TE.chain((stage) =>
      pipe(
        writeSafetensors(join(stage.staging, "model.safetensors"), contents.tensors, { format: "pt" }),
        TE.mapLeft((e) => checkpointError(join(outDir, "model.safetensors"), e.tensor, formatSerializationError(e))),
        TE.chain(() =>
          TE.tryCatch(
            () => Promise.all(files.map(([n, text]) => writeFile(join(stage.staging, n), text))),
            (e) => ioError(join(outDir, basename(String((e as { path?: unknown }).path ?? ""))), `cannot write: ${describeErrno(e)}`),
          ),
        ),
        TE.chain(() => pipe(stage.commit(), TE.mapLeft(fromSerialization))),
        TE.map(() => ({ dir: outDir, files: ["model.safetensors", ...files.map(([n]) => n)] })),
        TE.orElse((e) =>
          pipe(
            TE.fromTask(() => stage.discard()),
            TE.chain(() => TE.left(e)),
          ),
        ),
      ),
    ),
  );
};
