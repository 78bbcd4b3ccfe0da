import { decodeQuantizationArgs } from "@llmq/schemes";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { loadFixtures } from "./fixtures.js";
import { observeWeightWith } from "@llmq/observers";
import { quantizeWeight } from "./quantize-weight.js";

// actorder "group" was removed in compressed-tensors 0.20 (its QuantizationArgs rejects it), so LC 0.14 cannot
// produce a fixture for it. llmq keeps it as an extension with the LC ≤ 0.13 semantics: observe the PERMUTED weight,
// groups contiguous in permuted order, g_idx[c] = (position of column c in the permutation) / group_size.
// These tests check its invariants against the real observer and the static path.

const fx = loadFixtures();
const W = fx.f32("p0.W");
const H = fx.f32("p0.H");
const decoded = decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: 32 });
if (E.isLeft(decoded)) throw new Error("args");
const args = decoded.right;

describe('actorder "group" (extension)', () => {
  const r = quantizeWeight(W, H, args, { actorder: "group", observe: observeWeightWith("m", args), module: "m" });
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  const res = r.right;
  const rows = 32;
  const cols = 256;

  it("g_idx puts the 32 highest-diag(H) columns in group 0, each group holding 32 columns", () => {
    const g = res.gIdx!.data;
    const byDiag = Array.from({ length: cols }, (_, i) => i).sort((a, b) => H.data[b * cols + b]! - H.data[a * cols + a]!);
    for (let k = 0; k < cols; k++) expect(g[byDiag[k]!]).toBe(Math.floor(k / 32));
  });

  it("the fake-quantized weight is (code − zp) · scale[:, g_idx] in f32, column by column", () => {
    const g = res.gIdx!.data;
    const s = res.scale.data as Float32Array;
    const z = res.zeroPoint!.data as Int8Array;
    const q = res.quantized.data as Int8Array;
    for (let r0 = 0; r0 < rows; r0++)
      for (let c = 0; c < cols; c++) {
        const si = r0 * 8 + g[c]!;
        // === so that the −0 torch also produces (round(−0.3) = −0) equals 0.
        expect(res.fakeQuantized.data[r0 * cols + c] === Math.fround(Math.fround(q[r0 * cols + c]! - z[si]!) * s[si]!)).toBe(true);
      }
  });

  it("the scales are the observer's on the permuted weight", () => {
    const perm = Array.from({ length: cols }, (_, i) => i).sort((a, b) => H.data[b * cols + b]! - H.data[a * cols + a]! || a - b);
    const wp = new Float32Array(rows * cols);
    for (let r0 = 0; r0 < rows; r0++) for (let j = 0; j < cols; j++) wp[r0 * cols + j] = W.data[r0 * cols + perm[j]!]!;
    const q = observeWeightWith("m", args)(new Tensor("f32", [rows, cols], wp));
    if (E.isLeft(q)) throw new Error(q.left);
    expect(Array.from(res.scale.data as Float32Array)).toEqual(Array.from(q.right.scale.data as Float32Array));
  });

  it("its loss is in the same range as static act-order on the same problem", () => {
    const st = quantizeWeight(W, H, args, { actorder: "static", observe: observeWeightWith("m", args) });
    if (E.isLeft(st)) throw new Error("static");
    expect(res.loss).toBeLessThan(st.right.loss * 1.5);
    expect(res.loss).toBeGreaterThan(st.right.loss / 1.5);
  });

  it("needs an observer and a group strategy", () => {
    const chan = decodeQuantizationArgs({ num_bits: 4, type: "int", strategy: "channel" });
    if (E.isLeft(chan)) throw new Error("args");
    const noObs = quantizeWeight(W, H, args, { actorder: "group", qparams: { scale: res.scale, zeroPoint: res.zeroPoint } });
    expect(E.isLeft(noObs) && noObs.left._tag).toBe("InvalidOption");
    const onChannel = quantizeWeight(W, H, chan.right, { actorder: "group", observe: observeWeightWith("m", chan.right) });
    expect(E.isLeft(onChannel) && onChannel.left._tag).toBe("UnsupportedArgs");
  });
});
