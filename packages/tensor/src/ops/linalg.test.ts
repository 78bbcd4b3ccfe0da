import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Tensor, f32, f64 } from "../tensor.js";
import { accumulateXtX, accumulateXtXInPlace, cholesky, choleskyInverse, matmul, triangularSolve } from "./linalg.js";
import { permute, transpose } from "./shape.js";
import { backends, err, expectClose, loadFixture, ok, tensorOf } from "./test-util.js";

const fx = loadFixture("ops.json");
const M = fx.matmul;
const C = fx.cholesky;
const arr = (t: Tensor) => Array.from(t.data as Float32Array | Float64Array);

// Run on every available backend: js always, native when build/Release/llmq_tensor.node loads.
describe.each(backends())("linear algebra on the %s backend", (_name, k) => {
  it("matmul 2-D, transposed operands and batched broadcasting vs torch (f32: 1e-6, f64: 1e-14)", () => {
    const a = tensorOf(M.a);
    const b = tensorOf(M.b);
    expectClose(arr(ok(matmul(a, b, {}, k))), M.ab.data, 1e-6, 1e-6);
    expectClose(arr(ok(matmul(tensorOf(M.atb_a), b, { transposeA: true }, k))), M.ab.data, 1e-6, 1e-6);
    expectClose(arr(ok(matmul(a, tensorOf(M.abt_b), { transposeB: true }, k))), M.ab.data, 1e-6, 1e-6);
    const y = ok(matmul(tensorOf(M.ba), tensorOf(M.bb), {}, k));
    expect(y.shape).toEqual([2, 3, 3, 5]);
    expectClose(arr(y), M.ba_bb.data, 1e-6, 1e-6);
    expectClose(arr(ok(matmul(tensorOf(M.a64), tensorOf(M.b64), { transposeB: true }, k))), M.a64_b64t.data, 1e-14, 1e-14);
  });
  it("matmul of an N-D a by a 2-D b folds the batch (same result as the per-batch loop)", () => {
    const a = tensorOf(M.ba); // [2, 1, 3, 4]
    const b2 = new Tensor("f32", [4, 5], Float32Array.from((M.bb.data as number[]).slice(0, 20)));
    const folded = ok(matmul(a, b2, {}, k));
    const looped = ok(matmul(a, new Tensor("f32", [1, 4, 5], b2.data), {}, k));
    expect(folded.shape).toEqual([2, 1, 3, 5]);
    expect(arr(folded)).toEqual(arr(looped));
  });
  it("batched transposeA/transposeB equal the product of explicitly permuted operands", () => {
    const a = f64(Array.from({ length: 24 }, (_, i) => (i % 5) - 2), [2, 4, 3]); // [2, k=4, m=3]
    const b = f64(Array.from({ length: 40 }, (_, i) => (i % 7) - 3), [2, 1, 5, 4]); // [2, 1, n=5, k=4]
    const got = ok(matmul(a, b, { transposeA: true, transposeB: true }, k));
    const want = ok(matmul(ok(permute(a, [0, 2, 1])), ok(permute(b, [0, 1, 3, 2])), {}, k));
    expect(got.shape).toEqual([2, 2, 3, 5]);
    expect(arr(got)).toEqual(arr(want));
  });
  it("(AB)ᵀ = BᵀAᵀ on small integer matrices, exactly (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }), fc.nat(), (m, n, kk, seed) => {
        const v = (len: number, s: number) => Array.from({ length: len }, (_, i) => ((i * 7 + s) % 11) - 5);
        const a = f32(v(m * kk, seed), [m, kk]);
        const b = f32(v(kk * n, seed + 3), [kk, n]);
        const ab = ok(matmul(a, b, {}, k));
        const btat = ok(matmul(b, a, { transposeA: true, transposeB: true }, k));
        expect(arr(ok(transpose(ab)))).toEqual(arr(btat));
      }),
    );
  });
  it("accumulateXtX = H + α XᵀX and the in-place variant mutates h", () => {
    const x = f64([1, 2, 3, 4, 5, 6], [2, 1, 3]); // rows = 2
    const h = f64([1, 0, 0, 0, 1, 0, 0, 0, 1], [3, 3]);
    const want = [1 + 0.5 * 17, 0.5 * 22, 0.5 * 27, 0.5 * 22, 1 + 0.5 * 29, 0.5 * 36, 0.5 * 27, 0.5 * 36, 1 + 0.5 * 45];
    expect(arr(ok(accumulateXtX(h, x, 0.5, k)))).toEqual(want);
    expect(arr(h)).toEqual([1, 0, 0, 0, 1, 0, 0, 0, 1]);
    ok(accumulateXtXInPlace(h, x, 0.5, k));
    expect(arr(h)).toEqual(want);
    const xt = ok(transpose(tensorOf(M.a)));
    expectClose(arr(ok(accumulateXtX(new Tensor("f32", [5, 5], new Float32Array(25)), xt, 1, k))), arr(ok(matmul(tensorOf(M.a), xt, {}, k))), 1e-6, 1e-6);
  });
  it("cholesky / choleskyInverse vs torch (f64: 1e-12, f32: 1e-4 relative to the entries)", () => {
    expectClose(arr(ok(cholesky(tensorOf(C.a), k))), C.l.data, 1e-12, 1e-12);
    expectClose(arr(ok(choleskyInverse(tensorOf(C.l), k))), C.inv.data, 1e-11, 1e-11);
    expectClose(arr(ok(cholesky(tensorOf(C.a32), k))), C.l32.data, 1e-5, 1e-5);
    expectClose(arr(ok(choleskyInverse(tensorOf(C.l32), k))), C.inv32.data, 1e-4, 1e-4);
  });
  it("triangularSolve vs torch.linalg.solve_triangular (left/right, upper via transpose)", () => {
    const l = tensorOf(C.l);
    const b = tensorOf(C.b);
    expectClose(arr(ok(triangularSolve(l, b, { upper: false }, k))), C.solve_lower.data, 1e-12, 1e-12);
    // Lᵀ X = B using L's lower triangle with transpose, and using an explicit upper Lᵀ
    expectClose(arr(ok(triangularSolve(l, b, { upper: false, transpose: true }, k))), C.solve_lower_t.data, 1e-12, 1e-12);
    const lt = ok(transpose(l));
    expectClose(arr(ok(triangularSolve(lt, b, { upper: true }, k))), C.solve_lower_t.data, 1e-12, 1e-12);
    expectClose(arr(ok(triangularSolve(lt, ok(transpose(b)), { upper: true, left: false }, k))), C.solve_right_upper.data, 1e-12, 1e-12);
  });
  it("non-SPD matrices give NotPositiveDefinite naming the pivot", () => {
    const e = err(cholesky(f64([4, 2, 0, 2, 1, 0, 0, 0, 1], [3, 3]), k), "NotPositiveDefinite", "cholesky", "size 3", "pivot 1");
    expect(e._tag === "NotPositiveDefinite" && e.pivot).toBe(1);
    err(cholesky(f32([-1], [1, 1]), k), "NotPositiveDefinite", "cholesky", "pivot 0");
    err(cholesky(f64([Number.NaN], [1, 1]), k), "NotPositiveDefinite", "cholesky", "pivot 0");
  });
});

