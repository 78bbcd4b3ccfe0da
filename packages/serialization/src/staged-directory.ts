import { mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { tempSibling } from "./atomic-file.js";
import { type SerializationError, ioError, outputExists } from "./errors.js";

// A whole output directory (a checkpoint plus its JSON files) is produced in a hidden sibling and renamed into place
// at the end, so an error or an interruption at any point leaves either the previous directory or nothing — never a
// half-written checkpoint. Files inside are still written atomically by the writers themselves.

// ----- model -----

export interface StagedDirectory {
  /** The final path (absolute). */
  readonly target: string;
  /** Where to write now: a hidden sibling of `target` on the same filesystem. */
  readonly staging: string;
  /** Moves the staged directory into place, replacing the previous one when overwrite was granted. */
  readonly commit: () => TE.TaskEither<SerializationError, string>;
  /** Deletes the staged directory. Safe to call more than once, and after commit. */
  readonly discard: () => Promise<void>;
}

// ----- constructors -----

const isNonEmpty = async (p: string): Promise<boolean> => {
  try {
    const s = await stat(p);
    return !s.isDirectory() || (await readdir(p)).length > 0; // a file in the way counts as "exists"
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return false;
    throw e;
  }
};

/** Prepares a staging directory next to `target`; a non-empty `target` is an `OutputExists` error unless `overwrite`. */
export const stageDirectory = (target: string, opts: { readonly overwrite?: boolean } = {}): TE.TaskEither<SerializationError, StagedDirectory> => {
  const abs = resolve(target);
  const staging = tempSibling(abs, ".staging");
  return pipe(
    TE.tryCatch(
      () => isNonEmpty(abs),
      (e) => ioError(target, "stat", e),
    ),
    TE.chain((exists) => (exists && opts.overwrite !== true ? TE.left(outputExists(target)) : TE.right(undefined))),
    TE.chain(() =>
      TE.tryCatch(
        () => mkdir(staging, { recursive: true }),
        (e) => ioError(staging, "mkdir", e),
      ),
    ),
    TE.map(
      (): StagedDirectory => ({
        target: abs,
        staging,
        discard: () => rm(staging, { recursive: true, force: true }).catch(() => undefined),
        commit: () =>
          TE.tryCatch(
            async () => {
              const old = join(dirname(abs), `.${basename(staging)}.old`);
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
            (e) => ioError(target, "rename", e),
          ),
      }),
    ),
  );
};
