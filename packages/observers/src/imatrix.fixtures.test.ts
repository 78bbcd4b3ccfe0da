import { readFileSync } from "node:fs";
import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { type ImportanceState, importanceStep } from "./imatrix.js";
import { createObserver } from "./registry.js";

// LC 0.14 imatrix observers (importance from a forward-pre hook on a Linear): tools/gen_observer_fixtures.py
interface IMatrixCase {
  readonly name: string;
  readonly observer: string;
  readonly args: Record<string, unknown>;
  readonly weight_shape: number[];
  readonly weight: number[];
  readonly activations: number[][];
  readonly importance_sum: number[] | null;
  readonly importance_count: number;
  readonly state: { min_vals: number[]; max_vals: number[]; shape: number[] };
  readonly scale: number[];
  readonly zero_point: number[];
  readonly global_scale: number[] | null;
}
const fixture: { imatrix: IMatrixCase[] } = JSON.parse(readFileSync(new URL("../fixtures/observers.json", import.meta.url), "utf8"));

describe("imatrix observers match llm-compressor 0.14 (fixtures/observers.json)", () => {
  it.each(fixture.imatrix.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const inF = c.weight_shape[1]!;
    let imp: ImportanceState | undefined;
    for (const a of c.activations) {
      const r = importanceStep(imp, new Tensor("f32", [a.length / inF, inF], Float32Array.from(a)), c.name);
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      imp = r.right;
    }
    if (c.importance_sum !== null && c.importance_count > 0) {
      expect(imp?.count).toBe(c.importance_count);
      expect(Array.from(imp!.sum)).toEqual(c.importance_sum);
    }
    const args = decodeQuantizationArgs(c.args);
    if (E.isLeft(args)) throw new Error(JSON.stringify(args.left));
    const o = createObserver(args.right, { tensor: c.name, kind: "weight", ...(imp === undefined ? {} : { importance: imp }) }, c.observer);
    if (E.isLeft(o)) throw new Error(JSON.stringify(o.left));
    const st = o.right.step(o.right.init, new Tensor("f32", c.weight_shape, Float32Array.from(c.weight)));
    const s = o.right.statistics(st);
    if (E.isLeft(s)) throw new Error(JSON.stringify(s.left));
    expect([...s.right.shape]).toEqual(c.state.shape);
    expect(Array.from(s.right.min)).toEqual(c.state.min_vals);
    expect(Array.from(s.right.max)).toEqual(c.state.max_vals);
    const q = o.right.finalize(st);
    if (E.isLeft(q)) throw new Error(JSON.stringify(q.left));
    expect(Array.from(toFloat64(q.right.scale).data)).toEqual(c.scale);
    expect(Array.from(toFloat64(q.right.zeroPoint).data)).toEqual(c.zero_point);
    expect(q.right.globalScale === null ? null : Array.from(q.right.globalScale.data)).toEqual(c.global_scale);
  });

  it("strict mode turns the uniform fallback into an error", () => {
    const args = decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: true, strategy: "group", group_size: 16, observer_kwargs: { strict: true } });
    if (E.isLeft(args)) throw new Error("args");
    const o = createObserver(args.right, { tensor: "w", kind: "weight" }, "imatrix_mse");
    if (E.isLeft(o)) throw new Error("observer");
    const r = o.right.finalize(o.right.step(o.right.init, new Tensor("f32", [2, 16], new Float32Array(32).fill(0.5))));
    expect(E.isLeft(r) && r.left._tag).toBe("InvalidObserverKwarg");
  });

  it("NaN in the importance inputs is a typed error", () => {
    const r = importanceStep(undefined, new Tensor("f32", [1, 2], Float32Array.of(1, Number.NaN)), "layers.0.mlp.down_proj.input");
    expect(r).toEqual(E.left({ _tag: "NonFiniteTensor", tensor: "layers.0.mlp.down_proj.input", index: 1, value: Number.NaN }));
  });
});
