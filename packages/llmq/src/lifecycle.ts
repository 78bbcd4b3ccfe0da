import * as E from "fp-ts/lib/Either.js";

// The modifier lifecycle of llm-compressor (initialize → start → events → end → finalize) as a tagged union with
// total transition functions: calling a step out of order is a typed error, not a flag check buried in a modifier.

// ----- model -----

/** Events a modifier receives, named as in llm-compressor's EventType. */
export type LifecycleEvent =
  | { readonly type: "calibration_epoch_start" }
  | { readonly type: "sequential_epoch_end"; readonly layer: number }
  | { readonly type: "calibration_epoch_end" }
  | { readonly type: "batch_start"; readonly batch: number }
  | { readonly type: "batch_end"; readonly batch: number }
  | { readonly type: "loss_calculated"; readonly loss: number }
  | { readonly type: "optim_pre_step" }
  | { readonly type: "optim_post_step" };

export type LifecycleState =
  | { readonly _tag: "Created" }
  | { readonly _tag: "Initialized" }
  | { readonly _tag: "Started"; readonly events: number }
  | { readonly _tag: "Ended"; readonly events: number }
  | { readonly _tag: "Finalized"; readonly events: number };

export type LifecycleAction = "initialize" | "start" | "event" | "end" | "finalize";

export interface LifecycleError {
  readonly _tag: "LifecycleError";
  readonly modifier: string;
  readonly action: LifecycleAction;
  readonly state: LifecycleState["_tag"];
}

// ----- constructors -----

export const created: LifecycleState = { _tag: "Created" };

// ----- transitions -----

/** The only legal moves; everything else is a LifecycleError naming the modifier, the step and the state. */
export const transition =
  (modifier: string) =>
  (s: LifecycleState, action: LifecycleAction): E.Either<LifecycleError, LifecycleState> => {
    const bad = E.left<LifecycleError>({ _tag: "LifecycleError", modifier, action, state: s._tag });
    switch (action) {
      case "initialize":
        return s._tag === "Created" ? E.right({ _tag: "Initialized" }) : bad;
      case "start":
        return s._tag === "Initialized" ? E.right({ _tag: "Started", events: 0 }) : bad;
      case "event":
        return s._tag === "Started" ? E.right({ _tag: "Started", events: s.events + 1 }) : bad;
      case "end":
        return s._tag === "Started" ? E.right({ _tag: "Ended", events: s.events }) : bad;
      case "finalize":
        return s._tag === "Ended" ? E.right({ _tag: "Finalized", events: s.events }) : bad;
    }
  };

export const formatLifecycleError = (e: LifecycleError): string =>
  `modifier ${e.modifier}: cannot ${e.action} while ${e.state.toLowerCase()} (order is initialize → start → events → end → finalize)`;

/**
 * Whether a modifier is active at a given (oneshot) epoch, honouring the base fields `start`/`end` as llm-compressor
 * does: oneshot runs at epoch 0 with start defaulting to −1 (always), end −1 meaning "never ends".
 */
export const activeAt = (fields: { readonly start?: number | null | undefined; readonly end?: number | null | undefined }, epoch: number): boolean => {
  const start = fields.start ?? -1;
  const end = fields.end ?? -1;
  return (start < 0 || epoch >= start) && (end < 0 || epoch < end);
};
