// The errno codes a user can act on, in words: a bare "ENOSPC" or "EACCES: permission denied, open '…'" tells a user
// less than "no space left on the device" plus what to do about it. Unknown codes fall back to the system's message.

// ----- model -----

export interface ErrnoMeaning {
  /** What the system reported, in words. */
  readonly why: string;
  /** What the user can do about it. */
  readonly hint: string;
}

const MEANINGS: Readonly<Record<string, ErrnoMeaning>> = {
  ENOSPC: { why: "no space left on the device", hint: "free some space or choose an output on another disk" },
  EDQUOT: { why: "the disk quota is exhausted", hint: "free some space or choose an output on another disk" },
  EROFS: { why: "the file system is read-only", hint: "choose a writable location" },
  EACCES: { why: "permission denied", hint: "check the permissions of the path and its parent directory" },
  EPERM: { why: "operation not permitted", hint: "check the permissions of the path and its parent directory" },
  EISDIR: { why: "it is a directory where a file was expected", hint: "remove or rename that directory, or choose another path" },
  ENOTDIR: { why: "a component of the path is a file, not a directory", hint: "check the path" },
  ENOENT: { why: "no such file or directory", hint: "check the path; its parent directory must exist" },
  EEXIST: { why: "it already exists", hint: "remove it or choose another path" },
  ENOTEMPTY: { why: "the directory is not empty", hint: "remove it or choose another path" },
  ENAMETOOLONG: { why: "the file name is too long", hint: "choose a shorter path" },
  ELOOP: { why: "too many symbolic links in the path", hint: "check the symbolic links in the path" },
  EMFILE: { why: "too many open files", hint: "raise the open-file limit (ulimit -n)" },
  ENFILE: { why: "too many open files in the system", hint: "close other programs or raise the system's open-file limit" },
  EXDEV: { why: "the rename crosses file systems", hint: "choose an output on the same file system as its parent" },
  EBUSY: { why: "the resource is busy", hint: "close the program that holds it and retry" },
  EIO: { why: "an input/output error occurred on the device", hint: "check the disk" },
  EFBIG: { why: "the file is too large for the file system", hint: "choose an output on another file system or shard smaller (maxShardSize)" },
  ETXTBSY: { why: "the file is busy", hint: "close the program that holds it and retry" },
};

// ----- destructors -----

/** The errno code of a thrown Node error, or null. */
export const errnoCode = (err: unknown): string | null => {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" && /^E[A-Z0-9]+$/.test(c) ? c : null;
};

/** The code in words and a hint, or null for codes without one (the caller keeps the system's message then). */
export const errnoMeaning = (code: string | null): ErrnoMeaning | null => (code === null ? null : (MEANINGS[code] ?? null));

/** "no space left on the device (ENOSPC)", or the error's own message for unknown codes. */
export const describeErrno = (err: unknown): string => {
  const code = errnoCode(err);
  const m = errnoMeaning(code);
  if (m !== null) return `${m.why} (${code})`;
  return err instanceof Error ? err.message : String(err);
};
