import { readFileSync } from "node:fs";
import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor, toFloat64 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { createObserver } from "./registry.js";
import type { MinMaxStatistics } from "./statistics.js";

// q/k/v weight observers fused by LC 0.14's FusionHandler (shared NVFP4 global scale): tools/gen_observer_fixtures.py
interface FusedCase {
  readonly name: string;
  readonly observer: string;
  readonly args: Record<string, unknown>;
  readonly weight_shape: number[];
  readonly weights: number[][];
  readonly qparams: ReadonlyArray<{ scale: number[]; zero_point: number[]; global_scale: number[] }>;
}
const fixture: { fused: FusedCase[] } = JSON.parse(readFileSync(new URL("../fixtures/observers.json", import.meta.url), "utf8"));

describe("fused weight observers share LC's global scale (fixtures/observers.json)", () => {
  it.each(fixture.fused.map((c) => [c.name, c] as const))("%s", (_n, c) => {
    const args = decodeQuantizationArgs(c.args);
    if (E.isLeft(args)) throw new Error(JSON.stringify(args.left));
    const parts = c.weights.map((w, i) => {
      const o = createObserver(args.right, { tensor: `layers.0.self_attn.${"qkv"[i]}_proj.weight`, kind: "weight" }, c.observer);
      if (E.isLeft(o)) throw new Error(JSON.stringify(o.left));
      return { o: o.right, s: o.right.step(o.right.init, new Tensor("f32", c.weight_shape, Float32Array.from(w))) };
    });
    const stats: MinMaxStatistics[] = parts.map(({ o, s }) => {
      const r = o.statistics(s);
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      return r.right;
    });
    parts.forEach(({ o, s }, i) => {
      const q = o.finalize(
        s,
        stats.filter((_, j) => j !== i),
      );
      if (E.isLeft(q)) throw new Error(JSON.stringify(q.left));
      const want = c.qparams[i]!;
      expect(Array.from(q.right.globalScale!.data), `global scale ${i}`).toEqual(want.global_scale);
      expect(Array.from(toFloat64(q.right.scale).data), `scale ${i}`).toEqual(want.scale);
      expect(Array.from(toFloat64(q.right.zeroPoint).data), `zero point ${i}`).toEqual(want.zero_point);
    });
  });
});
