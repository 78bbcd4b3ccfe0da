import { readFileSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { expect } from "vitest";
import { kernelsFor } from "../backend.js";
import { type TensorError, formatTensorError } from "../errors.js";
import type { Kernels } from "../kernels.js";
import { Tensor } from "../tensor.js";

// Helpers for the op tests only (not exported from the package).

export interface FixtureTensor {
  readonly dtype: "f32" | "f64";
  readonly shape: number[];
  readonly data: number[];
}

// biome-ignore lint/suspicious/noExplicitAny: fixture JSON, typed at the use site
export const loadFixture = (name: string): any => JSON.parse(readFileSync(new URL(`../../fixtures/${name}`, import.meta.url), "utf8"));

export const tensorOf = (f: FixtureTensor): Tensor<"f32" | "f64"> =>
  new Tensor(f.dtype, f.shape, f.dtype === "f32" ? Float32Array.from(f.data) : Float64Array.from(f.data));

/** The Right value; fails the test with the formatted error otherwise. */
export const ok = <A>(e: E.Either<TensorError, A>): A => {
  if (E.isLeft(e)) throw new Error(`unexpected Left: ${formatTensorError(e.left)}`);
  return e.right;
};

/** The Left value, checked for its tag and that its message names the op and every given fragment. */
export const err = <A>(e: E.Either<TensorError, A>, tag: TensorError["_tag"], op: string, ...fragments: string[]): TensorError => {
  expect(E.isLeft(e), "expected a Left").toBe(true);
  const l = (e as E.Left<TensorError>).left;
  expect(l._tag).toBe(tag);
  const msg = formatTensorError(l);
  expect(msg.startsWith(`${op}:`), msg).toBe(true);
  for (const f of fragments) expect(msg, msg).toContain(f);
  return l;
};

/** Distance in f32 ulps between two f32 values (0 for equal values, including both NaN). */
export const ulps = (a: number, b: number): number => {
  if (Number.isNaN(a) && Number.isNaN(b)) return 0;
  if (a === b) return 0;
  const buf = new Float32Array([a, b]);
  const i = new Int32Array(buf.buffer);
  const ord = (v: number) => (v < 0 ? 0x80000000 - v : v);
  return Math.abs(ord(i[0]!) - ord(i[1]!));
};

/** Asserts |a − b| ≤ atol + rtol·|b| elementwise, reporting the worst index. */
export const expectClose = (got: ArrayLike<number>, want: ArrayLike<number>, rtol: number, atol = 0): void => {
  expect(got.length).toBe(want.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i]!;
    const w = want[i]!;
    if (Number.isNaN(w) && Number.isNaN(g)) continue;
    const excess = Math.abs(g - w) - (atol + rtol * Math.abs(w));
    if (!(excess <= 0) && (worst < 0 || excess > worstExcess)) {
      worst = i;
      worstExcess = excess;
    }
  }
  expect(worst < 0 ? "ok" : `index ${worst}: got ${got[worst]}, want ${want[worst]}`).toBe("ok");
};

/** Asserts at most `maxUlps` f32 ulps apart elementwise. */
export const expectUlps = (got: ArrayLike<number>, want: ArrayLike<number>, maxUlps: number): void => {
  expect(got.length).toBe(want.length);
  for (let i = 0; i < want.length; i++) {
    const d = ulps(got[i]!, want[i]!);
    if (d > maxUlps) expect(`index ${i}: got ${got[i]}, want ${want[i]} (${d} ulps)`).toBe("ok");
  }
};

/** The backends to run kernel-backed ops on: js always, native when the addon is built. */
export const backends = (): Array<[string, Kernels]> => {
  const out: Array<[string, Kernels]> = [["js", kernelsFor("js")]];
  try {
    out.push(["native", kernelsFor("native")]);
  } catch {
    // addon not built: the native rows are skipped
  }
  return out;
};
