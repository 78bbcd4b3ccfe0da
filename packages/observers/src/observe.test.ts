import type { QuantizationArgs } from "@llmq/schemes";
import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { map } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { describe, expect, it } from "vitest";
import { formatObserverError } from "./errors.js";
import { observe, observeStates } from "./observe.js";
import { createObserver } from "./registry.js";

const args = (u: Record<string, unknown>): QuantizationArgs => {
  const r = decodeQuantizationArgs(u);
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};
const INT8_TENSOR = args({ num_bits: 8, type: "int", symmetric: true, strategy: "tensor", dynamic: false });
const f32 = (v: ReadonlyArray<number>, shape: ReadonlyArray<number>) => new Tensor("f32", shape, Float32Array.from(v));
const opts = { tensor: "layers.0.q_proj.input", kind: "input" as const };

const scheduler = () => new TestScheduler((actual, expected) => expect(actual).toEqual(expected));

// scale values: static min-max of |x| ≤ 2.55 → 2.55 / 127.5 in f32
const a = f32([1, -2.55, 0.5, 2], [2, 2]);
const b = f32([0.25, 1.5, -1, 0.75], [2, 2]);
const bad = f32([0.25, Number.NaN, -1, 0.75], [2, 2]);

const expectedScale = (amax: number) => Array.from(Float32Array.of(Math.fround(Math.fround(amax) / 127.5)));

describe("observe (marble)", () => {
  it("emits exactly one qparams value, at completion, and subscribes once", () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold("-a--b---|", { a, b });
      const out = src.pipe(observe("static_minmax", INT8_TENSOR, opts), map((q) => (E.isRight(q) ? "q" : "e")));
      expectObservable(out).toBe("--------(q|)");
      expectSubscriptions(src.subscriptions).toBe("^-------!");
    });
  });

  it("the emitted qparams equal finalize(fold(step)) and the static min-max of all batches", () => {
    scheduler().run(({ cold, expectObservable }) => {
      const obs = createObserver(INT8_TENSOR, opts, "static_minmax");
      if (E.isLeft(obs)) throw new Error("observer");
      const o = obs.right;
      const expected = o.finalize(o.step(o.step(o.init, a), b));
      expect(E.isRight(expected) && Array.from(toFloat64(expected.right.scale).data)).toEqual(expectedScale(2.55));
      expectObservable(cold("-a-b-|", { a, b }).pipe(observe(o))).toBe("-----(x|)", { x: expected });
    });
  });

  it("an empty stream completes with a NoObservations Left", () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold<Tensor<"f32">>("---|").pipe(observe("minmax", INT8_TENSOR, opts))).toBe("---(x|)", {
        x: E.left({ _tag: "NoObservations", observer: "minmax", tensor: opts.tensor }),
      });
    });
  });

  it("a NaN batch becomes a Left naming the tensor; later batches are ignored; the stream still completes", () => {
    scheduler().run(({ cold, expectObservable }) => {
      expectObservable(cold("-a-n-b-|", { a, n: bad, b }).pipe(observe("static_minmax", INT8_TENSOR, opts))).toBe("-------(x|)", {
        x: E.left({ _tag: "NonFiniteTensor", tensor: opts.tensor, index: 1, value: Number.NaN }),
      });
    });
  });

  it("an unknown observer name is a Left listing the valid names, emitted at completion", () => {
    scheduler().run(({ cold, expectObservable }) => {
      const out = cold("-a-|", { a }).pipe(observe("minmaxx", INT8_TENSOR, opts));
      expectObservable(out).toBe("---(x|)", {
        x: E.left({
          _tag: "UnknownObserver",
          name: "minmaxx",
          valid: ["memoryless_minmax", "static_minmax", "minmax", "memoryless_mse", "mse", "nvfp4_expanded_mse", "imatrix_mse", "nvfp4_expanded_imatrix", "histogram", "minmax_or_histogram", "fouroversix"],
        }),
      });
    });
  });

  it("source errors (infrastructure) pass through untouched and tear down", () => {
    scheduler().run(({ cold, expectObservable, expectSubscriptions }) => {
      const src = cold("-a-#", { a }, new Error("disk"));
      expectObservable(src.pipe(observe("minmax", INT8_TENSOR, opts))).toBe("---#", undefined, new Error("disk"));
      expectSubscriptions(src.subscriptions).toBe("^--!");
    });
  });

  it("unsubscribing before completion unsubscribes the source and emits nothing", () => {
    scheduler().run(({ hot, expectObservable, expectSubscriptions }) => {
      const src = hot("--a--b--c--|", { a, b, c: a });
      expectObservable(src.pipe(observe("minmax", INT8_TENSOR, opts)), "^----!").toBe("------");
      expectSubscriptions(src.subscriptions).toBe("^----!");
    });
  });

  it("observeStates emits the running state after every batch (EMA trace)", () => {
    scheduler().run(({ cold, expectObservable }) => {
      const obs = createObserver(INT8_TENSOR, opts, "minmax");
      if (E.isLeft(obs)) throw new Error("observer");
      const o = obs.right;
      const s1 = o.step(o.init, a);
      const s2 = o.step(s1, b);
      expectObservable(cold("-a-b-|", { a, b }).pipe(observeStates(o))).toBe("-x-y-|", { x: s1, y: s2 });
    });
  });
});

