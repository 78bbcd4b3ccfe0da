import { nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { pidAlive, tempSibling } from "./atomic-file.js";
import { type SerializationError, ioError, outputLocked } from "./errors.js";
const { mkdir, open, readFile, rename, stat, unlink } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { readFileSync, unlinkSync } = nodeBuiltin<typeof import("node:fs")>("node:fs");
const { basename, dirname, join, resolve } = nodeBuiltin<typeof import("node:path")>("node:path");

// One writer per output: a lock file next to the target, created exclusively (O_EXCL) and holding the writer's pid, so
// a second run on the same output fails at once instead of racing the first to the final rename. A lock whose process
// is gone (SIGKILL, power loss) is stale and taken over: it is first renamed to a unique name, which only one of two
// competing processes can do, so two recoverers never both believe they hold it. The lock also records when its
// process started (Linux), so a pid reused by an unrelated process after a SIGKILL is not mistaken for the writer.

// ----- model -----

export interface OutputLock {
  readonly path: string;
  readonly release: () => Promise<void>;
  /** For exit paths that cannot wait (a second Ctrl-C). */
  readonly releaseSync: () => void;
}

/**
 * Removes every lock this process holds. Synchronous, for exit paths (a second interrupt): a lock is held from the
 * moment it is taken until its release has removed it, whatever the staging directory's state.
 */
export const releaseHeldLocksSync = (): void => {
  for (const lock of held) {
    try {
      unlinkSync(lock);
    } catch {
      // Already gone: nothing to release.
    }
  }
  held.clear();
};

/** `.name.llmq-lock` next to `target`. */
export const lockPathOf = (target: string): string => join(dirname(target), `.${basename(target)}.llmq-lock`);

// Locks this process holds: a lock file with our own pid is stale only if we do not hold it (a previous process with
// the same pid wrote it).
const held = new Set<string>();

// A lock file younger than this with no pid in it yet is being written by its creator, not stale.
const FRESH_MS = 2000;

/**
 * When process `pid` started, in clock ticks since boot (field 22 of /proc/<pid>/stat), or undefined where there is no
 * /proc: with the pid it names one process, so a pid reused after a SIGKILL does not keep a stale lock alive.
 */
const startTimeOf = (pid: number): string | undefined => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may contain spaces and parentheses: count fields after its closing parenthesis.
    return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
  } catch {
    return undefined;
  }
};

type Holder = { readonly kind: "live"; readonly pid: number } | { readonly kind: "stale" } | { readonly kind: "gone" };

const holderOf = async (lock: string): Promise<Holder> => {
  let text: string;
  try {
    text = await readFile(lock, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return { kind: "gone" };
    throw e;
  }
  const [pidText, started] = text.trim().split(/\s+/);
  const pid = Number(pidText);
  if (Number.isSafeInteger(pid) && pid > 0) {
    if (pid === process.pid) return held.has(lock) ? { kind: "live", pid } : { kind: "stale" };
    // A live pid that started at another time is a different process that reuses the killed writer's pid.
    const now = started === undefined ? undefined : startTimeOf(pid);
    return pidAlive(pid) && (now === undefined || now === started) ? { kind: "live", pid } : { kind: "stale" };
  }
  const age = await stat(lock).then(
    (s) => Date.now() - s.mtimeMs,
    () => Number.POSITIVE_INFINITY,
  );
  return age < FRESH_MS ? { kind: "live", pid: 0 } : { kind: "stale" };
};

/**
 * The holder once an empty lock has settled: a lock file without a pid is being written by its creator (which takes
 * microseconds) or was left by one killed in between (then it turns stale after FRESH_MS). Polls until either shows.
 */
const settledHolderOf = async (lock: string): Promise<Holder> => {
  for (;;) {
    const h = await holderOf(lock);
    if (h.kind !== "live" || h.pid !== 0) return h;
    await new Promise((r) => setTimeout(r, 50));
  }
};

// Guarded: this module is part of the browser-safe core entry, where there is no process.
const ownStart = typeof process === "undefined" ? undefined : startTimeOf(process.pid);

const create = async (lock: string): Promise<boolean> => {
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(lock, "wx");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  }
  try {
    await fh.writeFile(`${process.pid}${ownStart === undefined ? "" : ` ${ownStart}`}\n`);
  } catch (e) {
    // A full disk creates the file but not its content: an empty lock would block the next run until it looks stale.
    await fh.close().catch(() => undefined);
    await unlink(lock).catch(() => undefined);
    throw e;
  }
  await fh.close();
  return true;
};

/** Moves a stale lock out of the way (only one competitor wins the rename) and deletes it. */
const breakStale = async (lock: string): Promise<void> => {
  const aside = tempSibling(lock, ".stale");
  try {
    await rename(lock, aside);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return;
    throw e;
  }
  await unlink(aside).catch(() => undefined);
};

const acquire = async (target: string, lock: string): Promise<SerializationError | OutputLock> => {
  try {
    await mkdir(dirname(lock), { recursive: true });
  } catch (e) {
    // mkdir -p reports a file in the way as EEXIST, which reads as if the directory were fine.
    if ((e as NodeJS.ErrnoException).code === "EEXIST") throw Object.assign(new Error(`${dirname(lock)} is not a directory`), { code: "ENOTDIR" });
    throw e;
  }
  for (let attempt = 0; attempt < 5; attempt++) {
    if (await create(lock)) {
      held.add(lock);
      const forget = (): void => void held.delete(lock);
      return {
        path: lock,
        // Forgotten only once removed: an exit in between (a second Ctrl-C) still finds it in `held` and removes it.
        release: async () => {
          await unlink(lock).catch(() => undefined);
          forget();
        },
        releaseSync: () => {
          forget();
          try {
            unlinkSync(lock);
          } catch {
            // Already gone: nothing to release.
          }
        },
      };
    }
    const h = await settledHolderOf(lock);
    if (h.kind === "live") return outputLocked(target, lock, h.pid);
    if (h.kind === "stale") await breakStale(lock);
  }
  return outputLocked(target, lock, 0);
};

/**
 * The pid of a live process holding `target`'s lock, or null: lets a command refuse a locked output before its slow
 * preparation, without taking the lock yet.
 */
export const liveLockHolder = async (target: string): Promise<number | null> => {
  const h = await settledHolderOf(lockPathOf(resolve(target))).catch((): Holder => ({ kind: "gone" }));
  return h.kind === "live" ? h.pid : null;
};

/** Takes the exclusive lock of `target` (absolute): `OutputLocked` while a live process holds it. */
export const lockOutput = (target: string): TE.TaskEither<SerializationError, OutputLock> => async () => {
  const lock = lockPathOf(target);
  try {
    const r = await acquire(target, lock);
    return "release" in r ? E.right(r) : E.left(r);
  } catch (e) {
    return E.left(ioError((e as { code?: string }).code === "ENOTDIR" ? dirname(lock) : lock, "lock", e));
  }
};
