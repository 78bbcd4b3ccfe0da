import { execFileSync } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { writeHfDirectory } from "./hf-directory.js";
import { convertLlama2c } from "./llama2c.js";
import { llama2cEncode } from "./llama2c-tokenizer.js";
import { forwardLogits } from "./model-handle.js";
import { openModel } from "./open-model.js";

// Runs only where a Python with transformers is available: LLMQ_PYTHON=$LLMQ_PYTHON.
// LLMQ_WRITE_EVIDENCE=1 also refreshes fixtures/stories260K-interop.json (the committed report).
const PY = process.env.LLMQ_PYTHON;
const ROOT = new URL("../../../", import.meta.url).pathname;
const FX = `${ROOT}fixtures/stories260K/`;

const right = async <A>(t: () => Promise<E.Either<unknown, A>>): Promise<A> => {
  const r = await t();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

describe("interop with transformers (llama2.c import)", () => {
  it.skipIf(PY === undefined)("transformers loads the converted directory: same logits within 1e-4, same token ids", async () => {
    const m = await right(convertLlama2c(`${FX}stories260K.bin`, { tokenizerBinPath: `${FX}tok512.bin` }));
    const tmp = mkdtempSync(join(tmpdir(), "llmq-interop-"));
    const out = join(tmp, "stories260K-hf");
    await right(writeHfDirectory(out, m));
    const h = await right(openModel(out));
    const story =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";
    const tokens = llama2cEncode(m.vocab!, story, true);
    const logits = await right(forwardLogits(h, Int32Array.from(tokens)));
    await h.close();
    const V = m.config.vocab_size;
    const wiki = readFileSync(`${ROOT}fixtures/wikitext-2/test.txt`, "utf8")
      .split("\n")
      .filter((l) => l.trim().length > 0 && !/<unk>|<s>|<\/s>/.test(l))
      .slice(0, 200);
    const texts = [story, "Zoë said 😀 {ok}\nnew line", ...wiki];
    const ref = {
      tokens,
      logits: Array.from({ length: tokens.length }, (_, t) => Array.from(logits.data.subarray(t * V, (t + 1) * V))),
      texts,
      ids: texts.map((t) => llama2cEncode(m.vocab!, t, true)),
    };
    writeFileSync(join(tmp, "llmq.json"), JSON.stringify(ref));
    const reportPath = join(tmp, "report.json");
    execFileSync(PY!, [`${ROOT}tools/check_llama2c_hf.py`, out, join(tmp, "llmq.json"), "--out", reportPath], { stdio: "pipe" });
    const report = JSON.parse(readFileSync(reportPath, "utf8")) as Record<string, unknown>;
    expect(report.logits_rel_err as number).toBeLessThan(1e-4);
    expect(report.token_ids_equal).toBe(true);
    expect(report.decoded_equals_text).toBe(true);
    if (process.env.LLMQ_WRITE_EVIDENCE === "1") copyFileSync(reportPath, new URL("../fixtures/stories260K-interop.json", import.meta.url).pathname);
  });
});
