import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll } from "vitest";
import { loadDataset } from "../dataset.js";
import type { Dataset } from "../dataset.js";
import { optionalTokenizer } from "../open-model.js";
import { convertStories, must } from "./stories260k.js";

// The msModelSlim end-to-end tests' common setup: a scratch directory, stories260K as an HF directory in it, and the
// committed calibration windows (fixtures/transforms/stories260k-windows.json) as a Dataset; removed after the file.

const WINDOWS = new URL("../../fixtures/transforms/stories260k-windows.json", import.meta.url).pathname;

export interface StoriesWindows {
  /** The scratch directory. */
  tmp: string;
  /** stories260K converted to an HF directory inside it. */
  hf: string;
  data: Dataset;
}

/** Registers beforeAll / afterAll for the calling test file; the fields are set once beforeAll has run. */
export const useStoriesWindows = (prefix: string): StoriesWindows => {
  const fx = { tmp: "", hf: "" } as StoriesWindows;
  beforeAll(async () => {
    fx.tmp = mkdtempSync(join(tmpdir(), prefix));
    fx.hf = join(fx.tmp, "hf");
    await convertStories(fx.hf);
    const windows = JSON.parse(readFileSync(WINDOWS, "utf8")) as number[][];
    const tok = must(await optionalTokenizer(fx.hf)());
    fx.data = must(await loadDataset(WINDOWS, tok, { numSamples: windows.length, seqLen: windows[0]!.length, sampling: "sequential", vocabSize: 512 })());
  }, 120_000);
  afterAll(() => rmSync(fx.tmp, { recursive: true, force: true }));
  return fx;
};
