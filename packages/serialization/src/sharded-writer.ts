import { nodeBuiltin } from "@llmq/tensor";
import type { FileHandle } from "node:fs/promises";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { fsyncDir, removeQuietly, removeStaleTemps, tempSibling, writeAll } from "./atomic-file.js";
import { type SerializationError, ioError, writeRejected } from "./errors.js";
import { type PyJsonObject, dumpPythonJson } from "./python-json.js";
import type { TensorEntryInfo } from "./safetensors-header.js";
import { SAFE_WEIGHTS_INDEX_NAME, SAFE_WEIGHTS_NAME } from "./safetensors-reader.js";
import { describeTensor, encodeHeaderChecked } from "./safetensors-writer.js";
const { mkdir, open, readdir, rename } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// ----- model -----

export interface ShardedWriterOptions {
  /** transformers' max_shard_size: bytes or "5GB"/"500MB"/"10KB"/"1TB" (decimal units). Default "5GB". */
  readonly maxShardSize?: number | string;
  /** `__metadata__` of every shard. Default {"format": "pt"} as transformers writes it. */
  readonly metadata?: Readonly<Record<string, string>> | null;
  /**
   * `metadata.total_parameters` of the index (transformers writes model.num_parameters()). Default: the element
   * count of all tensors written; null leaves the key out (huggingface_hub's save_torch_state_dict).
   */
  readonly totalParameters?: number | null;
}

export interface ShardedSaveResult {
  readonly dir: string;
  /** Final file names, in shard order. */
  readonly files: ReadonlyArray<string>;
  /** Sum of tensor bytes (the index's metadata.total_size). */
  readonly totalSize: number;
  /** The index file name, or null when everything fit in one `model.safetensors`. */
  readonly index: string | null;
}

/**
 * A streaming, atomic writer of an HF checkpoint. Tensors are added as they are produced and are never all held:
 * the writer keeps one tensor at a time (the caller's) plus a small copy buffer.
 */
export interface ShardedWriter {
  readonly dir: string;
  add(name: string, tensor: Tensor): TE.TaskEither<SerializationError, void>;
  /** Finishes the last shard, renames every file into place, writes the index, removes stale weight files. */
  close(): TE.TaskEither<SerializationError, ShardedSaveResult>;
  /** Drops everything written so far; the directory is left as it was. Safe to call more than once. */
  abort(): Promise<void>;
}

// ----- sizes -----

const SIZE_UNITS: Readonly<Record<string, number>> = { TB: 1e12, GB: 1e9, MB: 1e6, KB: 1e3 };

/** huggingface_hub's parse_size_to_int: "5GB" → 5·10^9 (decimal units, int() truncation). */
export const parseShardSize = (size: number | string): E.Either<string, number> => parseByteSize(size, "max_shard_size");

/** A byte count as transformers writes sizes ("5GB", "1.5MB", 1234): decimal units, truncated to whole bytes. */
export const parseByteSize = (size: number | string, what: string): E.Either<string, number> => {
  if (typeof size === "number")
    return Number.isSafeInteger(size) && size > 0 ? E.right(size) : E.left(`${what} must be a positive integer, got ${size}`);
  const s = size.trim();
  const unit = s.slice(-2).toUpperCase();
  const mult = SIZE_UNITS[unit];
  if (mult === undefined) return E.left(`unit ${JSON.stringify(unit)} is not supported; use TB, GB, MB or KB (got ${JSON.stringify(size)})`);
  const num = s.slice(0, -2).trim();
  if (!/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(num)) return E.left(`cannot parse the size value of ${JSON.stringify(size)}`);
  const v = Math.trunc(Number(num) * mult);
  return Number.isSafeInteger(v) && v > 0 ? E.right(v) : E.left(`${what} ${JSON.stringify(size)} is not a positive size`);
};

/** transformers' shard names: model-00001-of-00003.safetensors. */
export const shardFileName = (index: number, count: number): string =>
  `model-${String(index + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.safetensors`;

const SHARD_RE = /^model-\d{5}-of-\d{5}\.safetensors$/;

// ----- writer -----
// Streaming design: safetensors needs every shape of a file in its header, which comes first, and the Python library
// orders a file's data by (dtype alignment desc, name) rather than by arrival. So each shard's tensors are appended,
// as they arrive, to a spool file (temporary sibling); when the shard is full, its header is computed from the
// recorded shapes and the final shard file (another temporary sibling) is written as header + the spooled byte
// ranges copied in layout order through a fixed 8 MiB buffer, then fsynced; the spool is deleted. Shard names depend
// on the shard count, known only at the end, so the renames to model-0000i-of-0000N happen in close(). Memory stays
// at one tensor plus the copy buffer; the disk sees each byte twice, which page cache absorbs.
// A tensor bigger than max_shard_size goes to a shard of its own immediately while the current shard stays open,
// exactly as huggingface_hub's split_state_dict_into_shards_factory orders the shard list.

