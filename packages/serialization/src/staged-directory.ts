import { nodeBuiltin } from "@llmq/tensor";
import type { Stats } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { fsyncDir, pidAlive, tempSibling } from "./atomic-file.js";
import { type SerializationError, ioError, outputExists, outputNotDirectory, outputOverlaps } from "./errors.js";
import { type OutputLock, lockOutput, releaseHeldLocksSync } from "./output-lock.js";
import { findOverlap } from "./output-path.js";
const { lstat, mkdir, readdir, rename, rm } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { existsSync, renameSync, rmSync } = nodeBuiltin<typeof import("node:fs")>("node:fs");
const { basename, dirname, join, resolve } = nodeBuiltin<typeof import("node:path")>("node:path");

// A whole output directory (a checkpoint plus its JSON files) is produced in a hidden sibling and renamed into place
// at the end, so an error or an interruption at any point leaves either the previous directory or nothing — never a
// half-written checkpoint. Files inside are still written atomically by the writers themselves. While staging, the
// target is locked (one writer per output), and what killed runs left next to it is cleaned up first.

// ----- model -----

export interface StagedDirectory {
  /** The final path (absolute). */
  readonly target: string;
  /** Where to write now: a hidden sibling of `target` on the same filesystem. */
  readonly staging: string;
  /**
   * Moves the staged directory into place. Without overwrite, a target that became non-empty meanwhile is an
   * `OutputExists` error (the rename itself refuses a non-empty directory, so no check-then-act window).
   */
  readonly commit: () => TE.TaskEither<SerializationError, string>;
  /** Deletes the staged directory and releases the lock. Safe to call more than once, and after commit. */
  readonly discard: () => Promise<void>;
}

export interface StageOptions {
  readonly overwrite?: boolean;
  /** Paths the run reads (model directory, dataset, report): the target may not equal, contain or lie inside them. */
  readonly protect?: ReadonlyArray<string>;
}

// Staged directories of this process, each with a synchronous way to abandon it: a second Ctrl-C exits at once and
// cannot wait for promises, yet must not leave a staging directory (or a moved-aside previous output) behind.
const live = new Map<string, () => void>();

/**
 * Removes every staging directory of this process and restores a previous output that a commit had moved aside.
 * Synchronous, for exit paths (a second interrupt); a no-op when nothing is staged.
 */
export const abandonStagedDirectoriesSync = (): void => {
  for (const abandon of [...live.values()]) abandon();
  live.clear();
  releaseHeldLocksSync();
};

// ----- constructors -----

/** What is at an output path: nothing, a directory (empty or not), or something that is not a directory. */
export type OutputState = "absent" | "empty" | "non-empty" | { readonly notDirectory: string };

const kindOf = (s: Stats): string =>
  s.isSymbolicLink() ? "symbolic link" : s.isFile() ? "file" : s.isCharacterDevice() || s.isBlockDevice() ? "device" : s.isFIFO() ? "pipe" : s.isSocket() ? "socket" : "special file";

export const outputState = async (p: string): Promise<OutputState> => {
  let s: Stats;
  try {
    s = await lstat(p);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return "absent";
    throw e;
  }
  // A file, link or device is never replaced: moving /dev/null aside and deleting it is not what --overwrite means.
  if (!s.isDirectory()) return { notDirectory: kindOf(s) };
  return (await readdir(p)).length > 0 ? "non-empty" : "empty";
};

const escapeRe = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

/**
 * Cleans what killed runs (dead pids) left next to `target`: their staging directories are deleted; a previous
 * output a commit had moved aside is put back when the target is missing, else deleted.
 */
export const removeStaleStaging = async (target: string): Promise<ReadonlyArray<string>> => {
  const dir = dirname(target);
  const re = new RegExp(`^\\.${escapeRe(basename(target))}\\.(staging|old)\\.llmq-tmp-(\\d+)-[0-9a-f]{12}$`);
  const names = await readdir(dir).catch(() => [] as string[]);
  const removed: string[] = [];
  for (const n of names) {
    const m = re.exec(n);
    if (m === null || Number(m[2]) === process.pid || pidAlive(Number(m[2]))) continue;
    const p = join(dir, n);
    if (m[1] === "old" && !existsSync(target)) await rename(p, target).catch(() => undefined);
    else await rm(p, { recursive: true, force: true }).catch(() => undefined);
    removed.push(n);
  }
  return removed;
};

