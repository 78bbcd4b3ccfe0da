import type { ModelHandle } from "@llmq/models";
import { type MemoryShardedWriter, memoryShardedWriter } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { type LlmqError, abortedBy, outputFailure } from "./errors.js";
import { MODEL_EXTRAS, type OneshotCore, type OneshotResult, calibrateInto, metadataFiles, prepare, resultOf, startRss } from "./oneshot.js";
import { openModelFiles } from "./open-model.js";

// `oneshot` over a model held in memory (fetched, or picked as File objects in a page) into a checkpoint held in
// memory: the same modifiers, pipeline, compression and metadata, so the files are byte-identical to what `oneshot`
// (and `llmq quantize`) writes for the same model and recipe. Nothing touches a file system.

export interface OneshotFilesOptions extends OneshotCore {
  /** The model's files by name: config.json, model.safetensors, and the tokenizer files to copy along. */
  readonly files: ReadonlyMap<string, Uint8Array>;
  /** Stands for the model's directory in messages and results. */
  readonly name?: string;
}

export interface OneshotFilesResult {
  readonly result: OneshotResult;
  /** The checkpoint's files by name: model.safetensors, config.json, recipe.yaml, and the copied tokenizer files. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

const utf8 = new TextEncoder();

/** The calibration and the metadata of one run into `writer`; the checkpoint's files once complete. */
const run = (o: OneshotFilesOptions, h: ModelHandle, writer: MemoryShardedWriter, t0: number): TE.TaskEither<LlmqError, OneshotFilesResult> => async () => {
  const prep = prepare(o, h);
  if (E.isLeft(prep)) return prep;
  const output = `${h.dir} (quantized, in memory)`;
  const c = await calibrateInto(o, h, prep.right, writer, output)();
  if (E.isLeft(c)) return c;
  const meta = metadataFiles(h, new TextDecoder().decode(o.files.get("config.json")), c.right.written, c.right.metadata);
  if (E.isLeft(meta)) return meta;
  if (o.signal?.aborted) return E.left(abortedBy(o.signal));
  const files = new Map<string, Uint8Array>(writer.files());
  for (const [name, text] of meta.right.files) files.set(name, utf8.encode(text));
  for (const [name, bytes] of o.files) if (MODEL_EXTRAS.test(name)) files.set(name, bytes);
  return E.right({ result: resultOf(o, output, meta.right.format, c.right, t0), files });
};

/** llm-compressor's `oneshot` from files in memory to files in memory (single-file checkpoints). */
export const oneshotFiles = (o: OneshotFilesOptions): TE.TaskEither<LlmqError, OneshotFilesResult> => {
  const t0 = performance.now();
  startRss();
  const name = o.name ?? "memory";
  return TE.bracket(
    openModelFiles(o.files, name),
    (h) =>
      pipe(
        TE.fromEither(pipe(memoryShardedWriter(name), E.mapLeft((e) => outputFailure(name, e)))),
        TE.chain((writer) => run(o, h, writer, t0)),
      ),
    (h) => TE.fromTask(() => h.close()),
  );
};

