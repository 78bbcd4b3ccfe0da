import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Tensor, f32, f64 } from "../tensor.js";
import { hadamardMatrix, hadamardTransform, isHadamardSize, knownHadamardDivisor, randomHadamardMatrix } from "./hadamard.js";
import { matmul, } from "./linalg.js";
import { transpose } from "./shape.js";
import { backends, err, expectClose, loadFixture, ok } from "./test-util.js";

// fixtures/hadamard.json comes from compressed-tensors' own functions (tools/gen_hadamard_fixtures.py).
const fx = loadFixture("hadamard.json");
const bits = (t: Tensor) => Array.from(t.data as Float32Array, (v) => (v < 0 ? "1" : "0")).join("");
const signsOf = (s: string) => Array.from(s, (c) => (c === "1" ? -1 : 1));

describe("sizes", () => {
  it("knownHadamardDivisor picks the same stored size as CT's _fetch_hadamard_divisor", () => {
    for (const [n, k] of Object.entries(fx.divisor)) expect(knownHadamardDivisor(Number(n)) ?? null, n).toBe(k);
  });
  it("isHadamardSize", () => {
    expect([1, 2, 12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172, 188, 236, 244, 4096, 5120, 11008, 14336].every(isHadamardSize)).toBe(true);
    expect([0, 3, 6, 10, 260, 1000, 2.5, -4].some(isHadamardSize)).toBe(false);
  });
});

describe.each(backends())("Hadamard on the %s backend", (_name, k) => {
  it("hadamardMatrix(n) for powers of two = CT deterministic_hadamard_matrix (Sylvester)", () => {
    for (const [n, b] of Object.entries(fx.deterministic)) expect(bits(ok(hadamardMatrix(Number(n), {}, k))), n).toBe(b);
  });
  it("randomHadamardMatrix(signs) = CT random_hadamard_matrix with the same torch.randint signs", () => {
    for (const r of fx.random) {
      expect(bits(ok(randomHadamardMatrix(signsOf(r.signs), {}, k))), `n=${r.n}`).toBe(r.bits);
      expect(bits(ok(randomHadamardMatrix(signsOf(r.signs), { dtype: "f64" }, k))), `n=${r.n} f64`).toBe(r.bits);
    }
  });
  it("transforms of large sizes (H_K ⊗ H_2^k) equal x @ random_hadamard_matrix exactly (integer inputs)", () => {
    for (const t of fx.transforms) {
      const s = signsOf(t.signs);
      const xs = (t.x as number[]).map((v, i) => v * s[i]!);
      for (const make of [f32, f64]) {
        const y = ok(hadamardTransform(make(xs, [1, t.n]), { construction: "known" }, k));
        expect(Array.from(y.data), `n=${t.n} ${y.dtype}`).toEqual(t.y);
      }
    }
  });
  it("H·Hᵀ = n·I for known constructions and x ↦ H(H(x))/n = x for Sylvester (property)", () => {
    for (const n of [12, 20, 28, 36, 40, 52, 60, 108, 140, 156, 172, 188, 236, 244, 24, 96, 320]) {
      const h = ok(hadamardMatrix(n, { dtype: "f64" }, k));
      const hht = ok(matmul(h, h, { transposeB: true }, k));
      const want = new Float64Array(n * n);
      for (let i = 0; i < n; i++) want[i * n + i] = n;
      expect(Array.from(hht.data), `n=${n}`).toEqual(Array.from(want));
    }
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 9 }), fc.integer({ min: 1, max: 3 }), (p, rows) => {
        const n = 2 ** p;
        const x = f64(Array.from({ length: rows * n }, (_, i) => Math.sin(i + p)), [rows, n]);
        const hh = ok(hadamardTransform(ok(hadamardTransform(x, {}, k)), {}, k));
        expectClose(Array.from(hh.data, (v) => v / n), Array.from(x.data), 1e-13, 1e-13);
      }),
    );
  });
  it("hadamardTransform(x) = x @ hadamardMatrix(n), normalize divides by √n", () => {
    for (const n of [8, 12, 24, 40]) {
      const x = f64(Array.from({ length: 3 * n }, (_, i) => (i % 7) - 3), [3, n]);
      const h = ok(hadamardMatrix(n, { dtype: "f64" }, k));
      expect(Array.from(ok(hadamardTransform(x, {}, k)).data)).toEqual(Array.from(ok(matmul(x, h, {}, k)).data));
      expectClose(Array.from(ok(hadamardTransform(x, { normalize: true }, k)).data), Array.from(ok(matmul(x, h, {}, k)).data, (v) => v / Math.sqrt(n)), 1e-15);
    }
    // normalized Sylvester matrix is orthogonal and symmetric
    const h = ok(hadamardMatrix(16, { normalize: true, dtype: "f64" }, k));
    expect(Array.from(h.data)).toEqual(Array.from(ok(transpose(h)).data));
    expect(Math.abs(h.data[0]! - 0.25)).toBe(0);
  });
});

describe("errors", () => {
  it("name the op and argument", () => {
    err(hadamardTransform(f32([1, 2, 3])), "InvalidArgument", "hadamardTransform", "3", "not 2^k times a known Hadamard size");
    err(hadamardTransform(f32(new Array(12).fill(0)), { construction: "sylvester" }), "InvalidArgument", "hadamardTransform", "power of two", "12");
    err(hadamardTransform(new Tensor("i32", [4], new Int32Array(4))), "UnsupportedDType", "hadamardTransform", "i32");
    err(hadamardMatrix(0), "InvalidArgument", "hadamardMatrix", "n", "0");
    err(hadamardMatrix(6), "InvalidArgument", "hadamardMatrix", "6");
    err(randomHadamardMatrix([1, 0]), "InvalidArgument", "randomHadamardMatrix", "signs[1]");
    err(randomHadamardMatrix([1, 1, 1]), "InvalidArgument", "randomHadamardMatrix", "3");
  });
});
