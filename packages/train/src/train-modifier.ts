import { type ModifierError, type ModifierEvent, activeAt } from "@llmq/observers";
import type { QuantizationArgs } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import type { FakeQuantParams } from "./fake-quant-ste.js";
import type { TrainState } from "./train-state.js";

// The training side of llm-compressor's modifier contract: a modifier receives every training event (batch_start,
// loss_calculated, optim_pre_step, optim_post_step, batch_end) with the training state and may change it. Its base
// fields `start` / `end` (epochs) decide when it is active, as LC's `should_start` / `should_end` do on each event.

// ----- model -----

export interface TrainModifier<S = unknown> {
  readonly type: string;
  readonly start: number | null;
  readonly end: number | null;
  readonly init: S;
  onEvent(state: S, event: ModifierEvent, train: TrainState): E.Either<ModifierError, { readonly state: S; readonly train: TrainState }>;
}

/** Where a QAT modifier is: not yet started, fake-quantizing, or ended (the lifecycle's variants that training reaches). */
export type QatPhase = { readonly _tag: "Waiting" } | { readonly _tag: "Started"; readonly epoch: number } | { readonly _tag: "Ended"; readonly epoch: number };

// ----- constructors -----

/**
 * QuantizationModifier's QAT path: from epoch `start` the planned modules run fake-quantized forwards (frozen qparams,
 * clipped STE) until epoch `end` (null or −1: until training ends). Starting and ending happen on batch_start, when the
 * epoch is known, as LC's lifecycle checks `should_start` on each event.
 */
export const qatModifier = (
  modules: ReadonlyMap<string, FakeQuantParams>,
  fields: { readonly start?: number | null; readonly end?: number | null; readonly inputs?: ReadonlyMap<string, QuantizationArgs> } = {},
): TrainModifier<QatPhase> => ({
  type: "QuantizationModifier",
  start: fields.start ?? 0,
  end: fields.end ?? null,
  init: { _tag: "Waiting" },
  onEvent(state, event, train) {
    if (event.type !== "batch_start") return E.right({ state, train });
    const on = activeAt({ start: this.start, end: this.end }, train.epoch);
    const phase: QatPhase = on
      ? state._tag === "Started" ? state : { _tag: "Started", epoch: train.epoch }
      : state._tag === "Started" ? { _tag: "Ended", epoch: train.epoch } : state;
    return E.right({ state: phase, train: { ...train, quant: { modules, active: on, ...(fields.inputs !== undefined ? { inputs: fields.inputs } : {}) } } });
  },
});