describe("observer errors", () => {
  it("NaN and Inf are typed errors naming the tensor and the element", () => {
    const o = createObserver(INT8_TENSOR, opts, "minmax");
    if (E.isLeft(o)) throw new Error("observer");
    const r = o.right.finalize(o.right.step(o.right.init, f32([1, 2, Number.POSITIVE_INFINITY, 0], [2, 2])));
    expect(r).toEqual(E.left({ _tag: "NonFiniteTensor", tensor: opts.tensor, index: 2, value: Number.POSITIVE_INFINITY }));
    if (E.isLeft(r)) expect(formatObserverError(r.left)).toContain("layers.0.q_proj.input");
  });

  it("MSE observers reject NaN before searching", () => {
    const o = createObserver(INT8_TENSOR, opts, "mse");
    if (E.isLeft(o)) throw new Error("observer");
    const r = o.right.finalize(o.right.step(o.right.init, bad));
    expect(E.isLeft(r) && r.left._tag).toBe("NonFiniteTensor");
  });

  it("registry lookup is case-insensitive and treats - as _ like LC's registry", () => {
    for (const n of ["MSE", "Memoryless-MinMax", "fouroversix"]) expect(E.isRight(createObserver(INT8_TENSOR, opts, n))).toBe(true);
  });

  it("strategies LC cannot flatten are errors (channel activations, token weights)", () => {
    const channel = args({ num_bits: 8, type: "int", symmetric: true, strategy: "channel", dynamic: false });
    const o = createObserver(channel, opts, "minmax");
    if (E.isLeft(o)) throw new Error("observer");
    const r = o.right.finalize(o.right.step(o.right.init, a));
    expect(E.isLeft(r) && r.left._tag).toBe("UnsupportedStrategy");
  });

  it("a group size that does not divide the columns is a shape error", () => {
    const g = args({ num_bits: 4, type: "int", symmetric: true, strategy: "group", group_size: 3 });
    const o = createObserver(g, { tensor: "w", kind: "weight" }, "memoryless_minmax");
    if (E.isLeft(o)) throw new Error("observer");
    const r = o.right.finalize(o.right.step(o.right.init, a));
    expect(E.isLeft(r) && r.left._tag).toBe("ObservedShape");
  });

  it("a mistyped observer kwarg is an error with its path", () => {
    const r = createObserver({ ...INT8_TENSOR, observer_kwargs: { averaging_constant: "fast" } }, opts, "minmax");
    expect(r).toEqual(E.left({ _tag: "InvalidObserverKwarg", observer: "minmax", key: "averaging_constant", expected: "a finite number", got: '"fast"' }));
  });

  it("weight observers keep their first statistics (LC ignores later calls)", () => {
    const o = createObserver(INT8_TENSOR, { tensor: "w", kind: "weight" }, "static_minmax");
    if (E.isLeft(o)) throw new Error("observer");
    const s1 = o.right.step(o.right.init, a);
    expect(o.right.step(s1, f32([100, 0, 0, 0], [2, 2]))).toBe(s1);
  });
});