const commitInto = async (abs: string, staging: string, overwrite: boolean, setOld: (p: string | null) => void): Promise<E.Either<SerializationError, string>> => {
  if (!overwrite) {
    try {
      await rename(staging, abs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOTEMPTY" || code === "EEXIST" || code === "ENOTDIR" || code === "EISDIR") return E.left(outputExists(abs));
      return E.left(ioError(abs, "rename", e));
    }
    await fsyncDir(dirname(abs));
    return E.right(abs);
  }
  const old = tempSibling(abs, ".old");
  let moved = false;
  const now = await outputState(abs).catch(() => "absent" as const);
  if (typeof now === "object") return E.left(outputNotDirectory(abs, now.notDirectory));
  try {
    await rename(abs, old);
    moved = true;
    setOld(old);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") return E.left(ioError(abs, "rename", e));
  }
  try {
    await rename(staging, abs);
  } catch (e) {
    if (moved) await rename(old, abs).catch(() => undefined);
    setOld(null);
    return E.left(ioError(abs, "rename", e));
  }
  setOld(null);
  if (moved) await rm(old, { recursive: true, force: true }).catch(() => undefined);
  await fsyncDir(dirname(abs));
  return E.right(abs);
};

const staged = (abs: string, overwrite: boolean, lock: OutputLock): StagedDirectory => {
  const staging = tempSibling(abs, ".staging");
  let old: string | null = null;
  let done = false;
  const forget = (): void => {
    done = true;
    live.delete(staging);
  };
  live.set(staging, () => {
    if (old !== null && !existsSync(abs)) renameSync(old, abs);
    rmSync(staging, { recursive: true, force: true });
    if (old !== null) rmSync(old, { recursive: true, force: true });
    lock.releaseSync();
  });
  return {
    target: abs,
    staging,
    // Each step leaves the synchronous abandon registered until it is done, so an exit in between still cleans up.
    discard: async () => {
      if (done) return;
      done = true;
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      forget();
      await lock.release();
    },
    commit: () => async () => {
      const r = await commitInto(abs, staging, overwrite, (p) => {
        old = p;
      });
      if (E.isRight(r)) {
        forget();
        await lock.release();
      }
      return r;
    },
  };
};

/**
 * Prepares a staging directory next to `target`: refuses a target that overlaps a protected path, takes the target's
 * lock, removes stale staging of dead runs, and refuses a non-empty `target` (`OutputExists`) unless `overwrite`.
 */
export const stageDirectory = (target: string, opts: StageOptions = {}): TE.TaskEither<SerializationError, StagedDirectory> => {
  const abs = resolve(target);
  const overwrite = opts.overwrite === true;
  return pipe(
    TE.tryCatch(
      () => findOverlap(abs, opts.protect ?? []),
      (e) => ioError(target, "realpath", e),
    ),
    TE.chain((o) => (o === null ? TE.right(undefined) : TE.left(outputOverlaps(target, o.other, o.relation)))),
    TE.chain(() => lockOutput(abs)),
    TE.chain((lock) =>
      pipe(
        TE.tryCatch(
          async () => {
            await removeStaleStaging(abs);
            return outputState(abs);
          },
          (e) => ioError(target, "stat", e),
        ),
        TE.chain((state) =>
          typeof state === "object"
            ? TE.left(outputNotDirectory(target, state.notDirectory))
            : state === "non-empty" && !overwrite
              ? TE.left(outputExists(target))
              : TE.right(staged(abs, overwrite, lock)),
        ),
        TE.chainFirst((s) =>
          pipe(
            TE.tryCatch(
              // Not recursive: the lock step made the parent, and mkdir -p reports an exhausted inode table as ENOENT.
              () => mkdir(s.staging),
              (e) => ioError(s.staging, "mkdir", e),
            ),
            TE.orElse((e) => pipe(TE.fromTask(s.discard), TE.chain(() => TE.left<SerializationError, unknown>(e)))),
          ),
        ),
        TE.orElseW((e) => pipe(TE.fromTask(() => lock.release()), TE.chain(() => TE.left(e)))),
      ),
    ),
  );
};