const COPY_BUFFER = 8 << 20;

/** A typed error raised inside the writer's async steps, returned as is by `guard` (not wrapped as Io). */
class Rejected extends Error {
  readonly error: SerializationError;
  constructor(error: SerializationError) {
    super(error._tag);
    this.error = error;
  }
}

interface Spooled extends TensorEntryInfo {
  readonly spoolOffset: number;
}

interface OpenShard {
  readonly spoolPath: string;
  readonly fh: FileHandle;
  readonly entries: Spooled[];
  size: number;
}

interface DoneShard {
  readonly tmpPath: string;
  readonly names: ReadonlyArray<string>;
}

export const createShardedWriter = (dir: string, options: ShardedWriterOptions = {}): TE.TaskEither<SerializationError, ShardedWriter> =>
  pipe(
    TE.fromEither(pipe(parseShardSize(options.maxShardSize ?? "5GB"), E.mapLeft((d) => writeRejected(dir, null, d)))),
    TE.chainFirst(() => TE.tryCatch(() => mkdir(dir, { recursive: true }), (err) => ioError(dir, "mkdir", err))),
    // temporaries of a save that was killed before it could clean up
    TE.chainFirst(() => TE.fromTask(() => removeStaleTemps(dir))),
    TE.map((maxShardSize) => makeWriter(dir, maxShardSize, options)),
  );

