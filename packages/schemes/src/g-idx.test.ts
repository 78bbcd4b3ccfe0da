import { Tensor, toFloat64 } from "@llmq/tensor";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { calculateQParams } from "./calculate-qparams.js";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { dequantize, fakeQuantize, quantize } from "./quantize.js";

// Legacy g_idx (act-order GROUP): gather columns by argsort(g_idx), quantize per group, scatter back.

const args = (() => {
  const a = decodeQuantizationArgs({ num_bits: 4, group_size: 4, symmetric: false });
  if (E.isLeft(a)) throw new Error("args");
  return a.right;
})();

const right = <T>(r: E.Either<unknown, T>): T => {
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

describe("g_idx", () => {
  it("equals quantizing the column-permuted matrix and permuting back", () => {
    fc.assert(
      fc.property(
        fc.array(fc.float({ min: -4, max: 4, noNaN: true }), { minLength: 24, maxLength: 24 }),
        fc.shuffledSubarray([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2], { minLength: 12, maxLength: 12 }),
        (vals, g) => {
          const rows = 2;
          const cols = 12;
          const x = new Tensor("f32", [rows, cols], Float32Array.from(vals));
          const gIdx = Int32Array.from(g);
          const perm = Array.from({ length: cols }, (_, c) => c).sort((a, b) => gIdx[a]! - gIdx[b]! || a - b);
          const xp = new Float32Array(rows * cols);
          for (let r = 0; r < rows; r++) for (let p = 0; p < cols; p++) xp[r * cols + p] = x.data[r * cols + perm[p]!]!;
          // per-group statistics of the permuted matrix
          const lo = new Float32Array(rows * 3).fill(Infinity);
          const hi = new Float32Array(rows * 3).fill(-Infinity);
          for (let i = 0; i < xp.length; i++) {
            const k = Math.floor(i / cols) * 3 + Math.floor((i % cols) / 4);
            lo[k] = Math.min(lo[k]!, xp[i]!);
            hi[k] = Math.max(hi[k]!, xp[i]!);
          }
          const qp = right(calculateQParams(new Tensor("f32", [rows, 3], lo), new Tensor("f32", [rows, 3], hi), args));
          const direct = toFloat64(right(fakeQuantize(x, qp.scale, qp.zeroPoint, args, { gIdx }))).data;
          const viaPerm = toFloat64(right(fakeQuantize(new Tensor("f32", [rows, cols], xp), qp.scale, qp.zeroPoint, args))).data;
          for (let r = 0; r < rows; r++) for (let p = 0; p < cols; p++) if (!Object.is(direct[r * cols + perm[p]!], viaPerm[r * cols + p])) return false;
          const q = right(quantize(x, qp.scale, qp.zeroPoint, args, { gIdx, dtype: "i8" }));
          const dq = toFloat64(right(dequantize(q, qp.scale, qp.zeroPoint, args, { gIdx }))).data;
          return dq.every((v, i) => v === direct[i]);
        },
      ),
      { numRuns: 100 },
    );
  });
  it("is ignored when uninitialized (all -1) and rejects a wrong length", () => {
    const x = new Tensor("f32", [1, 8], Float32Array.from([1, 2, 3, 4, 5, 6, 7, 8]));
    const scale = new Tensor("f32", [1, 2], Float32Array.from([0.5, 1]));
    const zp = new Tensor("i8", [1, 2], Int8Array.from([0, 0]));
    const a = right(fakeQuantize(x, scale, zp, args));
    const b = right(fakeQuantize(x, scale, zp, args, { gIdx: new Int32Array(8).fill(-1) }));
    expect(Array.from(b.data as Float32Array)).toEqual(Array.from(a.data as Float32Array));
    expect(E.isLeft(fakeQuantize(x, scale, zp, args, { gIdx: new Int32Array(4) }))).toBe(true);
  });
});
