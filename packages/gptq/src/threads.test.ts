import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { observeWeightWith } from "@llmq/observers";
import { accumulateHessian, emptyHessian, normalizeHessian } from "./hessian.js";
import { quantizeWeight } from "./quantize-weight.js";

// The int column loop splits rows over worker threads; every thread performs the same f32 operations, so the
// results must be bit-identical for any thread count (and identical to the fixture-checked single-thread path).

describe("thread count does not change results", () => {
  it.each([
    ["int4 g32 asym static", { num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: 32, actorder: "static" }],
    ["int8 channel sym", { num_bits: 8, type: "int", symmetric: true, strategy: "channel" }],
  ])("%s, 203 rows (a ragged last chunk)", (_, wire) => {
    const rows = 203;
    const n = 96;
    let s = 7;
    const rnd = (): number => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648 - 0.5;
    };
    const x = new Tensor("f32", [4, 64, n], Float32Array.from({ length: 4 * 64 * n }, () => rnd()));
    const acc = accumulateHessian(emptyHessian(n), x);
    if (E.isLeft(acc)) throw new Error("acc");
    const H = normalizeHessian(acc.right);
    if (E.isLeft(H)) throw new Error("H");
    const W = new Tensor("f32", [rows, n], Float32Array.from({ length: rows * n }, () => rnd() * 0.05));
    const args = decodeQuantizationArgs(wire);
    if (E.isLeft(args)) throw new Error("args");
    const run = (threads: number) => {
      const r = quantizeWeight(W, H.right, args.right, { observe: observeWeightWith("m", args.right), threads, blockSize: 32 });
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      return r.right;
    };
    const one = run(1);
    expect(one.timings.threads).toBe(1);
    for (const t of [2, 3]) {
      const many = run(t);
      expect(many.timings.threads).toBe(t);
      expect(Buffer.from(many.fakeQuantized.bytes()).equals(Buffer.from(one.fakeQuantized.bytes()))).toBe(true);
      expect(Buffer.from(many.quantized.bytes()).equals(Buffer.from(one.quantized.bytes()))).toBe(true);
      expect(many.loss).toBe(one.loss);
    }
  });
});
