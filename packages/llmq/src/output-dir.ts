import { randomBytes } from "node:crypto";
import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LlmqError, ioError, outputExists } from "./errors.js";

// A whole output directory is produced in a temporary sibling and renamed into place at the end, so an error or
// Ctrl-C at any point leaves either the previous directory or nothing — never a half-written checkpoint.

export interface StagedDir {
  /** The final path. */
  readonly target: string;
  /** Where to write now. */
  readonly staging: string;
  /** Moves the staged directory into place (replacing the old one when overwrite was granted). */
  readonly commit: () => TE.TaskEither<LlmqError, string>;
  /** Deletes the staged directory. Safe to call more than once. */
  readonly discard: () => Promise<void>;
}

const isNonEmptyDir = async (p: string): Promise<boolean> => {
  try {
    const s = await stat(p);
    if (!s.isDirectory()) return true; // a file in the way counts as "exists"
    return (await readdir(p)).length > 0;
  } catch {
    return false;
  }
};

/** Prepares a staging directory next to `target`; refuses a non-empty target unless `overwrite`. */
export const stageOutputDir = (target: string, overwrite: boolean): TE.TaskEither<LlmqError, StagedDir> => {
  const abs = resolve(target);
  const tag = `${process.pid}-${randomBytes(4).toString("hex")}`;
  const staging = join(dirname(abs), `.${basename(abs)}.llmq-staging-${tag}`);
  return pipe(
    TE.fromTask(() => isNonEmptyDir(abs)),
    TE.chain((exists) => (exists && !overwrite ? TE.left(outputExists(target)) : TE.right(undefined))),
    TE.chain(() =>
      TE.tryCatch(
        () => mkdir(staging, { recursive: true }),
        (e) => ioError(staging, `cannot create the output directory: ${(e as Error).message}`),
      ),
    ),
    TE.map(
      (): StagedDir => ({
        target: abs,
        staging,
        discard: () => rm(staging, { recursive: true, force: true }).catch(() => undefined),
        commit: () =>
          TE.tryCatch(
            async () => {
              const old = join(dirname(abs), `.${basename(abs)}.llmq-old-${tag}`);
              let moved = false;
              try {
                await rename(abs, old);
                moved = true;
              } catch (e) {
                if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
              }
              try {
                await rename(staging, abs);
              } catch (e) {
                if (moved) await rename(old, abs).catch(() => undefined);
                throw e;
              }
              if (moved) await rm(old, { recursive: true, force: true });
              return abs;
            },
            (e) => ioError(target, `cannot move the result into place: ${(e as Error).message}`),
          ),
      }),
    ),
  );
};
