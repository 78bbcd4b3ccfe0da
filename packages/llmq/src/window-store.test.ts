import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { formatLlmqError } from "./errors.js";
import { windowStore } from "./window-store.js";

const dir = mkdtempSync(join(tmpdir(), "llmq-window-store-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const width = 6;
const lengths = [5, 3, 5, 7, 2];
const window = (i: number, salt = 0): Tensor<"f32"> =>
  new Tensor("f32", [lengths[i]!, width], Float32Array.from({ length: lengths[i]! * width }, (_, j) => i * 1000 + j + salt + 0.25));
const values = (t: E.Either<unknown, Tensor<"f32">>): number[] => (E.isRight(t) ? Array.from(t.right.data) : []);

describe("windowStore", () => {
  it("keeps everything in memory without a budget", () => {
    const s = windowStore(lengths, width, (i) => window(i), { spillDir: dir });
    if (E.isLeft(s)) throw new Error(formatLlmqError(s.left));
    expect(s.right.spilled).toBe(0);
    expect(readdirSync(dir)).toEqual([]);
    expect(values(s.right.get(3))).toEqual(Array.from(window(3).data));
    s.right.close();
  });

  it("spills the windows past the budget to one file, reads and replaces them there, and deletes it on close", () => {
    // The first two windows (5 + 3 rows × 6 floats × 4 bytes = 192 bytes) fit 200 bytes; the third does not.
    const s = windowStore(lengths, width, (i) => window(i), { maxMemory: 200, spillDir: dir });
    if (E.isLeft(s)) throw new Error(formatLlmqError(s.left));
    expect(s.right.spilled).toBe(3);
    const files = readdirSync(dir);
    expect(files).toHaveLength(1);
    expect(statSync(join(dir, files[0]!)).size).toBe((5 + 7 + 2) * width * 4);
    for (let i = 0; i < lengths.length; i++) expect(values(s.right.get(i)), `window ${i}`).toEqual(Array.from(window(i).data));
    for (const i of [4, 1, 2]) expect(E.isRight(s.right.set(i, window(i, 0.5)))).toBe(true);
    for (let i = 0; i < lengths.length; i++) expect(values(s.right.get(i)), `window ${i}`).toEqual(Array.from(window(i, [1, 2, 4].includes(i) ? 0.5 : 0).data));
    s.right.close();
    expect(readdirSync(dir)).toEqual([]);
  });

  it("names the file and the flag when the spill file cannot be created", () => {
    const s = windowStore(lengths, width, (i) => window(i), { maxMemory: 1, spillDir: join(dir, "missing") });
    expect(E.isLeft(s) && formatLlmqError(s.left)).toMatch(/missing.*cannot create the activation spill file/s);
    expect(existsSync(join(dir, "missing"))).toBe(false);
  });
});
