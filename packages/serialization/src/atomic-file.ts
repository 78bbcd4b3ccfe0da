import { nodeBuiltin } from "@llmq/tensor";
import type { FileHandle } from "node:fs/promises";
const { randomBytes } = nodeBuiltin<typeof import("node:crypto")>("node:crypto");
const { open, readdir, rename, rm } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { basename, dirname, join } = nodeBuiltin<typeof import("node:path")>("node:path");

// ----- temporary siblings -----
// Files are written under a hidden temporary name in the destination directory (same filesystem, so the final
// rename is atomic), fsynced, then renamed; the directory is fsynced after the renames.

/** `.name.llmq-tmp-<pid>-<random>` next to `path`. */
export const tempSibling = (path: string, tag = ""): string =>
  join(dirname(path), `.${basename(path)}${tag}.llmq-tmp-${process.pid}-${randomBytes(6).toString("hex")}`);

/** True for names made by `tempSibling` (used to check that nothing is left behind). */
export const isTempName = (name: string): boolean => /\.llmq-tmp-\d+-[0-9a-f]{12}$/.test(name);

/** fsync a directory so that renames in it are durable (a no-op where directories cannot be opened, e.g. Windows). */
export const fsyncDir = async (dir: string): Promise<void> => {
  let fh: FileHandle | undefined;
  try {
    fh = await open(dir, "r");
    await fh.sync();
  } catch {
    // Directory fsync is best effort: some platforms refuse to open or sync directories.
  } finally {
    await fh?.close().catch(() => undefined);
  }
};

/** Removes a file if it exists, ignoring every error (cleanup paths only). */
export const removeQuietly = (path: string): Promise<void> => rm(path, { force: true }).catch(() => undefined);

/**
 * Writes a whole file through a temporary sibling: `write` fills it, it is fsynced and renamed over `path`, and the
 * directory is fsynced; on any failure the temporary file is removed and the error rethrown (the caller maps it).
 */
export const writeAtomically = async (path: string, write: (fh: FileHandle) => Promise<void>): Promise<void> => {
  const tmp = tempSibling(path);
  try {
    const fh = await open(tmp, "wx");
    try {
      await write(fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await removeQuietly(tmp);
    throw err;
  }
  await fsyncDir(dirname(path));
};

/** Writes all of `bytes` at the current position, in pieces below Node's 2 GiB single-write limit. */
export const writeAll = async (fh: FileHandle, bytes: Uint8Array): Promise<void> => {
  const CHUNK = 1 << 30;
  for (let off = 0; off < bytes.length; off += CHUNK) {
    const part = bytes.subarray(off, Math.min(bytes.length, off + CHUNK));
    let done = 0;
    while (done < part.length) {
      const { bytesWritten } = await fh.write(part, done, part.length - done);
      done += bytesWritten;
    }
  }
};

export const pidAlive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * Removes temporary files that a killed llmq process (SIGKILL, power loss) left in `dir`: only names made by
 * tempSibling whose process id is no longer running. Returns the names removed.
 */
export const removeStaleTemps = async (dir: string): Promise<string[]> => {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const stale = names.filter((n) => {
    const m = /\.llmq-tmp-(\d+)-[0-9a-f]{12}$/.exec(n);
    return m !== null && Number(m[1]) !== process.pid && !pidAlive(Number(m[1]));
  });
  await Promise.all(stale.map((n) => removeQuietly(join(dir, n))));
  return stale;
};
