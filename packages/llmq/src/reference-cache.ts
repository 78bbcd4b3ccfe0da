import { nodeBuiltin } from "@llmq/tensor";
import type { ModelHandle } from "@llmq/models";
import { formatSerializationError, openSafetensors, writeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, ioError, ioErrorFrom } from "./errors.js";
const { createHash } = nodeBuiltin<typeof import("node:crypto")>("node:crypto");
const { mkdir, readdir, realpath, stat } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// The reference model's final hidden states per evaluation window, kept on disk so that comparing several quantized
// models against one reference runs the reference's decoder layers once. Stored are the states before the final norm
// ([T, hidden] per window, f32: 37 MB for 32 × 512 tokens of a 576-wide model), not log-probabilities ([T, vocab]:
// 3.2 GB for the same windows of a 49k vocabulary); the head's one GEMM per window is recomputed.

/** One reference and window set's place in a store: what it holds there (null: a miss), and how to fill it. */
export interface ReferenceEntry {
  readonly hidden: Tensor<"f32">[] | null;
  readonly save: (hidden: ReadonlyArray<Tensor<"f32">>) => Promise<E.Either<LlmqError, void>>;
}

/** Where `evaluate` finds, and leaves, a reference's final hidden states (the key is computed once per entry). */
export interface ReferenceStore {
  readonly open: (h: ModelHandle, windows: ReadonlyArray<Int32Array>) => Promise<E.Either<LlmqError, ReferenceEntry>>;
}

const FORMAT = "llmq-reference-hidden-v1";

/**
 * The cache key: the model's files (resolved path, then name, size and modification time of every file in its
 * directory, or of the .gguf itself), the exact token windows (dataset, tokenizer, --seq-len and --num-samples in one),
 * and the format version. Any change to the weights, the data or the window protocol misses the cache.
 */
const cacheKey = async (h: ModelHandle, windows: ReadonlyArray<Int32Array>): Promise<string> => {
  const hash = createHash("sha256").update(FORMAT);
  const root = await realpath(h.dir);
  const st = await stat(root);
  const files = st.isDirectory() ? (await readdir(root, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name).sort() : [""];
  hash.update(root);
  for (const f of files) {
    const s = await stat(join(root, f));
    hash.update(`\0${f}\0${s.size}\0${s.mtimeMs}`);
  }
  for (const w of windows) hash.update(`\0${w.length}\0`).update(new Uint8Array(w.buffer, w.byteOffset, w.byteLength));
  return hash.digest("hex");
};

const fileOf = (dir: string, key: string): string => join(dir, `reference-${key.slice(0, 40)}.safetensors`);

const loadFrom = async (path: string, key: string, h: ModelHandle, windows: ReadonlyArray<Int32Array>): Promise<E.Either<LlmqError, Tensor<"f32">[] | null>> => {
  const exists = await stat(path).then(
    () => true,
    () => false,
  );
  if (!exists) return E.right(null);
  const f = await openSafetensors(path)();
  if (E.isLeft(f)) return E.left(ioError(path, formatSerializationError(f.left)));
  try {
    // A file of another key (a truncated hash collision) or another shape is a miss, recomputed and overwritten.
    if (f.right.metadata?.key !== key || f.right.names.length !== windows.length) return E.right(null);
    const out: Tensor<"f32">[] = [];
    for (const [i, w] of windows.entries()) {
      const t = await f.right.read(`window.${i}`)();
      if (E.isLeft(t)) return E.left(ioError(path, formatSerializationError(t.left)));
      if (t.right.dtype !== "f32" || t.right.shape[0] !== w.length || t.right.shape[1] !== h.config.hidden_size) return E.right(null);
      out.push(t.right as Tensor<"f32">);
    }
    return E.right(out);
  } finally {
    await f.right.close();
  }
};

const saveTo = async (dir: string, path: string, key: string, h: ModelHandle, hidden: ReadonlyArray<Tensor<"f32">>): Promise<E.Either<LlmqError, void>> => {
  try {
    await mkdir(dir, { recursive: true });
  } catch (err) {
    return E.left(ioErrorFrom(dir, "create the reference cache directory", err));
  }
  const w = await writeSafetensors(
    path,
    hidden.map((t, i) => [`window.${i}`, t] as const),
    { key, model: h.dir, format: FORMAT },
  )();
  return E.isLeft(w) ? E.left(ioError(path, formatSerializationError(w.left))) : E.right(undefined);
};

/** A reference cache in `dir` (created when first written); files are written to a temp name and renamed. */
export const referenceCacheDir = (dir: string): ReferenceStore => ({
  open: async (h, windows) => {
    try {
      const key = await cacheKey(h, windows);
      const path = fileOf(dir, key);
      const save = async (hidden: ReadonlyArray<Tensor<"f32">>): Promise<E.Either<LlmqError, void>> => {
        try {
          return await saveTo(dir, path, key, h, hidden);
        } catch (err) {
          return E.left(ioErrorFrom(dir, "write the reference cache", err));
        }
      };
      return E.map((hidden: Tensor<"f32">[] | null): ReferenceEntry => ({ hidden, save }))(await loadFrom(path, key, h, windows));
    } catch (err) {
      return E.left(ioErrorFrom(dir, "read the reference cache", err));
    }
  },
});
