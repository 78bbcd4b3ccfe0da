import { nodeBuiltin } from "@llmq/tensor";
import { type SerializationError, formatSerializationError, llmqDTypeOf, openCheckpoint } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type ModelError, checkpointError, fileNotFound, invalidJson, ioError } from "./errors.js";
import { type ModelHandle, modelFromSource } from "./model-handle.js";
import type { WeightSource } from "./weight-source.js";
const { access, readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

const fromSerialization = (e: SerializationError): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));

const exists = (p: string): Promise<boolean> =>
  access(p).then(
    () => true,
    () => false,
  );

/** Reads and parses `dir/config.json`; names the file on absence or bad JSON. */
export const readConfigJson = (dir: string): TE.TaskEither<ModelError, Record<string, unknown>> => {
  const path = join(dir, "config.json");
  return pipe(
    TE.tryCatch(
      () => readFile(path, "utf8"),
      (e) => ((e as NodeJS.ErrnoException).code === "ENOENT" ? fileNotFound(path, "model config") : ioError(path, (e as Error).message)),
    ),
    TE.chainEitherK((text) =>
      E.tryCatch(
        () => JSON.parse(text) as unknown,
        (e) => invalidJson(path, (e as Error).message),
      ),
    ),
    TE.chainEitherK((v) =>
      typeof v === "object" && v !== null && !Array.isArray(v) ? E.right(v as Record<string, unknown>) : E.left(invalidJson(path, "the top level must be an object")),
    ),
  );
};

/**
 * Opens an HF Llama-family directory: config.json and the safetensors headers (single file or sharded index).
 * No tensor data is read until `loadEmbedding` / `loadLayer` / `loadHead` / `readTensor`. Call `close` when done.
 */
export const openModel = (dir: string): TE.TaskEither<ModelError, ModelHandle> =>
  pipe(
    readConfigJson(dir),
    TE.chainFirst(() =>
      pipe(
        TE.fromTask(async () => (await exists(join(dir, "model.safetensors"))) || exists(join(dir, "model.safetensors.index.json"))),
        TE.chain((ok) =>
          ok ? TE.right(undefined) : TE.left(fileNotFound(join(dir, "model.safetensors"), "weights (model.safetensors or model.safetensors.index.json)")),
        ),
      ),
    ),
    TE.chain((raw) =>
      pipe(
        openCheckpoint(dir),
        TE.mapLeft(fromSerialization),
        TE.chain((ckpt) => {
          const source: WeightSource = {
            names: () => ckpt.names,
            shape: (name) => ckpt.info(name)?.info.shape,
            dtype: (name) => {
              const d = ckpt.info(name)?.info.dtype;
              return d === undefined ? undefined : (llmqDTypeOf(d) ?? d);
            },
            read: (name) => pipe(ckpt.read(name), TE.mapLeft(fromSerialization)),
          };
          return pipe(
            modelFromSource(dir, raw, source, dir, () => ckpt.close()),
            E.fold(
              (e) =>
                pipe(
                  TE.fromTask(() => ckpt.close()),
                  TE.chain(() => TE.left(e)),
                ),
              (h) => TE.right(h),
            ),
          );
        }),
      ),
    ),
  );
