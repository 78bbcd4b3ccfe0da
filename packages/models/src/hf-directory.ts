import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { basename, dirname, join } from "node:path";
import { formatSerializationError, writeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type ModelError, checkpointError, ioError, outputExists } from "./errors.js";

/** What an HF model directory is made of: JSON files by name and the tensors of `model.safetensors`. */
export interface HfDirectoryContents {
  readonly configJson: Record<string, unknown>;
  readonly generationConfigJson?: Record<string, unknown>;
  readonly tensors: ReadonlyMap<string, Tensor>;
  /** Extra JSON files (tokenizer.json, tokenizer_config.json, special_tokens_map.json…) by file name. */
  readonly tokenizerFiles?: Readonly<Record<string, Record<string, unknown>>>;
}

const isNonEmptyDir = async (p: string): Promise<boolean | "file"> => {
  try {
    const s = await stat(p);
    if (!s.isDirectory()) return "file";
    return (await readdir(p)).length > 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
};

const sibling = (p: string, tag: string): string => join(dirname(p), `.${basename(p)}.llmq-${tag}-${process.pid}-${randomBytes(6).toString("hex")}`);

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
  const tmp = sibling(outDir, "tmp");
  const io = <A>(f: () => Promise<A>, path: string) => TE.tryCatch(f, (e) => ioError(path, (e as Error).message));
  const files: Array<[string, string]> = [
    ["config.json", json(contents.configJson)],
    ...(contents.generationConfigJson === undefined ? [] : [["generation_config.json", json(contents.generationConfigJson)] as [string, string]]),
    ...Object.entries(contents.tokenizerFiles ?? {}).map(([n, v]): [string, string] => [n, json(v)]),
  ];
  const write = pipe(
    io(() => isNonEmptyDir(outDir), outDir),
    TE.chain((state) => (state === "file" || (state && opts.overwrite !== true) ? TE.left(outputExists(outDir)) : TE.right(state))),
    TE.chainFirst(() => io(() => mkdir(tmp, { recursive: true }), tmp)),
    TE.chainFirst(() =>
      pipe(
        writeSafetensors(join(tmp, "model.safetensors"), contents.tensors, { format: "pt" }),
        TE.mapLeft((e) => checkpointError(join(outDir, "model.safetensors"), e.tensor, formatSerializationError(e))),
      ),
    ),
    TE.chainFirst(() => io(() => Promise.all(files.map(([n, text]) => writeFile(join(tmp, n), text))), tmp)),
    TE.chain((existed) =>
      io(async () => {
        if (existed !== false) {
          const old = sibling(outDir, "old");
          await rename(outDir, old);
          await rename(tmp, outDir);
          await rm(old, { recursive: true, force: true });
        } else {
          await rm(outDir, { recursive: true, force: true });
          await rename(tmp, outDir);
        }
        return { dir: outDir, files: ["model.safetensors", ...files.map(([n]) => n)] };
      }, outDir),
    ),
  );
  return pipe(
    write,
    TE.orElse((e) =>
      pipe(
        TE.fromTask(() => rm(tmp, { recursive: true, force: true })),
        TE.chain(() => TE.left(e)),
      ),
    ),
  );
};
