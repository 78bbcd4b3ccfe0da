import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { firstValueFrom, toArray } from "rxjs";
import { describe, expect, it } from "vitest";
import { batches$, type DatasetTokenizer, loadDataset, seededPermutation } from "./dataset.js";

// A character-level tokenizer: real enough to test windowing (each char is one id), BOS = 1.
const charTok: DatasetTokenizer = { encode: (t, o) => [...(o.bos ? [1] : []), ...[...t].map((c) => c.charCodeAt(0))], bosId: 1 };
const dir = mkdtempSync(join(tmpdir(), "llmq-ds-"));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};

describe("datasets", () => {
  it("uses token arrays as given: no BOS, no re-chunking; num-samples takes the first N, seq-len truncates", async () => {
    const p = file("t.json", JSON.stringify([[5, 6, 7, 8], [9, 10], [11, 12, 13]]));
    const r = await loadDataset(p, null, { numSamples: 2, seqLen: 3 })();
    expect(E.isRight(r) && r.right.windows.map((w) => Array.from(w))).toEqual([[5, 6, 7], [9, 10]]);
  });

  it("cuts text into windows of seq-len tokens that each start with BOS", async () => {
    const p = file("a.txt", "abcdefgh");
    const r = await loadDataset(p, charTok, { seqLen: 4 })();
    expect(E.isRight(r) && r.right.windows.map((w) => Array.from(w))).toEqual([
      [1, 97, 98, 99],
      [1, 100, 101, 102],
    ]);
  });

  it("reads JSONL text fields, one sample per line", async () => {
    const p = file("a.jsonl", '{"text":"hi"}\n\n{"text":"yo!"}\n');
    const r = await loadDataset(p, charTok, {})();
    expect(E.isRight(r) && r.right.windows.map((w) => Array.from(w))).toEqual([
      [1, 104, 105],
      [1, 121, 111, 33],
    ]);
  });

  it("shuffles deterministically by seed", async () => {
    const p = file("b.txt", "abcdefghijklmnopqrstuvwxyz".repeat(4));
    const a = await loadDataset(p, charTok, { seqLen: 5, sampling: "shuffle", seed: 7, numSamples: 5 })();
    const b = await loadDataset(p, charTok, { seqLen: 5, sampling: "shuffle", seed: 7, numSamples: 5 })();
    const c = await loadDataset(p, charTok, { seqLen: 5, sampling: "shuffle", seed: 8, numSamples: 5 })();
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    expect(seededPermutation(10, 3).sort((x, y) => x - y)).toEqual([...Array(10).keys()]);
  });

  it("rejects empty datasets, bad JSON, non-integer ids and text without a tokenizer with the path in the error", async () => {
    const cases: Array<[string, DatasetTokenizer | null, RegExp]> = [
      [file("e.json", "[]"), null, /empty/],
      [file("f.json", "[[1, 2.5]]"), null, /position 1: 2.5 is not a token id/],
      [file("g.jsonl", "{oops"), charTok, /line 1 is not valid JSON/],
      [file("h.txt", "text"), null, /no tokenizer/],
      [join(dir, "missing.txt"), charTok, /cannot read: no such file or directory \(ENOENT\)/],
    ];
    for (const [p, tok, re] of cases) {
      const r = await loadDataset(p, tok, {})();
      expect(E.isLeft(r)).toBe(true);
      if (E.isLeft(r) && r.left._tag === "DatasetError") {
        expect(r.left.path).toBe(p);
        expect(r.left.detail).toMatch(re);
      }
    }
  });

  it("streams windows as batches", async () => {
    const p = file("s.json", JSON.stringify([[1, 2], [3, 4]]));
    const r = await loadDataset(p, null, {})();
    if (E.isLeft(r)) throw new Error("load failed");
    const bs = await firstValueFrom(batches$(r.right).pipe(toArray()));
    expect(bs.map((b) => b.index)).toEqual([0, 1]);
  });
});
