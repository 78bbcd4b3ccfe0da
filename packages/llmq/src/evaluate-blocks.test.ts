import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { headForward } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "./dataset.js";
import { evaluate, finalHiddenStates, headBlocks } from "./evaluate.js";
import { type PositionStats, scoreWindow, summarize } from "./metrics.js";
import { oneshot } from "./oneshot.js";
import { openModelDir } from "./open-model.js";
import { noProgress } from "./progress.js";
import { recipeFromYaml } from "./recipe.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// Scoring by row blocks with reused logit buffers gives exactly what scoring each window's whole [T, vocab] logits gave.

const tmp = mkdtempSync(join(tmpdir(), "llmq-eval-blocks-"));
const fp = join(tmp, "fp");
const q = join(tmp, "q");

beforeAll(async () => {
  await convertStories(fp);
  const recipe = must(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes/stories260k-w4a16-g32.yaml"), "utf8")));
  must(await oneshot({ model: fp, output: q, recipe })());
});

describe("eval's head by row blocks", () => {
  it("plans blocks of the scored rows, never of ≤ 4 rows when the window has more", () => {
    expect(headBlocks(512, 0)).toEqual([[0, 256], [256, 511]]);
    expect(headBlocks(512, 256)).toEqual([[256, 511]]);
    expect(headBlocks(14, 0, 6)).toEqual([[0, 6], [6, 13]]); // a tail of 1 joins the block before
    expect(headBlocks(12, 0, 6)).toEqual([[0, 6], [6, 11]]);
    expect(headBlocks(8, 4)).toEqual([[3, 8]]); // 3 scored rows: reach back one and on to the last row
    expect(headBlocks(6, 3)).toEqual([[1, 6]]);
    expect(headBlocks(4, 0)).toEqual([[0, 3]]); // the window itself is short: its rows as they are
    expect(headBlocks(1, 0)).toEqual([]);
    for (const [t, from, size] of [[300, 0, 7], [97, 48, 10], [5, 2, 5], [9, 0, 5]] as const) {
      const b = headBlocks(t, from, size);
      expect(b[0]![0]).toBeLessThanOrEqual(from);
      expect(b.at(-1)![1]).toBeGreaterThanOrEqual(t - 1);
      for (let i = 1; i < b.length; i++) expect(b[i]![0]).toBe(b[i - 1]![1]);
      for (const [r0, r1] of b) expect(r1 - r0).toBeGreaterThan(t >= 5 ? 4 : 0);
    }
  });

  it("gives the whole-window metrics bit for bit (short windows, the second-half protocol, several blocks)", async () => {
    const lengths = [40, 5, 3, 17, 64];
    const dataset: Dataset = {
      path: "windows",
      kind: "tokens",
      windows: lengths.map((n, w) => Int32Array.from({ length: n }, (_, t) => (t === 0 ? 1 : (w * 97 + t * 31) % 512))),
      tokens: lengths.reduce((a, b) => a + b, 0),
    };
    const m = must(await openModelDir(q)());
    const r = must(await openModelDir(fp)());
    const hm = must(await finalHiddenStates(m, dataset.windows, "m", noProgress)());
    const hr = must(await finalHiddenStates(r, dataset.windows, "r", noProgress)());
    const headM = must(await m.loadHead()());
    const headR = must(await r.loadHead()());
    for (const secondHalf of [false, true]) {
      const whole: PositionStats[] = dataset.windows.flatMap((tokens, i) =>
        scoreWindow(tokens, headForward(m.config, headM, hm[i]!).data, m.config.vocab_size, headForward(r.config, headR, hr[i]!).data, secondHalf ? Math.floor(tokens.length / 2) : 0),
      );
      for (const headRows of [5, 7, 256]) {
        const got = await evaluate(m, r, dataset, { scoreSecondHalf: secondHalf, headRows })();
        if (E.isLeft(got)) throw new Error(JSON.stringify(got.left));
        const want = summarize(whole);
        expect(got.right.kldValues, `second half ${secondHalf}, ${headRows} rows`).toEqual(whole.map((p) => p.kld));
        expect({ ...got.right, model: "", reference: "", kldValues: [], windowPerplexity: [] }).toEqual({ ...want, model: "", reference: "", kldValues: [], windowPerplexity: [] });
      }
    }
    await m.close();
    await r.close();
  });
});
