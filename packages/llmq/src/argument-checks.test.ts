import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeLlamaConfig } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { detectKind } from "./dataset.js";
import { type LlmqError, displayPath, formatLlmqError, ioErrorFrom } from "./errors.js";
import { type QuantizeCommandOptions, quantizeCommand } from "./quantize-command.js";
import { checkReportPath, writeReportFile } from "./report-file.js";
import { MAX_TYPED_ARRAY_ELEMENTS, checkSeqLen, checkWindowMemory, largestWindowArray, seqLenWarning } from "./window-memory.js";

// The checks quantize and eval make before any work, one by one (the CLI suites drive them end to end).

const cfg = (() => {
  const c = decodeLlamaConfig("config.json", {
    model_type: "llama",
    hidden_size: 64,
    intermediate_size: 172,
    num_hidden_layers: 5,
    num_attention_heads: 8,
    num_key_value_heads: 4,
    vocab_size: 512,
    max_position_embeddings: 512,
  });
  if (E.isLeft(c)) throw new Error("config");
  return c.right;
})();

describe("--seq-len and memory", () => {
  it("names the largest array of a window: attention scores for long windows, logits when evaluating short ones", () => {
    expect(largestWindowArray(cfg, 4096, false)).toEqual({ what: "attention-score", elements: 4096 * 4096 });
    expect(largestWindowArray(cfg, 100, true)).toEqual({ what: "logits", elements: 100 * 512 });
    expect(largestWindowArray(cfg, 100, false)).toEqual({ what: "MLP activation", elements: 100 * 172 });
  });

  it("refuses a --seq-len whose arrays exceed what a typed array holds, at the exact bound", () => {
    const edge = Math.sqrt(MAX_TYPED_ARRAY_ELEMENTS); // 65536² = 2³²: still allocatable
    expect(checkSeqLen(cfg, edge, false)).toEqual(E.right(undefined));
    const r = checkSeqLen(cfg, edge + 1, false);
    expect(E.isLeft(r) && formatLlmqError(r.left)).toMatch(/^--seq-len — 65537 tokens per window need one attention-score array of 4\.30e\+9 floats/);
  });

  it("warns past max_position_embeddings only", () => {
    expect(seqLenWarning(cfg, 512)).toEqual([]);
    expect(seqLenWarning(cfg, 513)[0]).toMatch(/exceeds the model's max_position_embeddings \(512\)/);
  });

  it("refuses windows whose activations exceed the memory, counting every copy", () => {
    const windows = Array.from({ length: 10 }, () => ({ length: 1000 }));
    const need = 10 * 1000 * 64 * 4 * 2 + 1000 * 1000 * 4;
    expect(checkWindowMemory(cfg, windows, { copies: 2, logits: false, memoryBytes: need })).toEqual(E.right(undefined));
    const r = checkWindowMemory(cfg, windows, { copies: 2, logits: false, memoryBytes: need - 1 });
    expect(E.isLeft(r) && formatLlmqError(r.left)).toMatch(/10 windows of up to 1000 tokens need about .* GiB .* \(lower --seq-len or --num-samples, or spill activations to disk with --max-memory\)$/);
    // With --max-memory only the budget's worth of windows is held.
    const budget = 3 * 1000 * 64 * 4;
    const held = budget * 2 + 1000 * 1000 * 4;
    expect(checkWindowMemory(cfg, windows, { copies: 2, logits: false, memoryBytes: held, maxMemory: budget })).toEqual(E.right(undefined));
    const over = checkWindowMemory(cfg, windows, { copies: 2, logits: false, memoryBytes: held - 1, maxMemory: budget });
    expect(E.isLeft(over) && formatLlmqError(over.left)).toMatch(/\(lower --max-memory, --seq-len or --num-samples\)$/);
  });

  it("checks --max-memory and --spill-dir before any work", async () => {
    const base = { model: "/nonexistent-model", output: join(tmpdir(), "llmq-never-written"), method: "rtn", numSamples: 4, seqLen: 16, seed: 0, overwrite: false };
    const msg = async (o: Partial<QuantizeCommandOptions>): Promise<string> => {
      const r = await quantizeCommand({ ...base, ...o })();
      return E.isLeft(r) ? formatLlmqError(r.left) : "ok";
    };
    expect(await msg({ maxMemory: "lots", dataset: "d.txt" })).toMatch(/^--max-memory — unit "TS" is not supported; use TB, GB, MB or KB/);
    expect(await msg({ maxMemory: "-1GB", dataset: "d.txt" })).toMatch(/^--max-memory — --max-memory "-1GB" is not a positive size/);
    expect(await msg({ maxMemory: "1GB" })).toMatch(/^--max-memory — bounds the calibration activations, and there is no --dataset/);
    expect(await msg({ spillDir: "/tmp", dataset: "d.txt" })).toMatch(/^--spill-dir — only applies with --max-memory/);
  });
});

describe("--report paths", () => {
  const root = mkdtempSync(join(tmpdir(), "llmq-report-"));

  it("accepts a new file in a writable directory and leaves no probe behind", async () => {
    expect(await checkReportPath(join(root, "r.html"), join(root, "out"), [])).toEqual(E.right(undefined));
    expect(readdirSync(root)).toEqual([]);
  });

  it("refuses a directory, a missing directory, the output or inside it, and an input", async () => {
    mkdirSync(join(root, "d"));
    writeFileSync(join(root, "data.txt"), "x");
    const msg = async (p: string, out: string | null, inputs: string[] = []): Promise<string> => {
      const r = await checkReportPath(p, out, inputs);
      return E.isLeft(r) ? formatLlmqError(r.left) : "ok";
    };
    expect(await msg(join(root, "d"), null)).toMatch(/is a directory/);
    expect(await msg(join(root, "nope", "r.html"), null)).toMatch(/no such file or directory \(ENOENT\)/);
    expect(await msg(join(root, "out", "r.html"), join(root, "out"))).toMatch(/lies inside the output/);
    expect(await msg(join(root, "out"), join(root, "out"))).toMatch(/is the output/);
    expect(await msg(join(root, "data.txt"), null, [join(root, "data.txt")])).toMatch(/is the input/);
  });

  it("writes through a temporary sibling", async () => {
    expect(await writeReportFile(join(root, "w.html"), "<html></html>")).toEqual(E.right(undefined));
    expect(readdirSync(root).filter((f) => f.includes("llmq-tmp"))).toEqual([]);
  });
});

describe("messages", () => {
  it("every error is one line: what — why (what to do)", () => {
    const all: LlmqError[] = [
      { _tag: "DatasetError", path: "d.txt", detail: "bad" },
      { _tag: "RecipeError", detail: "recipe: multi\nline" },
      { _tag: "ModelError", detail: "m" },
      { _tag: "SchemeError", detail: "s" },
      { _tag: "QuantizationError", module: "q", detail: "d" },
      { _tag: "OutputExists", path: "o" },
      { _tag: "OutputOverlaps", path: "o", other: "m", relation: "contains" },
      { _tag: "OutputLocked", path: "o", pid: 7, lock: ".o.llmq-lock" },
      { _tag: "OutputNotDirectory", path: "o", kind: "device" },
      { _tag: "IoError", path: "p", detail: "d", code: "EROFS" },
      { _tag: "UsageError", option: "--x", detail: "d", hint: "h" },
      { _tag: "Aborted", detail: "SIGINT received" },
      { _tag: "Internal", detail: "boom" },
    ];
    for (const e of all) expect(formatLlmqError(e)).toMatch(/^[^\n]+ — [^\n]+ \([^\n]+\)$/);
    expect(formatLlmqError(all[1]!)).toBe("recipe — multi line (fix the recipe or the flags; see llmq quantize --help)");
    expect(formatLlmqError(all[9]!)).toBe("p — d (choose a writable location)");
  });

  it("staging and temporary names are shown as the paths the user gave", () => {
    expect(displayPath("/x/.out.staging.llmq-tmp-123-0123456789ab/config.json")).toBe("/x/out/config.json");
    expect(displayPath("/x/.out.staging.llmq-tmp-123-0123456789ab")).toBe("/x/out");
    expect(displayPath("/x/out/.model.safetensors.llmq-tmp-9-aaaaaaaaaaaa")).toBe("/x/out/model.safetensors");
    expect(displayPath("/x/out/.model.safetensors-spool.llmq-tmp-9-aaaaaaaaaaaa")).toBe("/x/out/model.safetensors");
  });

  it("a copy that fails on a full disk names the destination, one that fails on its source names the source", () => {
    const enospc = Object.assign(new Error("x"), { code: "ENOSPC", path: "/m/tokenizer.json", dest: "/x/.o.staging.llmq-tmp-1-0123456789ab/tokenizer.json" });
    expect(ioErrorFrom("/x", "copy", enospc)).toMatchObject({ path: "/x/o/tokenizer.json", code: "ENOSPC" });
    const eisdir = Object.assign(new Error("x"), { code: "EISDIR", path: "/m/tokenizer.json", dest: "/x/o/tokenizer.json" });
    expect(ioErrorFrom("/x", "copy", eisdir)).toMatchObject({ path: "/m/tokenizer.json", detail: "copy: it is a directory where a file was expected (EISDIR)" });
  });
});

describe("dataset kind", () => {
  it("comes from the extension; content is sniffed only for others", () => {
    expect(detectKind("a.txt", "[[1,2]]")).toBe("text");
    expect(detectKind("a.json", "hello")).toBe("tokens");
    expect(detectKind("a.JSONL", "[[1]]")).toBe("jsonl");
    expect(detectKind("a.data", "  [ [1, 2]]")).toBe("tokens");
    expect(detectKind("a.data", "hello [[")).toBe("text");
  });
});
