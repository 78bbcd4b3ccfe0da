import { toFloat32 } from "@llmq/tensor";
import { describe, expect, it } from "vitest";
import { awqGemvZerosWidth, unpackCols, unpackRows } from "./gptq-awq-dequantize.js";
import { packAwqGemm, packAwqGemv, packGptq } from "./gptq-awq-pack.js";
import { quantFixture } from "./test-support/fixtures.js";

// The packers against the bytes GPTQModel 7.7.0 / AutoGPTQ's v1 rule / AutoAWQ 0.2.9 wrote for issue 14's fixtures
// (tools/gen_gptq_awq_fixtures.py): codes and zero points are recovered from each case, packed again, and must give
// the stored qweight / qzeros words exactly.

interface Case {
  readonly method: "gptq" | "awq";
  readonly bits?: 2 | 3 | 4 | 8;
  readonly group_size: number;
  readonly sym?: boolean;
  readonly checkpoint_format?: string;
  readonly version?: string;
  readonly shape: [number, number];
}

const { cases, tensors } = quantFixture<Case>("gptq-awq");
const i32 = (n: string) => tensors.get(n)!.data as Int32Array;
const f32 = (n: string) => toFloat32(tensors.get(n)!).data;

describe("GPTQ packing (qweight: GPTQModel pack_original; qzeros: GPTQModel pack_cols v2 / AutoGPTQ v1 OR rule)", () => {
  for (const [name, c] of Object.entries(cases).filter(([, c]) => c.method === "gptq")) {
    it(name, () => {
      const [n, k] = c.shape;
      const bits = c.bits!;
      const v1 = c.checkpoint_format === "gptq";
      const qw = tensors.get(`${name}.qweight`)!;
      const qz = tensors.get(`${name}.qzeros`)!;
      const groups = qz.shape[0]!;
      const q = unpackRows(i32(`${name}.qweight`), qw.shape[0]!, n, bits);
      const stored = unpackCols(i32(`${name}.qzeros`), groups, qz.shape[1]!, bits);
      const maxq = (1 << bits) - 1;
      // v1 fields hold z − 1; a field of all ones is the −1 of a zero point 0 (z − 1 = maxq would need z = 2^bits),
      // and in a word it corrupted every higher field is all ones too, whatever that zero point was.
      const zeros = sym(c) ? new Int32Array(groups * n).fill(1 << (bits - 1)) : v1 ? stored.map((f) => (f === maxq ? 0 : f + 1)) : stored;
      const p = packGptq({ q, zeros, scales: new Float32Array(groups * n), gIdx: i32(`${name}.g_idx`), inFeatures: k, outFeatures: n, bits, v1 });
      expect(p.qweight.shape).toEqual(qw.shape);
      expect(p.qweight.data).toEqual(i32(`${name}.qweight`));
      expect(p.qzeros.shape).toEqual(qz.shape);
      expect(p.qzeros.data).toEqual(i32(`${name}.qzeros`));
    });
  }
});

const sym = (c: Case) => c.sym === true;

describe("AWQ GEMM packing (AutoAWQ WQLinear_GEMM.from_linear)", () => {
  for (const [name, c] of Object.entries(cases).filter(([, c]) => c.method === "awq" && c.version === "gemm")) {
    it(name, () => {
      const [n, k] = c.shape;
      const groups = k / c.group_size;
      // Natural-order codes from the stored words (the reader's unpacking), packed again.
      const order = [0, 4, 1, 5, 2, 6, 3, 7];
      const natural = (words: Int32Array, rows: number) =>
        Int32Array.from({ length: rows * n }, (_, i) => (words[Math.floor(i / 8)]! >>> (4 * order[i % 8]!)) & 15);
      const p = packAwqGemm(natural(i32(`${name}.qweight`), k), natural(i32(`${name}.qzeros`), groups), new Float32Array(groups * n), k, n);
      expect(p.qweight.data).toEqual(i32(`${name}.qweight`));
      expect(p.qzeros.data).toEqual(i32(`${name}.qzeros`));
      expect(p.qweight.shape).toEqual(tensors.get(`${name}.qweight`)!.shape);
    });
  }
});

describe("AWQ GEMV packing (AutoAWQ WQLinear_GEMV.from_linear)", () => {
  for (const [name, c] of Object.entries(cases).filter(([, c]) => c.method === "awq" && c.version === "gemv")) {
    it(name, () => {
      const [n, k] = c.shape;
      const groups = k / c.group_size;
      const width = awqGemvZerosWidth(k, c.group_size);
      if (width._tag === "Left") throw new Error(width.left);
      // Codes [in, out] and zeros / scales [groups, out] from the stored tensors (the reader's unpacking), packed again.
      const qT = unpackCols(i32(`${name}.qweight`), n, k / 8, 4);
      const zT = unpackCols(i32(`${name}.qzeros`), n, width.right, 4);
      const sT = f32(`${name}.scales`);
      const q = Int32Array.from({ length: k * n }, (_, i) => qT[(i % n) * k + Math.floor(i / n)]!);
      const z = Int32Array.from({ length: groups * n }, (_, i) => zT[(i % n) * width.right * 8 + Math.floor(i / n)]!);
      const s = Float32Array.from({ length: groups * n }, (_, i) => sT[(i % n) * width.right * 8 + Math.floor(i / n)]!);
      const p = packAwqGemv(q, z, s, k, n, width.right);
      expect(p.qweight.data).toEqual(i32(`${name}.qweight`));
      expect(p.qzeros.data).toEqual(i32(`${name}.qzeros`));
      expect(p.scales.data).toEqual(sT);
      expect(p.qweight.shape).toEqual(tensors.get(`${name}.qweight`)!.shape);
      expect(p.qzeros.shape).toEqual(tensors.get(`${name}.qzeros`)!.shape);
    });
  }
});
