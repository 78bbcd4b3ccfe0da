import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type SerializationError, writeRejected } from "./errors.js";
import { type SafetensorsHeader, parseSafetensorsBuffer } from "./safetensors-header.js";
import { SAFE_WEIGHTS_NAME, type Checkpoint, type SafetensorsFile, safetensorsFileOver, singleFileCheckpoint, tensorFromBytes } from "./safetensors-reader.js";
import { serializeSafetensors } from "./safetensors-writer.js";
import { type ShardedSaveResult, type ShardedWriter, type ShardedWriterOptions, parseShardSize } from "./sharded-writer.js";

// The same checkpoint readers and writers over bytes held in memory, for pages that fetch a model or pick its files
// and offer the result as a download: no file system is touched.

/** A safetensors file over its bytes (fetched, or a File's arrayBuffer()); each read copies the tensor's bytes. */
export const safetensorsFromBytes = (path: string, bytes: Uint8Array): E.Either<SerializationError, SafetensorsFile> =>
  E.map((header: SafetensorsHeader) =>
    safetensorsFileOver(path, header, (_, position, length) => TE.right(bytes.slice(position, position + length)), () => Promise.resolve()),
  )(parseSafetensorsBuffer(path, bytes));

/** A single-file checkpoint (`dir/model.safetensors`) over the file's bytes. */
export const memoryCheckpoint = (dir: string, bytes: Uint8Array): E.Either<SerializationError, Checkpoint> =>
  E.map((f: SafetensorsFile) => singleFileCheckpoint(dir, f))(safetensorsFromBytes(`${dir}/${SAFE_WEIGHTS_NAME}`, bytes));

/** A ShardedWriter that keeps the checkpoint in memory; `files()` holds it once closed. */
export interface MemoryShardedWriter extends ShardedWriter {
  /** The written files by name (model.safetensors) after a successful close; empty before. */
  readonly files: () => ReadonlyMap<string, Uint8Array>;
}

/**
 * createShardedWriter's twin in memory: the same bytes as the file writer's `model.safetensors` for the same tensors
 * and options. A checkpoint larger than max_shard_size (several shards) is refused: a page holds small models only.
 */
export const memoryShardedWriter = (dir: string, options: ShardedWriterOptions = {}): E.Either<SerializationError, MemoryShardedWriter> =>
  E.map((maxShardSize: number): MemoryShardedWriter => {
    const metadata = options.metadata === undefined ? { format: "pt" } : options.metadata;
    const entries = new Map<string, Tensor>();
    let size = 0;
    let state: "open" | "closed" | "aborted" = "open";
    let out: ReadonlyMap<string, Uint8Array> = new Map();
    const rejected = (tensor: string | null, detail: string) => TE.left(writeRejected(dir, tensor, detail));
    return {
      dir,
      add: (name, tensor) => {
        if (state !== "open") return rejected(name, `the writer is ${state}`);
        if (entries.has(name)) return rejected(name, "the name was already added");
        if (size + tensor.byteLength > maxShardSize)
          return rejected(name, `the checkpoint exceeds max_shard_size ${maxShardSize} bytes: sharded checkpoints are written to files only`);
        size += tensor.byteLength;
        // A copy: the caller may reuse or edit the tensor after add, as the file writer allows.
        entries.set(name, tensorFromBytes(tensor.dtype, tensor.shape, tensor.bytes().slice()));
        return TE.right(undefined);
      },
      close: (): TE.TaskEither<SerializationError, ShardedSaveResult> => {
        if (state !== "open") return rejected(null, `the writer is ${state}`);
        const bytes = serializeSafetensors(entries, metadata);
        if (E.isLeft(bytes)) return TE.left(bytes.left);
        state = "closed";
        out = new Map([[SAFE_WEIGHTS_NAME, bytes.right]]);
        entries.clear();
        return TE.right({ dir, files: [SAFE_WEIGHTS_NAME], totalSize: size, index: null });
      },
      abort: async () => {
        if (state === "open") state = "aborted";
        entries.clear();
      },
      files: () => out,
    };
  })(E.mapLeft((d: string) => writeRejected(dir, null, d))(parseShardSize(options.maxShardSize ?? "5GB")));