const makeWriter = (dir: string, maxShardSize: number, options: ShardedWriterOptions): ShardedWriter => {
  const metadata = options.metadata === undefined ? { format: "pt" } : options.metadata;
  const target = join(dir, SAFE_WEIGHTS_NAME);
  const temps = new Set<string>();
  const done: DoneShard[] = [];
  const names = new Set<string>();
  let current: OpenShard | null = null;
  let totalSize = 0;
  let totalElements = 0;
  let state: "open" | "closed" | "aborted" | "failed" = "open";
  let busy = false;

  const newTemp = (tag: string): string => {
    const p = tempSibling(target, tag);
    temps.add(p);
    return p;
  };

  const writeShard = async (entries: ReadonlyArray<Spooled>, copy: (e: Spooled, fh: FileHandle) => Promise<void>): Promise<void> => {
    const he = encodeHeaderChecked(target, entries, metadata);
    if (E.isLeft(he)) throw new Rejected(he.left);
    const h = he.right;
    const tmpPath = newTemp(`-shard${done.length}`);
    const fh = await open(tmpPath, "w");
    try {
      await writeAll(fh, h.bytes);
      const byName = new Map(entries.map((e) => [e.name, e]));
      for (const e of h.layout) await copy(byName.get(e.name)!, fh);
      await fh.sync();
    } finally {
      await fh.close();
    }
    done.push({ tmpPath, names: entries.map((e) => e.name) });
  };

  const finishCurrent = async (): Promise<void> => {
    const shard = current;
    if (shard === null) return;
    current = null;
    const buf = new Uint8Array(Math.min(COPY_BUFFER, Math.max(1, shard.size)));
    try {
      await writeShard(shard.entries, async (e, out) => {
        for (let off = 0; off < e.byteLength; ) {
          const n = Math.min(buf.length, e.byteLength - off);
          const { bytesRead } = await shard.fh.read(buf, 0, n, e.spoolOffset + off);
          if (bytesRead === 0) throw new Error(`spool file ended early while copying ${e.name}`);
          await writeAll(out, buf.subarray(0, bytesRead));
          off += bytesRead;
        }
      });
    } finally {
      await shard.fh.close().catch(() => undefined);
      await removeQuietly(shard.spoolPath);
      temps.delete(shard.spoolPath);
    }
  };

  const cleanup = async (): Promise<void> => {
    const c = current;
    current = null;
    if (c !== null) await c.fh.close().catch(() => undefined);
    await Promise.all([...temps].map(removeQuietly));
    temps.clear();
  };

  const guard = <A>(file: string, tensor: string | null, op: string, f: () => Promise<A>): TE.TaskEither<SerializationError, A> => async () => {
    if (state !== "open") return E.left(writeRejected(file, tensor, `the writer is ${state}`));
    if (busy) return E.left(writeRejected(file, tensor, "add/close called before the previous call finished"));
    busy = true;
    try {
      return E.right(await f());
    } catch (err) {
      state = "failed";
      await cleanup();
      return E.left(err instanceof Rejected ? err.error : ioError(file, op, err, tensor));
    } finally {
      busy = false;
    }
  };

  const add = (name: string, tensor: Tensor): TE.TaskEither<SerializationError, void> => {
    if (names.has(name)) return TE.left(writeRejected(dir, name, "the name was already added"));
    const info = describeTensor(dir, name, tensor);
    if (E.isLeft(info)) return TE.left(info.left);
    const e = info.right;
    return guard(dir, name, "write", async () => {
      names.add(name);
      totalSize += e.byteLength;
      totalElements += tensor.size;
      if (e.byteLength > maxShardSize) {
        await writeShard([{ ...e, spoolOffset: 0 }], async (_, out) => writeAll(out, tensor.bytes()));
        return;
      }
      if (current !== null && current.size + e.byteLength > maxShardSize) await finishCurrent();
      if (current === null) {
        const spoolPath = newTemp("-spool");
        current = { spoolPath, fh: await open(spoolPath, "w+"), entries: [], size: 0 };
      }
      const c: OpenShard = current;
      await writeAll(c.fh, tensor.bytes());
      c.entries.push({ ...e, spoolOffset: c.size });
      c.size += e.byteLength;
    });
  };

  const close = (): TE.TaskEither<SerializationError, ShardedSaveResult> =>
    guard(dir, null, "close", async () => {
      await finishCurrent();
      if (done.length === 0) await writeShard([], async () => undefined);
      const single = done.length === 1;
      const files = single ? [SAFE_WEIGHTS_NAME] : done.map((_, i) => shardFileName(i, done.length));
      let indexTmp: string | null = null;
      if (!single) {
        const weightMap: Record<string, string> = {};
        done.forEach((s, i) => {
          for (const n of s.names) weightMap[n] = files[i]!;
        });
        const md: Record<string, number> = { total_size: totalSize };
        const tp = options.totalParameters === undefined ? totalElements : options.totalParameters;
        if (tp !== null) md.total_parameters = tp;
        const index: PyJsonObject = { metadata: md, weight_map: weightMap };
        indexTmp = newTemp("-index");
        const fh = await open(indexTmp, "w");
        try {
          await writeAll(fh, Buffer.from(`${dumpPythonJson(index, { indent: 2, sortKeys: true })}\n`, "utf8"));
          await fh.sync();
        } finally {
          await fh.close();
        }
      }
      // Everything is on disk under temporary names: from here on only renames and deletions of stale files.
      for (let i = 0; i < done.length; i++) {
        await rename(done[i]!.tmpPath, join(dir, files[i]!));
        temps.delete(done[i]!.tmpPath);
      }
      if (indexTmp !== null) {
        await rename(indexTmp, join(dir, SAFE_WEIGHTS_INDEX_NAME));
        temps.delete(indexTmp);
      }
      const keep = new Set(files);
      for (const f of await readdir(dir)) {
        const stale = (SHARD_RE.test(f) && !keep.has(f)) || (f === SAFE_WEIGHTS_NAME && !single) || (f === SAFE_WEIGHTS_INDEX_NAME && single);
        if (stale) await removeQuietly(join(dir, f));
      }
      await fsyncDir(dir);
      state = "closed";
      return { dir, files, totalSize, index: single ? null : SAFE_WEIGHTS_INDEX_NAME };
    });

  const abort = async (): Promise<void> => {
    if (state === "closed") return;
    state = "aborted";
    await cleanup();
  };

  return { dir, add, close, abort };
};

/**
 * Runs `produce` with a fresh writer and closes it; if `produce` fails (Left or throw), the writer is aborted and the
 * directory is left as it was.
 */
export const withShardedWriter = <A>(
  dir: string,
  options: ShardedWriterOptions,
  produce: (w: ShardedWriter) => TE.TaskEither<SerializationError, A>,
): TE.TaskEither<SerializationError, { readonly value: A; readonly result: ShardedSaveResult }> =>
  pipe(
    createShardedWriter(dir, options),
    TE.chain((w) => async () => {
      let r: E.Either<SerializationError, A>;
      try {
        r = await produce(w)();
      } catch (err) {
        await w.abort();
        throw err;
      }
      if (E.isLeft(r)) {
        await w.abort();
        return r;
      }
      const c = await w.close()();
      if (E.isLeft(c)) {
        await w.abort();
        return c;
      }
      return E.right({ value: r.right, result: c.right });
    }),
  );
