import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { pipe } from "fp-ts/lib/function.js";
import { type LayerState, type ModelInfo, type Modifier, modifierError } from "./modifier.js";
import {
  type LifecycleAction,
  type ModifierRun,
  activeAt,
  calibrationEpochEnd,
  calibrationEpochStart,
  createRun,
  created,
  endRun,
  expectRun,
  finalizeRun,
  formatLifecycleError,
  initializeAndStart,
  initializeRun,
  sequentialEpochEnd,
  startRun,
  transition,
} from "./modifier-lifecycle.js";

describe("modifier lifecycle", () => {
  const t = transition("GPTQModifier");
  const runAll = (actions: ReadonlyArray<LifecycleAction>) =>
    actions.reduce((s, a) => E.chain((st: Parameters<typeof t>[0]) => t(st, a))(s), E.right(created) as ReturnType<typeof t>);

  it("accepts initialize → start → events → end → finalize", () => {
    const r = runAll(["initialize", "start", "event", "event", "end", "finalize"]);
    expect(r).toEqual(E.right({ _tag: "Finalized", events: 2 }));
  });

  it("rejects start before initialize and finalize twice with a typed error", () => {
    const r1 = runAll(["start"]);
    expect(E.isLeft(r1) && r1.left).toEqual({ _tag: "LifecycleError", modifier: "GPTQModifier", action: "start", state: "Created" });
    const r2 = runAll(["initialize", "start", "end", "finalize", "finalize"]);
    expect(E.isLeft(r2)).toBe(true);
    if (E.isLeft(r2)) expect(formatLifecycleError(r2.left)).toContain("cannot finalize while finalized");
  });

  it("events after end are errors", () => {
    expect(E.isLeft(runAll(["initialize", "start", "end", "event"]))).toBe(true);
  });

  it("honours start/end like llm-compressor (−1 = always / never)", () => {
    expect(activeAt({}, 0)).toBe(true);
    expect(activeAt({ start: 2 }, 1)).toBe(false);
    expect(activeAt({ start: 0, end: 1 }, 0)).toBe(true);
    expect(activeAt({ start: 0, end: 1 }, 1)).toBe(false);
  });
});

describe("ModifierRun: the lifecycle with the modifier's state", () => {
  const model: ModelInfo = {
    linears: [],
    numLayers: 1,
    architecture: { layerPrefix: (i) => `model.layers.${i}.`, sharedInputs: [], fusedGroups: [], layerNorms: [], normMappings: [], linearMappings: [] },
    hasTensor: () => false,
    submodules: { inputOf: () => null, forward: () => E.left("none") },
  };
  const layer: LayerState = { index: 0, prefix: "model.layers.0.", tensors: new Map(), quantized: new Map(), modules: new Map() };
  const counting: Modifier<number, null> = {
    type: "Counting",
    requiresCalibrationData: false,
    initialize: () => E.right(10),
    onStart: (s) => E.right(s + 1),
    onSequentialEpochEnd: (s, l) => E.right({ state: s + 100, layer: l, warnings: [] }),
    onFinalize: (s) => (s > 1000 ? E.left(modifierError("Counting", null, "too many")) : E.right(s)),
  };

  it("threads the state through initialize → start → events → end → finalize and counts events", async () => {
    const started = pipe(
      initializeAndStart(counting, model),
      E.chain((r) => calibrationEpochStart(r, { schemes: new Map() })),
    );
    if (E.isLeft(started)) throw new Error("start");
    const ended = await sequentialEpochEnd(started.right, layer, null);
    const r = pipe(
      ended,
      E.chain(({ run }) => calibrationEpochEnd(run)),
      E.chain(endRun),
      E.chain(finalizeRun),
    );
    expect(E.isRight(r) && { tag: r.right._tag, state: r.right.state, events: r.right.events }).toEqual({ tag: "Finalized", state: 111, events: 3 });
  });

  it("an out-of-order step on a run of unknown variant is a LifecycleError; on a known variant it does not compile", () => {
    const created = createRun(counting);
    expect(expectRun(created as ModifierRun<number, null>, "Started", "event")).toEqual(
      E.left({ _tag: "LifecycleError", modifier: "Counting", action: "event", state: "Created" }),
    );
    // @ts-expect-error start before initialize: startRun takes an Initialized run only
    expect(() => startRun(created)).not.toThrow();
    const started = initializeAndStart(counting, model);
    if (E.isLeft(started)) throw new Error("unreachable");
    // @ts-expect-error finalize before end: finalizeRun takes an Ended run only
    void (() => finalizeRun(started.right));
    // @ts-expect-error initialize twice: initializeRun takes a Created run only
    void (() => initializeRun(started.right, model));
  });

  it("an epoch end may be asynchronous (a long search that yields to signals)", async () => {
    const slow: Modifier<number, null> = { ...counting, onSequentialEpochEnd: async (s, l) => E.right({ state: s + 1, layer: l, warnings: [] }) };
    const started = initializeAndStart(slow, model);
    if (E.isLeft(started)) throw new Error("start");
    const r = await sequentialEpochEnd(started.right, layer, null);
    expect(E.isRight(r) && r.right.run.state).toBe(12);
  });

  it("a modifier's own failure stops the lifecycle as a typed value", () => {
    const greedy: Modifier<number, null> = { ...counting, initialize: () => E.right(5000) };
    const r = pipe(initializeAndStart(greedy, model), E.chain(endRun), E.chain(finalizeRun));
    expect(r).toEqual(E.left(modifierError("Counting", null, "too many")));
  });
});
