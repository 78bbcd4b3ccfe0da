#!/usr/bin/env node
// Dumps the calibration windows `llmq quantize` would use, as a JSON array of token-id arrays, for
// tools/oneshot_compare.py (llm-compressor's oneshot on exactly the same windows, in the same order).
//
// Command (from the repo root, after building packages/llmq):
//     node tools/dump_calibration_windows.mjs --model <fp_dir> --dataset fixtures/wikitext-2/valid.txt \
//         --num-samples 16 --seq-len 128 [--seed 42] [--sampling shuffle|sequential] --out windows.json \
//         [--out-llmq windows.llmq.json]
//
// The windows are llmq's own: packages/llmq's loadDataset with the options quantize-command.ts passes (the model's
// tokenizer.json, sampling "shuffle", the seed, numSamples, seqLen, vocab_size), so `llmq quantize --dataset <text>`
// with the same flags calibrates on exactly these windows, in this order.
// `llmq quantize --dataset <file.json>` shuffles token windows too (seeded). --out-llmq writes the same windows
// pre-permuted so that llmq's shuffle of that file (same --num-samples, --seq-len, --seed) gives back --out's order;
// the script checks this by loading --out-llmq through loadDataset as quantize does.
import { writeFile } from "node:fs/promises";
import { parseArgs } from "node:util";
import { loadDataset, openModelDir, optionalTokenizer, seededPermutation } from "../packages/llmq/dist/index.js";

const { values: a } = parseArgs({
  options: {
    model: { type: "string" },
    dataset: { type: "string" },
    "num-samples": { type: "string", default: "64" },
    "seq-len": { type: "string", default: "512" },
    seed: { type: "string", default: "42" },
    sampling: { type: "string", default: "shuffle" },
    out: { type: "string" },
    "out-llmq": { type: "string" },
  },
});
if (!a.model || !a.dataset || !a.out) {
  console.error("usage: node tools/dump_calibration_windows.mjs --model DIR --dataset FILE --num-samples N --seq-len T [--seed S] --out FILE [--out-llmq FILE]");
  process.exit(2);
}
const numSamples = Number(a["num-samples"]);
const seqLen = Number(a["seq-len"]);
const seed = Number(a.seed);

const must = (e, what) => {
  if (e._tag === "Left") {
    console.error(`${what}: ${JSON.stringify(e.left)}`);
    process.exit(1);
  }
  return e.right;
};

const h = must(await openModelDir(a.model)(), "open model");
const vocab = h.config.vocab_size;
await h.close();
const tok = must(await optionalTokenizer(a.model)(), "tokenizer");
// "shuffle": quantize's calibration windows; "sequential": eval's (the first N windows of the text, in order).
const opts = { numSamples, seqLen, seed, sampling: a.sampling, vocabSize: vocab };
const ds = must(await loadDataset(a.dataset, tok, opts)(), "dataset");
const windows = ds.windows.map((w) => Array.from(w));
await writeFile(a.out, JSON.stringify(windows));
console.error(`${a.out}: ${windows.length} windows (${ds.kind}), lengths ${[...new Set(windows.map((w) => w.length))].join(",")}, ${ds.tokens} tokens`);

if (a["out-llmq"]) {
  // llmq's select(): out[k] = items[p[k]] with p = seededPermutation(items.length, seed); we want out = windows.
  const p = seededPermutation(windows.length, seed);
  const items = new Array(windows.length);
  p.forEach((src, k) => {
    items[src] = windows[k];
  });
  await writeFile(a["out-llmq"], JSON.stringify(items));
  const back = must(await loadDataset(a["out-llmq"], null, opts)(), "reload --out-llmq");
  const same = back.windows.length === windows.length && back.windows.every((w, i) => w.length === windows[i].length && w.every((t, j) => t === windows[i][j]));
  if (!same) {
    console.error(`${a["out-llmq"]}: llmq's shuffle of it does NOT reproduce ${a.out}`);
    process.exit(1);
  }
  console.error(`${a["out-llmq"]}: llmq quantize --dataset on it (seed ${seed}, ${numSamples} samples) calibrates on ${a.out}'s windows in order`);
}
