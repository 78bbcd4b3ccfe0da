import { formatSerializationError, openSafetensors, writeSafetensors } from "@llmq/serialization";
import { nodeBuiltin, Tensor } from "@llmq/tensor";
import type { TrainState } from "@llmq/train";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, ioError, usageError } from "./errors.js";
const { access, mkdir } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// The resumable state of `llmq train`: after every epoch, one safetensors file (written atomically) holds the trained
// tensors, AdamW's moments (f64, so a resumed run continues bit for bit) and, in its metadata, the step, the epochs
// done, the loss history and a fingerprint of the run's options; a rerun with the same options continues from it.

export const STATE_FILE = "training_state.safetensors";

/** What a run had done when its state was saved. */
export interface SavedProgress {
  readonly fingerprint: string;
  /** Epochs completed (the next epoch to run). */
  readonly epochsDone: number;
  readonly step: number;
  readonly losses: ReadonlyArray<number>;
  readonly epochs: ReadonlyArray<{ readonly epoch: number; readonly loss: number; readonly eval_kld: number | null }>;
  readonly startEvalKld: number | null;
}

/** A copy of the trainable tensors and moments now (training goes on mutating the live ones). */
export const snapshotState = (s: TrainState): Map<string, Tensor> => {
  const out = new Map<string, Tensor>();
  for (const [name, v] of s.weights) {
    if (!v.needsGrad) continue;
    out.set(`weight/${name}`, new Tensor("f32", v.shape, Float32Array.from(v.data)));
    const m = s.optimizer.m.get(name);
    const u = s.optimizer.v.get(name);
    if (m !== undefined && u !== undefined) {
      out.set(`adam_m/${name}`, new Tensor("f64", [m.length], Float64Array.from(m)));
      out.set(`adam_v/${name}`, new Tensor("f64", [u.length], Float64Array.from(u)));
    }
  }
  return out;
};

export const saveTrainState = async (dir: string, tensors: ReadonlyMap<string, Tensor>, p: SavedProgress): Promise<E.Either<LlmqError, void>> => {
  try {
    await mkdir(dir, { recursive: true });
  } catch (e) {
    return E.left(ioError(dir, `cannot create the state directory: ${(e as Error).message}`));
  }
  const r = await writeSafetensors(join(dir, STATE_FILE), tensors, { llmq_train: JSON.stringify(p) })();
  return E.isLeft(r) ? E.left(ioError(join(dir, STATE_FILE), formatSerializationError(r.left))) : E.right(undefined);
};

/**
 * Restores a saved state into `s` (its live weights and moments are overwritten) when `dir` holds one; null when there
 * is none yet. A state saved by a run with other options is refused rather than mixed in.
 */
export const resumeTrainState = async (dir: string, s: TrainState, fingerprint: string): Promise<E.Either<LlmqError, SavedProgress | null>> => {
  const path = join(dir, STATE_FILE);
  if (!(await access(path).then(() => true, () => false))) return E.right(null);
  const f = await openSafetensors(path)();
  if (E.isLeft(f)) return E.left(ioError(path, formatSerializationError(f.left)));
  try {
    const p = JSON.parse(f.right.metadata?.llmq_train ?? "null") as SavedProgress | null;
    if (p === null) return E.left(ioError(path, "not an llmq training state (no llmq_train metadata)"));
    if (p.fingerprint !== fingerprint)
      return E.left(usageError("--state-dir", `${path} was saved by a run with other options or inputs`, "rerun with the same options to resume, or point --state-dir at an empty directory"));
    for (const [name, v] of s.weights) {
      if (!v.needsGrad) continue;
      for (const [key, into] of [[`weight/${name}`, v.data], [`adam_m/${name}`, s.optimizer.m.get(name)], [`adam_v/${name}`, s.optimizer.v.get(name)]] as const) {
        const t = await f.right.read(key)();
        if (E.isLeft(t)) return E.left(ioError(path, formatSerializationError(t.left)));
        if (into === undefined || t.right.size !== into.length) return E.left(ioError(path, `${key} does not fit the model being trained`));
        into.set(t.right.data as Float32Array | Float64Array);
      }
    }
    return E.right(p);
  } finally {
    await f.right.close();
  }
};
