import { Tensor, nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, ioErrorFrom } from "./errors.js";

const fs = nodeBuiltin<typeof import("node:fs")>("node:fs");
const os = nodeBuiltin<typeof import("node:os")>("node:os");
const path = nodeBuiltin<typeof import("node:path")>("node:path");

// The activations of a pass, [T, hidden] per calibration window, live here between layers. Without a budget every
// window stays in memory (an array of tensors). With one (`--max-memory`), the first windows that fit the budget stay in
// memory and the rest go to one temporary file, a fixed slot per window, read back when a batch needs them and
// overwritten when propagation replaces them, so the memory a pass holds no longer grows with the sample count.
// Reads and writes are synchronous: a batch's windows are read just before its forward, which dwarfs the read.

export interface WindowStore {
  readonly lengths: ReadonlyArray<number>;
  /** Window i as it is now. */
  readonly get: (i: number) => E.Either<LlmqError, Tensor<"f32">>;
  /** Replaces window i (same shape). */
  readonly set: (i: number, t: Tensor<"f32">) => E.Either<LlmqError, void>;
  /** How many windows live in the spill file (0 without a budget or when all fit). */
  readonly spilled: number;
  /** Frees the memory and deletes the spill file; the store is unusable afterwards. */
  readonly close: () => void;
}

export interface WindowStoreOptions {
  /** Bytes of activations kept in memory; the rest spill to a file. Absent: everything in memory. */
  readonly maxMemory?: number | undefined;
  /** Where the spill file goes (default: the OS temp directory). */
  readonly spillDir?: string | undefined;
}

/** Windows [0, k) whose activations fit the budget, in order. */
const inMemoryCount = (lengths: ReadonlyArray<number>, width: number, budget: number | undefined): number => {
  if (budget === undefined) return lengths.length;
  let bytes = 0;
  for (let i = 0; i < lengths.length; i++) {
    bytes += lengths[i]! * width * 4;
    if (bytes > budget) return i;
  }
  return lengths.length;
};

const bytesOf = (t: Float32Array): Uint8Array => new Uint8Array(t.buffer, t.byteOffset, t.byteLength);

/** Reads or writes all of `buf` at `pos` (a single call may move fewer bytes than asked). */
const fullIo = (op: "read" | "write", fd: number, buf: Uint8Array, pos: number): void => {
  for (let done = 0; done < buf.length; ) {
    const n = op === "read" ? fs.readSync(fd, buf, done, buf.length - done, pos + done) : fs.writeSync(fd, buf, done, buf.length - done, pos + done);
    if (n === 0) throw new Error(`${op} returned 0 bytes at offset ${pos + done}`);
    done += n;
  }
};

/**
 * A store for windows of the given lengths and row width, filled with `initial(i)` ([lengths[i], width] each), made one
 * window at a time so that the spilled ones never exist in memory all together.
 */
export const windowStore = (
  lengths: ReadonlyArray<number>,
  width: number,
  initial: (i: number) => Tensor<"f32">,
  opts: WindowStoreOptions = {},
): E.Either<LlmqError, WindowStore> => {
  const kept = inMemoryCount(lengths, width, opts.maxMemory);
  const memory: (Tensor<"f32"> | undefined)[] = Array.from({ length: kept }, (_, i) => initial(i));
  if (kept === lengths.length) return E.right(memoryStore(lengths, memory));
  const file = path.join(opts.spillDir ?? os.tmpdir(), `llmq-activations-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}.bin`);
  let fd: number;
  try {
    fd = fs.openSync(file, "wx+", 0o600);
  } catch (err) {
    return E.left(ioErrorFrom(file, "cannot create the activation spill file", err));
  }
  const store = spillStore(lengths, width, memory, file, fd);
  for (let i = kept; i < lengths.length; i++) {
    const w = store.set(i, initial(i));
    if (E.isLeft(w)) {
      store.close();
      return w;
    }
  }
  return E.right(store);
};

/** Windows [0, memory.length) in memory, the rest in `file` (open as fd), a slot each after the spilled ones before it. */
const spillStore = (lengths: ReadonlyArray<number>, width: number, memory: (Tensor<"f32"> | undefined)[], file: string, fd: number): WindowStore => {
  const kept = memory.length;
  const offsets = new Map<number, number>();
  for (let i = kept, at = 0; i < lengths.length; at += lengths[i]! * width * 4, i++) offsets.set(i, at);
  let open = true;
  return {
    lengths,
    spilled: lengths.length - kept,
    get: (i) => {
      if (i < kept) return E.right(memory[i]!);
      const t = new Tensor("f32", [lengths[i]!, width], new Float32Array(lengths[i]! * width));
      return E.tryCatch(
        () => {
          fullIo("read", fd, bytesOf(t.data), offsets.get(i)!);
          return t;
        },
        (err) => ioErrorFrom(file, `cannot read window ${i} back from the activation spill file`, err),
      );
    },
    set: (i, t) => {
      if (i < kept) {
        memory[i] = t;
        return E.right(undefined);
      }
      return E.tryCatch(
        () => fullIo("write", fd, bytesOf(t.data), offsets.get(i)!),
        (err) => ioErrorFrom(file, `cannot write window ${i} to the activation spill file (--max-memory spills activations to disk)`, err),
      );
    },
    close: () => {
      memory.length = 0;
      if (!open) return;
      open = false;
      fs.closeSync(fd);
      fs.rmSync(file, { force: true });
    },
  };
};

/** A store of no windows (a data-free pass, and the state between passes). */
export const NO_WINDOWS_STORE: WindowStore = memoryStore([], []);

function memoryStore(lengths: ReadonlyArray<number>, memory: (Tensor<"f32"> | undefined)[]): WindowStore {
  return {
    lengths,
    spilled: 0,
    get: (i) => E.right(memory[i]!),
    set: (i, t) => {
      memory[i] = t;
      return E.right(undefined);
    },
    close: () => {
      memory.length = 0;
    },
  };
}