describe("linear algebra errors", () => {
  const a = f32([1, 2, 3, 4, 5, 6], [2, 3]);
  it("matmul", () => {
    err(matmul(a, a), "ShapeMismatch", "matmul", "[2, 3]", "inner dimensions differ: 3 vs 2");
    err(matmul(a, f64([1, 2, 3], [3, 1])), "DTypeMismatch", "matmul", "argument b", "f32", "f64");
    err(matmul(f32([1, 2, 3]), a), "InvalidArgument", "matmul", "rank ≥ 2", "[3]");
    err(matmul(f32(new Array(12).fill(0), [2, 2, 3]), f32(new Array(18).fill(0), [3, 3, 2])), "ShapeMismatch", "matmul", "[2, 2, 3]", "[3, 3, 2]", "batch");
    err(matmul(new Tensor("bf16", [2, 2], new Uint16Array(4)), a), "UnsupportedDType", "matmul", "bf16");
    expect(ok(matmul(a, a, { transposeB: true })).shape).toEqual([2, 2]);
  });
  it("accumulateXtX", () => {
    err(accumulateXtX(f32([1, 2], [1, 2]), a), "ShapeMismatch", "accumulateXtX", "[1, 2]", "square");
    err(accumulateXtX(f32(new Array(4).fill(0), [2, 2]), a), "ShapeMismatch", "accumulateXtX", "[2, 2]", "[2, 3]");
    err(accumulateXtXInPlace(f64(new Array(9).fill(0), [3, 3]), a), "DTypeMismatch", "accumulateXtXInPlace", "argument x", "f64", "f32");
  });
  it("cholesky / inverse / solve", () => {
    err(cholesky(a), "ShapeMismatch", "cholesky", "[2, 3]", "square");
    err(cholesky(new Tensor("i32", [1, 1], new Int32Array(1))), "UnsupportedDType", "cholesky", "i32");
    err(choleskyInverse(f64([1, 0, 0, 0], [2, 2])), "InvalidArgument", "choleskyInverse", "diagonal entry 1");
    err(triangularSolve(f64([1, 0, 0, 1], [2, 2]), f64([1, 2, 3], [3, 1]), { upper: false }), "ShapeMismatch", "triangularSolve", "[2, 2]", "[3, 1]", "rows");
    err(triangularSolve(f64([1, 0, 0, 1], [2, 2]), f64([1, 2], [2]), { upper: false }), "InvalidArgument", "triangularSolve", "[2]");
    err(triangularSolve(f64([1, 0, 0, 1], [2, 2]), f32([1, 2], [2, 1]), { upper: false }), "DTypeMismatch", "triangularSolve", "f32");
    expect(ok(permute(a, [1, 0])).shape).toEqual([3, 2]);
  });
});
