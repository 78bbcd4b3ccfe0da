import { mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { evalCommand } from "./eval-command.js";
import { oneshot } from "./oneshot.js";
import { recipeFromScheme } from "./recipe.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// `llmq eval --reference-cache`: the reference's final hidden states are computed once per (reference files, windows)
// and reused; the metrics are the same bits as without the cache, and a change of the windows or of the reference's
// files is a miss, not a stale hit.

let tmp = "";
let fp = "";
let q = "";
const dataset = join(ROOT, "fixtures/wikitext-2/test.txt");

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-refcache-"));
  fp = join(tmp, "fp");
  q = join(tmp, "q");
  await convertStories(fp);
  const recipe = must(recipeFromScheme({ scheme: "W8A8", method: "rtn", ignore: ["lm_head"] }));
  must(await oneshot({ model: fp, recipe, output: q })());
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("eval --reference-cache", () => {
  it("computes the reference once per windows and files, with the same metrics as without the cache", async () => {
    const cache = join(tmp, "cache");
    const run = (numSamples: number, referenceCache?: string) =>
      evalCommand({ model: q, reference: fp, dataset, seqLen: 64, numSamples, scoreSecondHalf: false, referenceCache })();
    const plain = must(await run(3));
    const first = must(await run(3, cache));
    expect(readdirSync(cache)).toHaveLength(1);
    const second = must(await run(3, cache));
    expect(readdirSync(cache)).toHaveLength(1);
    for (const r of [first, second]) {
      expect(r.kld).toEqual(plain.kld);
      expect(r.perplexity).toBe(plain.perplexity);
      expect(r.reference_perplexity).toBe(plain.reference_perplexity);
      expect(r.top1).toBe(plain.top1);
    }
    must(await run(2, cache)); // other windows: another entry
    expect(readdirSync(cache)).toHaveLength(2);
    writeFileSync(join(fp, "generation_config.json"), "{}\n"); // the reference's files changed: a miss
    must(await run(3, cache));
    expect(readdirSync(cache)).toHaveLength(3);
  });

  it("is refused without --reference", async () => {
    const r = await evalCommand({ model: q, dataset, seqLen: 64, numSamples: 1, scoreSecondHalf: false, referenceCache: join(tmp, "c2") })();
    expect(E.isLeft(r) && r.left._tag).toBe("UsageError");
  });
});
