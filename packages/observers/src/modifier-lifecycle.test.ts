import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { activeAt, created, formatLifecycleError, type LifecycleAction, transition } from "./modifier-lifecycle.js";

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
