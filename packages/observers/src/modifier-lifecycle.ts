import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { EpochContext, EpochEnd, LayerState, ModelInfo, ModelPlan, Modifier, ModifierError } from "./modifier.js";

// The lifecycle of llm-compressor's Modifier (initialize → start → calibration events → end → finalize) as a tagged
// union that carries the modifier's own state. The typed steps below accept only the variant they follow, so calling
// them out of order does not compile; `step` is the same machine for code that only knows the variant at run time,
// where an out-of-order call is a LifecycleError value.

// ----- model -----

export type LifecycleAction = "initialize" | "start" | "event" | "end" | "finalize";

export type LifecycleState =
  | { readonly _tag: "Created" }
  | { readonly _tag: "Initialized" }
  | { readonly _tag: "Started"; readonly events: number }
  | { readonly _tag: "Ended"; readonly events: number }
  | { readonly _tag: "Finalized"; readonly events: number };

export interface LifecycleError {
  readonly _tag: "LifecycleError";
  readonly modifier: string;
  readonly action: LifecycleAction;
  readonly state: LifecycleState["_tag"];
}

/** A modifier and where it is in its lifecycle, with its state once initialized. */
export type ModifierRun<S, C = unknown> =
  | { readonly _tag: "Created"; readonly modifier: Modifier<S, C> }
  | { readonly _tag: "Initialized"; readonly modifier: Modifier<S, C>; readonly state: S }
  | { readonly _tag: "Started"; readonly modifier: Modifier<S, C>; readonly state: S; readonly events: number }
  | { readonly _tag: "Ended"; readonly modifier: Modifier<S, C>; readonly state: S; readonly events: number }
  | { readonly _tag: "Finalized"; readonly modifier: Modifier<S, C>; readonly state: S; readonly events: number };

type Run<T extends ModifierRun<unknown>["_tag"], S, C> = Extract<ModifierRun<S, C>, { _tag: T }>;

// ----- transitions of the bare state -----

export const created: LifecycleState = { _tag: "Created" };

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

// ----- typed steps -----

const optional = <S>(m: Modifier<S, unknown>, step: "onStart" | "onCalibrationEpochEnd" | "onEnd" | "onFinalize", s: S): E.Either<ModifierError, S> =>
  m[step] === undefined ? E.right(s) : m[step](s);

export const createRun = <S, C>(modifier: Modifier<S, C>): Run<"Created", S, C> => ({ _tag: "Created", modifier });

export const initializeRun = <S, C>(r: Run<"Created", S, C>, model: ModelInfo): E.Either<ModifierError, Run<"Initialized", S, C>> =>
  E.map((state: S) => ({ _tag: "Initialized" as const, modifier: r.modifier, state }))(r.modifier.initialize(model));

export const startRun = <S, C>(r: Run<"Initialized", S, C>): E.Either<ModifierError, Run<"Started", S, C>> =>
  E.map((state: S) => ({ _tag: "Started" as const, modifier: r.modifier, state, events: 0 }))(optional(r.modifier as Modifier<S, unknown>, "onStart", r.state));

const event =
  <S, C>(r: Run<"Started", S, C>) =>
  (state: S): Run<"Started", S, C> => ({ ...r, state, events: r.events + 1 });

export const calibrationEpochStart = <S, C>(r: Run<"Started", S, C>, plan: ModelPlan): E.Either<ModifierError, Run<"Started", S, C>> =>
  E.map(event(r))(r.modifier.onCalibrationEpochStart === undefined ? E.right(r.state) : r.modifier.onCalibrationEpochStart(r.state, plan));

export const sequentialEpochEnd = async <S, C>(
  r: Run<"Started", S, C>,
  layer: LayerState,
  calibrated: C | null,
  context: EpochContext = {},
): Promise<E.Either<ModifierError, { readonly run: Run<"Started", S, C>; readonly result: EpochEnd<S> }>> =>
  E.map((result: EpochEnd<S>) => ({ run: event(r)(result.state), result }))(await r.modifier.onSequentialEpochEnd(r.state, layer, calibrated, context));

export const calibrationEpochEnd = <S, C>(r: Run<"Started", S, C>): E.Either<ModifierError, Run<"Started", S, C>> =>
  E.map(event(r))(optional(r.modifier as Modifier<S, unknown>, "onCalibrationEpochEnd", r.state));

export const endRun = <S, C>(r: Run<"Started", S, C>): E.Either<ModifierError, Run<"Ended", S, C>> =>
  E.map((state: S) => ({ _tag: "Ended" as const, modifier: r.modifier, state, events: r.events }))(optional(r.modifier as Modifier<S, unknown>, "onEnd", r.state));

export const finalizeRun = <S, C>(r: Run<"Ended", S, C>): E.Either<ModifierError, Run<"Finalized", S, C>> =>
  E.map((state: S) => ({ _tag: "Finalized" as const, modifier: r.modifier, state, events: r.events }))(optional(r.modifier as Modifier<S, unknown>, "onFinalize", r.state));

/** A run must be in state `tag` for `action`: the run-time guard for code that holds a ModifierRun of any variant. */
export const expectRun = <T extends ModifierRun<unknown>["_tag"], S, C>(
  r: ModifierRun<S, C>,
  tag: T,
  action: LifecycleAction,
): E.Either<LifecycleError, Run<T, S, C>> =>
  r._tag === tag ? E.right(r as Run<T, S, C>) : E.left({ _tag: "LifecycleError", modifier: r.modifier.type, action, state: r._tag });

/** initialize then start, as LC's `Modifier.initialize` does in oneshot (the fake batch_start at step 0). */
export const initializeAndStart = <S, C>(m: Modifier<S, C>, model: ModelInfo): E.Either<ModifierError, Run<"Started", S, C>> =>
  pipe(initializeRun(createRun(m), model), E.chain(startRun));

/**
 * Whether a modifier is active at a given epoch, honouring the base fields `start`/`end` as llm-compressor's
 * `should_start` does for training: null start never starts on its own, end null or −1 never ends.
 */
export const activeAt = (fields: { readonly start?: number | null | undefined; readonly end?: number | null | undefined }, epoch: number): boolean => {
  const start = fields.start ?? -1;
  const end = fields.end ?? -1;
  return (start < 0 || epoch >= start) && (end < 0 || epoch < end);
};
