import type { AdamWState } from "./adamw.js";
import type { FakeQuantPlan, TrainWeights } from "./llama-train-forward.js";

// What a training run carries from step to step (LC's State: model, optimizer, loss, teacher), as one value.

/** The teacher's logits [T, vocab] of a window (a frozen model, usually the unquantized one). */
export type Teacher = (ids: Int32Array) => Float32Array;

export interface TrainState {
  /** 0-based epoch and global optimizer step (the next step to take). */
  readonly epoch: number;
  readonly step: number;
  /** Every tensor of the model on the tape; the trainable ones are parameters (needsGrad), the rest constants. */
  readonly weights: TrainWeights;
  readonly optimizer: AdamWState;
  /** The loss of the last batch (null before the first). */
  readonly loss: number | null;
  readonly quant: FakeQuantPlan;
  /** The frozen teacher distilled from (null: cross-entropy on the next tokens only). */
  readonly teacher: Teacher | null;
}
