import { findOverlap, outputState } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, outputNotDirectory, outputOverlaps } from "./errors.js";

/**
 * What every command that writes an output directory refuses before any work: an output that equals, contains or
 * lies inside one of `protect` (its inputs), or a path that is a file, link, pipe or device. Returns whether the
 * directory is absent, empty or holds something (the caller decides about --overwrite).
 */
export const checkOutputPath = async (output: string, protect: ReadonlyArray<string>): Promise<E.Either<LlmqError, "absent" | "empty" | "non-empty">> => {
  const overlap = await findOverlap(output, protect);
  if (overlap !== null) return E.left(outputOverlaps(output, overlap.other, overlap.relation));
  const state = await outputState(output).catch(() => "absent" as const);
  return typeof state === "object" ? E.left(outputNotDirectory(output, state.notDirectory)) : E.right(state);
};
