import { describe, expect, it } from "vitest";
import { GPTQ_UPDATE_WASM } from "./gptq-update-wasm.js";
import { intPanelKernel, makeWasmUpdate } from "./int-panel-kernel.js";

// The SIMD update must perform exactly the JS path's f32 operations (multiply, round, subtract, round).

describe("intPanelKernel: WebAssembly SIMD update ≡ JS update, bit for bit", () => {
  it.each([
    [37, 128, 0, 37],
    [64, 19, 5, 61],
    [9, 1, 0, 9],
  ])("rows %i, block width %i, rows [%i, %i)", (rows, bw, r0, r1) => {
    const wasm = makeWasmUpdate(Uint8Array.from(Buffer.from(GPTQ_UPDATE_WASM, "base64")));
    expect(wasm).not.toBeNull();
    let s = 11;
    const rnd = (): number => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return s / 2147483648 - 0.5;
    };
    const p0 = Float32Array.from({ length: rows * bw }, () => rnd() * 0.1);
    const h = new Float32Array(bw * bw);
    for (let i = 0; i < bw; i++) for (let j = i; j < bw; j++) h[i * bw + j] = i === j ? 0.5 + rnd() * 0.1 : rnd() * 0.2;
    const rowSel = Int32Array.from({ length: rows }, (_, r) => r);
    const colSel = Int32Array.from({ length: bw }, (_, i) => Math.floor(i / 8));
    const sCols = Math.ceil(bw / 8);
    const scales = Float64Array.from({ length: rows * sCols }, () => Math.fround(0.01 + Math.abs(rnd()) * 0.01));
    const zps = Float64Array.from({ length: rows * sCols }, () => Math.round(rnd() * 4));
    const run = (w: typeof wasm) => {
      const p = Float32Array.from(p0);
      const codes = new Float32Array(rows * bw);
      const err = new Float32Array(rows * bw);
      const loss = new Float64Array(rows);
      intPanelKernel(p, bw, r0, r1, h, rowSel, colSel, sCols, scales, zps, -8, 7, codes, err, loss, w);
      return { p, codes, err, loss };
    };
    const a = run(null);
    const b = run(wasm);
    expect(Buffer.from(b.p.buffer).equals(Buffer.from(a.p.buffer))).toBe(true);
    expect(Buffer.from(b.codes.buffer).equals(Buffer.from(a.codes.buffer))).toBe(true);
    expect(Buffer.from(b.err.buffer).equals(Buffer.from(a.err.buffer))).toBe(true);
    expect(Array.from(b.loss)).toEqual(Array.from(a.loss));
    // rows outside [r0, r1) are untouched
    for (let i = 0; i < r0 * bw; i++) expect(b.p[i]).toBe(p0[i]);
  });
});
