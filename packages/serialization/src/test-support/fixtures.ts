import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { DType, Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { expect, it } from "vitest";
import type { SerializationErrorTag } from "../errors.js";
import { type QuantizedFormat, dequantizeModule, quantizedFormatOf, quantizedPartsOf } from "../quantized-checkpoint.js";
import { deserializeSafetensors } from "../safetensors-reader.js";

/** packages/serialization/fixtures (made by tools/gen_serialization_fixtures.py). */
export const FIXTURES = fileURLToPath(new URL("../../fixtures/", import.meta.url));

export const readJson = <T>(rel: string): T => JSON.parse(readFileSync(`${FIXTURES}${rel}`, "utf8")) as T;

export const TORCH_TO_LLMQ: Readonly<Record<string, DType>> = {
  float64: "f64",
  float32: "f32",
  float16: "f16",
  bfloat16: "bf16",
  float8_e4m3fn: "f8_e4m3fn",
  float8_e5m2: "f8_e5m2",
  int64: "i64",
  int32: "i32",
  int16: "i16",
  int8: "i8",
  uint8: "u8",
  bool: "bool",
};

export const hex = (b: Uint8Array): string => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("hex");

/** The f32 bit patterns of a tensor (bit-for-bit comparisons). */
export const f32Bits = (t: { readonly data: unknown; readonly size: number }): Uint32Array => {
  const d = t.data as Float32Array;
  return new Uint32Array(d.buffer, d.byteOffset, t.size);
};

/** A quantized-linear fixture folder (cases.safetensors + manifest.json from a tools/gen_*_fixtures.py script). */
export const quantFixture = <C>(dir: string): { readonly cases: Record<string, C>; readonly tensors: ReadonlyMap<string, Tensor> } => {
  const file = deserializeSafetensors(dir, new Uint8Array(readFileSync(`${FIXTURES}${dir}/cases.safetensors`)));
  if (E.isLeft(file)) throw new Error(JSON.stringify(file.left));
  return { cases: readJson<{ cases: Record<string, C> }>(`${dir}/manifest.json`).cases, tensors: file.right.tensors };
};

/** The stored tensors of one case (`<case>.<part>`, not the expected weight), keyed by the part `quantizedPartsOf` gives. */
export const caseParts = (fmt: QuantizedFormat, tensors: ReadonlyMap<string, Tensor>, name: string): Map<string, Tensor> => {
  const names = [...tensors.keys()].filter((n) => n.startsWith(`${name}.`) && !n.endsWith(".expected"));
  const parts = quantizedPartsOf(fmt, names);
  if (parts.size !== names.length) throw new Error(`${name}: ${names.length - parts.size} tensors are not parts of the linear`);
  return new Map([...parts].map(([n, [, part]]) => [part, tensors.get(n)!] as const));
};

/**
 * One test per case of a quantized-linear fixture: `dequantizeModule` on the case's stored parts must give the case's
 * `expected` tensor bit for bit, in the manifest's shape. `formatOf` picks the quantization_config per case.
 */
export const bitExactCases = <C extends { readonly shape: ReadonlyArray<number> }>(
  dir: string,
  formatOf: (c: C) => Record<string, unknown>,
  label: (name: string, c: C) => string = (name) => name,
  /** The value the reader must give from the fixture's `<name>.expected` (by default that tensor itself). */
  reference: (expected: Tensor, name: string) => { readonly data: unknown; readonly size: number } = (t) => t,
): { readonly cases: Record<string, C>; readonly tensors: ReadonlyMap<string, Tensor> } => {
  const fx = quantFixture<C>(dir);
  for (const [name, c] of Object.entries(fx.cases)) {
    it(label(name, c), () => {
      const fmt = quantizedFormatOf("config.json", formatOf(c));
      if (E.isLeft(fmt)) throw new Error(JSON.stringify(fmt.left));
      const w = dequantizeModule("cases", name, caseParts(fmt.right, fx.tensors, name), fmt.right);
      if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
      expect(w.right.shape).toEqual(c.shape);
      expect(f32Bits(w.right)).toEqual(f32Bits(reference(fx.tensors.get(`${name}.expected`)!, name)));
    });
  }
  return fx;
};

/** A hand-broken input file and the error it must give. */
export interface BrokenCase {
  readonly name: string;
  readonly bytes: Uint8Array;
  readonly tag: SerializationErrorTag;
  readonly tensor: string | null;
}
