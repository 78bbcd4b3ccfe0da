import { readFileSync } from "node:fs";
import { DTYPES, type DType, type Tensor, cast, fromBytes, getNumber } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";

// Readers for the JSON fixtures written by tools/gen_scheme_fixtures.py (test-only helper).

export interface WireTensor {
  readonly dtype: DType;
  readonly shape: number[];
  readonly b64: string;
}

export const fixturePath = (name: string): string => new URL(`../../fixtures/${name}`, import.meta.url).pathname;

export const readFixture = <T>(name: string): T => JSON.parse(readFileSync(fixturePath(name), "utf8")) as T;

export const decodeTensor = (w: WireTensor): Tensor => {
  const buf = Buffer.from(w.b64, "base64");
  const ab = new ArrayBuffer(buf.length);
  new Uint8Array(ab).set(buf);
  const t = fromBytes(w.dtype, w.shape, ab, 0);
  if (E.isLeft(t)) throw new Error(`bad fixture tensor: ${JSON.stringify(t.left)}`);
  return t.right;
};

const hex = (b: Uint8Array, i: number, w: number) =>
  Array.from(b.subarray(i * w, i * w + w))
    .reverse()
    .map((x) => x.toString(16).padStart(2, "0"))
    .join("");

/**
 * Bitwise comparison in the expected dtype; undefined when identical. The dtypes must match too unless `storage`
 * (our storage codes, e.g. f4_e2m1, are compared after an exact cast to torch's float carrier).
 */
export const bitDiff = (actual: Tensor, expected: Tensor, storage = false): string | undefined => {
  if (actual.shape.join(",") !== expected.shape.join(",") && actual.size !== expected.size)
    return `shape [${actual.shape}] vs expected [${expected.shape}]`;
  const a = actual.dtype === expected.dtype ? actual : cast(actual, expected.dtype);
  const ab = a.bytes();
  const eb = expected.bytes();
  if (ab.length !== eb.length) return `byte length ${ab.length} vs ${eb.length}`;
  const w = Math.max(1, expected.data.BYTES_PER_ELEMENT);
  let bad = 0;
  let first = -1;
  const isFloat = DTYPES[expected.dtype].kind === "float";
  for (let i = 0; i < eb.length; i += w) {
    for (let k = 0; k < w; k++)
      if (ab[i + k] !== eb[i + k]) {
        // NaN payload/sign bits are platform artifacts (x86 produces negative quiet NaNs): any NaN matches any NaN
        if (isFloat && Number.isNaN(getNumber(a, i / w)) && Number.isNaN(getNumber(expected, i / w))) break;
        if (first < 0) first = i / w;
        bad++;
        break;
      }
  }
  if (bad === 0) return actual.dtype === expected.dtype || storage ? undefined : `dtype ${actual.dtype} vs expected ${expected.dtype}`;
  return `${bad} of ${eb.length / w} elements differ; first at ${first}: got 0x${hex(ab, first, w)} expected 0x${hex(eb, first, w)}`;
};
