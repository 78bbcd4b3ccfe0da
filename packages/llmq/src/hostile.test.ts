import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { f32, zeros } from "@llmq/tensor";
import { beforeAll, describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { type CliRun, expectFailure, freshDir, isCompleteCheckpoint, leftovers, llmq, llmqChild, llmqLines, modelVariant } from "./test-support/hostile.js";
import { ROOT, convertStories } from "./test-support/stories260k.js";

// llmq as a careless or hostile user drives it: outputs that overlap the inputs, races, bad numbers, broken datasets,
// recipes and model directories. Every case checks the exit code, that stderr has exactly one `llmq:` line in the
// shape "what — why (what to do)" and no stack trace, and what exists on disk afterwards. The built CLI runs, as a
// user's shell would run it.

const tmp = mkdtempSync(join(tmpdir(), "llmq-hostile-"));
const fp = join(tmp, "fp");
const W4 = join(ROOT, "fixtures/recipes/stories260k-w4a16-g32.yaml");
const GPTQ = join(ROOT, "fixtures/recipes/stories260k-w4a16-g32-gptq.yaml");
const ids = join(tmp, "ids.json");
const text = join(tmp, "text.txt");

const run = (...args: string[]): CliRun => llmq(args, tmp);
/** quantize stories260K with the W4A16 g32 RTN recipe into `out`. */
const q = (out: string, ...extra: string[]): CliRun => run("quantize", "--model", fp, "--output", out, "--recipe", W4, "-q", ...extra);
const file = (name: string, content: string | Uint8Array): string => {
  const p = join(tmp, name);
  writeFileSync(p, content);
  return p;
};
/** `dir` with one file replaced (null: deleted). */
const withFile = (dir: string, name: string, content: string | null): string => {
  if (content === null) rmSync(join(dir, name));
  else writeFileSync(join(dir, name), content);
  return dir;
};
const snapshot = (dir: string): string =>
  readdirSync(dir)
    .sort()
    .map((f) => `${f}:${statSync(join(dir, f)).size}:${statSync(join(dir, f)).mtimeMs}`)
    .join("|");

beforeAll(async () => {
  await convertStories(fp);
  writeFileSync(ids, JSON.stringify(Array.from({ length: 4 }, (_, k) => Array.from({ length: 32 }, (_, j) => (k * 32 + j * 7) % 512))));
  writeFileSync(text, readFileSync(join(ROOT, "fixtures/wikitext-2/valid.txt"), "utf8").slice(0, 4000));
}, 60_000);

describe("outputs that overlap what the run reads", () => {
  it("--overwrite with the model directory itself as output is refused and the model is kept", () => {
    const before = snapshot(fp);
    expectFailure(q(fp, "--overwrite"), 1, /output .*fp — is the same path as .*fp, which this run reads/);
    expect(snapshot(fp)).toBe(before);
  });

  it("--overwrite with a directory that contains the model (and unrelated files) is refused; nothing is deleted", () => {
    const parent = freshDir(tmp, "parent");
    const model = modelVariant(fp, join(parent, "model"), {});
    writeFileSync(join(parent, "unrelated.txt"), "keep me");
    expectFailure(run("quantize", "--model", model, "--output", parent, "--recipe", W4, "--overwrite", "-q"), 1, /contains .*model, which this run reads/);
    expect(readFileSync(join(parent, "unrelated.txt"), "utf8")).toBe("keep me");
    expect(existsSync(join(model, "model.safetensors"))).toBe(true);
  });

  it("an output inside the model directory is refused and nothing is added to the model", () => {
    const before = snapshot(fp);
    expectFailure(q(join(fp, "quantized")), 1, /lies inside .*fp/);
    expect(snapshot(fp)).toBe(before);
  });

  it("a symbolic link to the model directory is the model directory", () => {
    const link = join(tmp, "link-to-fp");
    if (!existsSync(link)) symlinkSync(fp, link);
    expectFailure(q(link, "--overwrite"), 1, /is the same path as/);
    expect(existsSync(join(fp, "model.safetensors"))).toBe(true);
  });

  it("an empty --output resolves to the working directory, which contains the model: refused", () => {
    expectFailure(q("", "--overwrite"), 1, /contains .*fp/);
  });

  it("the dataset file as output is refused, the dataset kept", () => {
    const before = readFileSync(ids, "utf8");
    expectFailure(q(ids, "--dataset", ids, "--overwrite"), 1, /ids\.json — is the same path as .*ids\.json/);
    expect(readFileSync(ids, "utf8")).toBe(before);
  });

  it("a directory containing the dataset as output is refused with --overwrite", () => {
    const d = freshDir(tmp, "data-dir");
    const ds = join(d, "ids.json");
    writeFileSync(ds, readFileSync(ids));
    expectFailure(q(d, "--dataset", ds, "--overwrite"), 1, /contains .*ids\.json/);
    expect(existsSync(ds)).toBe(true);
  });

  it("the recipe file as output is refused", () => {
    const r = file("copy.yaml", readFileSync(W4));
    expectFailure(run("quantize", "--model", fp, "--output", r, "--recipe", r, "--overwrite", "-q"), 1, /copy\.yaml — is the same path as/);
    expect(readFileSync(r, "utf8")).toBe(readFileSync(W4, "utf8"));
  });
});

describe("outputs that exist, are locked or left over", () => {
  it("a second run on the same --output without --overwrite fails and leaves the first output unchanged", () => {
    const out = join(tmp, "twice");
    expect(q(out).code).toBe(0);
    const before = snapshot(out);
    expectFailure(q(out), 1, /exists and is not empty \(pass --overwrite/);
    expect(snapshot(out)).toBe(before);
  });

  it("--overwrite replaces a previous output whole", () => {
    const out = freshDir(tmp, "replace");
    writeFileSync(join(out, "stale.txt"), "old");
    const r = q(out, "--overwrite");
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(out, "stale.txt"))).toBe(false);
    expect(isCompleteCheckpoint(out)).toBe(true);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("a file in the way of --output is never replaced, even with --overwrite", () => {
    const out = file("a-file", "x");
    expectFailure(q(out), 1, /a-file — exists and is a file, not a directory/);
    expectFailure(q(out, "--overwrite"), 1, /a-file — exists and is a file, not a directory \(remove it or choose another --output; --overwrite only replaces directories\)/);
    expect(readFileSync(out, "utf8")).toBe("x");
  });

  it("a named pipe or a symbolic link as --output is refused with --overwrite, and left in place", () => {
    const fifo = join(tmp, "a-fifo");
    if (!existsSync(fifo)) spawnSync("mkfifo", [fifo]);
    if (existsSync(fifo)) expectFailure(q(fifo, "--overwrite"), 1, /a-fifo — exists and is a pipe, not a directory/);
    const link = join(tmp, "a-link");
    if (!existsSync(link)) symlinkSync(freshDir(tmp, "link-target"), link);
    expectFailure(q(link, "--overwrite"), 1, /a-link — exists and is a symbolic link, not a directory/);
    expect(existsSync(link)).toBe(true);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("convert onto a file is refused, even with --overwrite", () => {
    const out = file("convert-onto-file", "x");
    expectFailure(run("convert", "--from", "llama2c", join(ROOT, "fixtures/stories260K/stories260K.bin"), "--output", out, "--overwrite"), 1, /exists and is a file, not a directory/);
    expect(readFileSync(out, "utf8")).toBe("x");
  });

  it("an output below a regular file names the path and why", () => {
    const f = file("not-a-dir", "x");
    expectFailure(q(join(f, "out")), 1, /not-a-dir.*(not a directory|ENOTDIR)/);
  });

  it("an empty existing output directory is used", () => {
    const out = freshDir(tmp, "empty-out");
    expect(q(out).code).toBe(0);
    expect(isCompleteCheckpoint(out)).toBe(true);
  });

  it("an output name with spaces and non-ASCII characters works", () => {
    const out = join(tmp, "out put é 量化");
    expect(q(out).code).toBe(0);
    expect(isCompleteCheckpoint(out)).toBe(true);
  });

  it("an output name longer than the file system allows is reported as such", () => {
    expectFailure(q(join(tmp, "n".repeat(300))), 1, /name is too long \(ENAMETOOLONG\)/);
  });

  it("a lock held by a live process fails fast and is left alone", () => {
    const out = join(tmp, "locked");
    const lock = join(tmp, ".locked.llmq-lock");
    writeFileSync(lock, `${process.pid}\n`);
    expectFailure(q(out), 1, new RegExp(`another llmq process \\(pid ${process.pid}\\) is writing it`));
    expect(readFileSync(lock, "utf8")).toBe(`${process.pid}\n`);
    expect(existsSync(out)).toBe(false);
    rmSync(lock);
  });

  it("a stale lock, staging directory and temp file of a dead process are cleaned and the run succeeds", () => {
    const dead = deadPid();
    const out = join(tmp, "stale");
    writeFileSync(join(tmp, ".stale.llmq-lock"), `${dead}\n`);
    mkdirSync(join(tmp, `.stale.staging.llmq-tmp-${dead}-00112233aabb`));
    writeFileSync(join(tmp, `.stale.staging.llmq-tmp-${dead}-00112233aabb`, "model.safetensors"), "half");
    expect(q(out).code).toBe(0);
    expect(isCompleteCheckpoint(out)).toBe(true);
    expect(leftovers(tmp).filter((f) => f.includes("stale"))).toEqual([]);
  });

  it("a previous output that a killed commit had moved aside is restored, not lost", () => {
    const out = join(tmp, "aside");
    expect(q(out).code).toBe(0);
    const moved = join(tmp, `.aside.old.llmq-tmp-${deadPid()}-00112233aabb`);
    renameSync(out, moved);
    expectFailure(q(out), 1, /exists and is not empty/);
    expect(isCompleteCheckpoint(out)).toBe(true);
    expect(existsSync(moved)).toBe(false);
  });

  it("two concurrent runs on the same output: one wins, the other fails with one clear line", async () => {
    const out = join(tmp, "race");
    const args = ["quantize", "--model", fp, "--output", out, "--recipe", GPTQ, "--dataset", ids, "-q"];
    const results = await Promise.all([0, 1].map(() => finished(llmqChild(args, tmp))));
    const codes = results.map((r) => r.code).sort();
    expect(codes).toEqual([0, 1]);
    const loser = results.find((r) => r.code === 1)!;
    expect(llmqLines(loser.stderr)).toHaveLength(1);
    expect(loser.stderr).toMatch(/another llmq process \(pid \d+\) is writing it|exists and is not empty/);
    expect(isCompleteCheckpoint(out)).toBe(true);
    expect(leftovers(tmp).filter((f) => f.includes("race"))).toEqual([]);
  });
});

describe("--report", () => {
  const cases: Array<[string, () => string[], RegExp]> = [
    ["in a directory that does not exist", () => ["--report", join(tmp, "no-such-dir", "r.html")], /no-such-dir.*no such file or directory/],
    ["that is a directory", () => ["--report", freshDir(tmp, "report-dir")], /--report — .*is a directory/],
    ["inside the output", () => ["--report", join(tmp, "rep-out", "r.html")], /contains .*r\.html, which this run reads/],
    ["that is the dataset", () => ["--dataset", ids, "--report", ids], /is the same path as|is the input/],
  ];
  it.each(cases)("a report path %s is refused before any work, and no output is written", (_, extra, re) => {
    const out = join(tmp, "rep-out");
    expectFailure(q(out, ...extra()), 1, re);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("a valid report is written next to a complete output, no temporary file left", () => {
    const out = join(tmp, "with-report");
    const r = q(out, "--report", join(tmp, "report.html"));
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(tmp, "report.html"), "utf8")).toMatch(/<html/i);
    expect(leftovers(tmp)).toEqual([]);
  });
});

describe("numbers", () => {
  const cases: Array<[string, string[], RegExp]> = [
    ["--num-samples 0", ["--num-samples", "0"], /--num-samples must be a whole number ≥ 1/],
    ["--num-samples -3", ["--num-samples", "-3"], /num-samples/],
    ["--num-samples 1e3", ["--num-samples", "1e3"], /got "1e3"/],
    ["--num-samples 0x10", ["--num-samples", "0x10"], /got "0x10"/],
    ["--num-samples 99999999999", ["--num-samples", "99999999999"], /--num-samples — must be an integer in \[1, 1000000\]/],
    ["--num-samples 3.5", ["--num-samples", "3.5"], /got "3\.5"/],
    ["--seq-len 1", ["--seq-len", "1"], /--seq-len must be a whole number ≥ 2/],
    ["--seq-len 1e9", ["--seq-len", "1e9"], /got "1e9"/],
    ["--seed x", ["--seed", "x"], /--seed must be a whole number/],
    ["--seq-len 100000000 with a dataset", ["--seq-len", "100000000", "--dataset", ids], /--seq-len — 100000000 tokens per window need one attention-score array of 1\.00e\+16 floats .* \(lower --seq-len/],
    ["--pipeline bogus", ["--pipeline", "bogus"], /argument 'bogus' is invalid/],
    ["an unknown flag", ["--frobnicate"], /unknown option '--frobnicate'/],
  ];
  it.each(cases)("quantize %s: exit 1 before any work", (_, extra, re) => {
    const out = join(tmp, "num-out");
    expectFailure(q(out, ...extra), 1, re);
    expect(existsSync(out)).toBe(false);
  });

  it("--seq-len above max_position_embeddings is a warning, not an error", () => {
    const long = file("long.json", JSON.stringify([Array.from({ length: 600 }, (_, j) => (j * 11) % 512)]));
    const out = join(tmp, "long-out");
    const r = run("quantize", "--model", fp, "--output", out, "--recipe", GPTQ, "--dataset", long, "--seq-len", "600", "-q");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/warning: --seq-len 600 exceeds the model's max_position_embeddings \(512\)/);
    expect(isCompleteCheckpoint(out)).toBe(true);
  });

  it("eval with a --seq-len whose logits cannot be allocated names the array and the flag", () => {
    expectFailure(run("eval", "--model", fp, "--dataset", ids, "--seq-len", "9000000", "-q"), 1, /--seq-len — 9000000 tokens per window need one .* array/);
  });

  it("eval --num-samples 0 is a usage error", () => {
    expectFailure(run("eval", "--model", fp, "--dataset", ids, "--num-samples", "0"), 1, /usage of llmq eval — .*num-samples/);
  });

  it("a missing required option is a usage error in the same shape", () => {
    expectFailure(run("quantize", "--model", fp), 1, /^llmq: usage of llmq quantize — required option '--output <dir>' not specified \(run llmq quantize --help\)$/);
  });

  it("an unknown command is a usage error in the same shape", () => {
    expectFailure(run("quantise"), 1, /usage of llmq — unknown command 'quantise'/);
  });
});

describe("datasets", () => {
  const cases: Array<[string, () => string, RegExp]> = [
    ["invalid JSON", () => file("bad.json", "[[1, 2,"), /not valid JSON/],
    ["a JSON object", () => file("obj.json", '{"a": 1}'), /expected a JSON array of token-id arrays/],
    ["a flat JSON array", () => file("flat.json", "[1, 2, 3]"), /item 0 is not an array of token ids/],
    ["three levels of nesting", () => file("deep.json", "[[[1, 2]]]"), /item 0, position 0: \[1,2\] is not a token id/],
    ["a negative id", () => file("neg.json", "[[1, -2, 3]]"), /item 0, position 1: -2 is not a token id/],
    ["an id beyond the vocabulary", () => file("big.json", "[[1, 2, 512]]"), /position 2: 512 is not a token id in \[0, 512\)/],
    ["a huge id", () => file("huge.json", "[[1, 1099511627776]]"), /1099511627776 is not a token id/],
    ["a fractional id", () => file("frac.json", "[[1, 2.5]]"), /2\.5 is not a token id/],
    ["a string id", () => file("str.json", '[[1, "2"]]'), /"2" is not a token id/],
    ["only empty windows", () => file("empties.json", "[[], []]"), /the dataset is empty/],
    ["an empty array", () => file("none.json", "[]"), /the dataset is empty/],
    ["an empty text file", () => file("empty.txt", ""), /the dataset is empty/],
    ["JSONL with a broken line", () => file("broken.jsonl", '{"text": "a"}\n{"text": \n'), /line 2 is not valid JSON/],
    ["JSONL without a text field", () => file("notext.jsonl", '{"body": "hello"}\n'), /line 1 has no string field "text"/],
    ["JSONL with a numeric text field", () => file("numtext.jsonl", '{"text": 5}\n'), /line 1 has no string field "text"/],
    ["a directory", () => freshDir(tmp, "ds-dir"), /cannot read: it is a directory where a file was expected \(EISDIR\)/],
    ["a missing file", () => join(tmp, "no-such.txt"), /cannot read: no such file or directory \(ENOENT\)/],
    ["an endless device", () => "/dev/zero", /cannot read: it is a device, not a file/],
  ];
  it.each(cases)("%s: exit 1 naming the dataset, no output", (_, path, re) => {
    const out = join(tmp, "ds-out");
    const p = path();
    expectFailure(q(out, "--dataset", p), 1, re);
    expect(llmqLines(q(out, "--dataset", p).stderr)[0]).toContain(p);
    expect(existsSync(out)).toBe(false);
  });

  it("a .txt file that begins with [[ is text, not token JSON", () => {
    const p = file("brackets.txt", `[[not json at all]] ${readFileSync(text, "utf8")}`);
    const out = join(tmp, "brackets-out");
    const r = run("quantize", "--model", fp, "--output", out, "--recipe", GPTQ, "--dataset", p, "--num-samples", "2", "--seq-len", "64", "-q", "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).layers.length).toBeGreaterThan(0);
  });

  it("an unknown extension is sniffed: [[ means token ids", () => {
    const p = file("ids.tokens", readFileSync(ids, "utf8"));
    const r = run("eval", "--model", fp, "--dataset", p, "--json", "-q");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).tokens).toBe(4 * 31);
  });

  it("binary garbage with an unknown extension is tokenized as text, not a crash", () => {
    const p = file("noise.bin", Uint8Array.from({ length: 3000 }, (_, i) => (i * 7919) % 256));
    const r = run("eval", "--model", fp, "--dataset", p, "--seq-len", "64", "--json", "-q");
    expect(r.code, r.stderr).toBe(0);
    expect(Number.isFinite(JSON.parse(r.stdout).perplexity)).toBe(true);
  });
});

describe("recipes and schemes", () => {
  const cases: Array<[string, () => string[], RegExp]> = [
    ["a missing recipe", () => ["--recipe", join(tmp, "nope.yaml")], /nope\.yaml — cannot read the recipe: no such file or directory \(ENOENT\)/],
    ["a recipe that is a directory", () => ["--recipe", freshDir(tmp, "recipe-dir")], /cannot read the recipe: it is a directory/],
    ["an empty recipe", () => ["--recipe", file("empty.yaml", "")], /^llmq: recipe — /],
    ["a recipe that is a device", () => ["--recipe", "/dev/urandom"], /urandom — cannot read the recipe: it is a device, not a file/],
    ["a YAML alias bomb", () => ["--recipe", file("bomb.yaml", `a: &a ["x","x","x","x","x","x","x","x","x"]\n${Array.from({ length: 8 }, (_, i) => `${String.fromCharCode(98 + i)}: &${String.fromCharCode(98 + i)} [*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)},*${String.fromCharCode(97 + i)}]`).join("\n")}\n`)], /^llmq: recipe — .*(alias|Excessive)/i],
    ["invalid YAML", () => ["--recipe", file("bad.yaml", "quant_stage:\n  - : [\n")], /^llmq: recipe — /],
    ["a YAML scalar", () => ["--recipe", file("scalar.yaml", "42\n")], /^llmq: recipe — /],
    ["an unknown modifier", () => ["--recipe", file("unknown-mod.yaml", "test_stage:\n  test_modifiers:\n    FrobnicateModifier: {}\n")], /FrobnicateModifier/],
    [
      "an unknown field",
      () => ["--recipe", file("unknown-field.yaml", readFileSync(W4, "utf8").replace("ignore:", "bogus_field: 1\n      ignore:"))],
      /bogus_field/,
    ],
    [
      "a weight type that does not exist",
      () => ["--recipe", file("banana.yaml", readFileSync(W4, "utf8").replaceAll("type: int", "type: banana"))],
      /banana/,
    ],
    [
      "a recipe in JSON with a wrong type",
      () => ["--recipe", file("wrong.json", JSON.stringify({ quant_stage: { quant_modifiers: { QuantizationModifier: { scheme: 5 } } } }))],
      /^llmq: recipe — |scheme/,
    ],
    ["GPTQ without calibration data", () => ["--recipe", GPTQ], /needs calibration data.*pass --dataset/],
    ["an unknown preset scheme", () => ["--recipe", "", "--scheme", "W9Z9"], /W9Z9/],
  ];
  it.each(cases)("%s: exit 1, no output", (name, extra, re) => {
    const out = join(tmp, `recipe-out-${name.replace(/\W+/g, "-")}`);
    const args = extra();
    const r = args[0] === "--recipe" && args[1] === "" ? run("quantize", "--model", fp, "--output", out, "-q", ...args.slice(2)) : q(out, ...args);
    expectFailure(r, 1, re);
    expect(existsSync(out)).toBe(false);
  });

  it.each([
    ["--targets", "re:("],
    ["--ignore", "re:["],
  ])("an invalid regular expression in %s %s names the target", (flag, value) => {
    const out = join(tmp, "regex-out");
    expectFailure(run("quantize", "--model", fp, "--output", out, "--scheme", "W8A16", flag, value, "-q"), 1, new RegExp(`target "${value.replace(/[[(]/g, "\\$&")}": invalid regular expression`));
    expect(existsSync(out)).toBe(false);
  });

  it("an unknown --method is refused with the supported ones", () => {
    expectFailure(run("quantize", "--model", fp, "--output", join(tmp, "m-out"), "--method", "awq", "-q"), 1, /--method must be rtn or gptq/);
  });

  it("the same recipe given as JSON (YAML's superset) quantizes", () => {
    const yamlText = readFileSync(W4, "utf8");
    const r = q(join(tmp, "json-recipe-out"), "--recipe", file("recipe.json", JSON.stringify(parseYaml(yamlText))));
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("model directories", () => {
  const embed = "model.embed_tokens.weight";
  const cases: Array<[string, () => string, RegExp]> = [
    ["without config.json", () => freshDir(tmp, "no-config"), /config\.json: model config not found/],
    ["with config.json not JSON", () => withFile(modelVariant(fp, join(tmp, "m-badjson"), {}), "config.json", "{ nope"), /not valid JSON/],
    ["with a config.json array", () => withFile(modelVariant(fp, join(tmp, "m-arr"), {}), "config.json", "[]"), /top level must be an object/],
    ["with an unsupported model_type", () => modelVariant(fp, join(tmp, "m-gpt2"), { config: (c) => ({ ...c, model_type: "gpt2" }) }), /unsupported architecture model_type "gpt2"/],
    ["with hidden_act gelu", () => modelVariant(fp, join(tmp, "m-gelu"), { config: (c) => ({ ...c, hidden_act: "gelu" }) }), /hidden_act: "gelu" is not supported/],
    ["with a negative hidden_size", () => modelVariant(fp, join(tmp, "m-neg"), { config: (c) => ({ ...c, hidden_size: -64 }) }), /hidden_size: must be a positive integer/],
    [
      "whose vocab_size contradicts the embedding",
      () => modelVariant(fp, join(tmp, "m-vocab"), { config: (c) => ({ ...c, vocab_size: 600 }) }),
      /model\.embed_tokens\.weight has shape \[512, 64\], expected \[600, 64\] from vocab_size 600, hidden_size 64/,
    ],
    [
      "without model.norm.weight",
      () =>
        modelVariant(fp, join(tmp, "m-nonorm"), {
          tensors: (t) => {
            t.delete("model.norm.weight");
            return t;
          },
        }),
      /model\.norm\.weight is missing \(expected a float tensor of shape \[64\] from hidden_size 64\)/,
    ],
    [
      "with a q_proj of the wrong shape",
      () => modelVariant(fp, join(tmp, "m-qshape"), { tensors: (t) => t.set("model.layers.0.self_attn.q_proj.weight", zeros("f32", [32, 64])) }),
      /model\.layers\.0\.self_attn\.q_proj\.weight has shape \[32, 64\], expected \[64, 64\]/,
    ],
    [
      "with an int8 norm",
      () => modelVariant(fp, join(tmp, "m-int8"), { tensors: (t) => t.set("model.layers.1.input_layernorm.weight", zeros("i8", [64])) }),
      /model\.layers\.1\.input_layernorm\.weight has dtype i8, expected a float dtype/,
    ],
    ["with fewer layers in config.json than in the weights", () => modelVariant(fp, join(tmp, "m-fewer"), { config: (c) => ({ ...c, num_hidden_layers: 4 }) }), /tensors of layer 4 exist but num_hidden_layers is 4/],
    ["with more layers in config.json than in the weights", () => modelVariant(fp, join(tmp, "m-more"), { config: (c) => ({ ...c, num_hidden_layers: 6 }) }), /model\.layers\.5\.input_layernorm\.weight is missing/],
    ["with an untied head that is absent", () => modelVariant(fp, join(tmp, "m-untied"), { config: (c) => ({ ...c, tie_word_embeddings: false }) }), /lm_head\.weight is missing/],
    [
      "with an embedding of the wrong rank",
      () => modelVariant(fp, join(tmp, "m-rank"), { tensors: (t) => t.set(embed, zeros("f32", [512 * 64])) }),
      /model\.embed_tokens\.weight has shape \[32768\], expected \[512, 64\]/,
    ],
    [
      "with a truncated model.safetensors",
      () => {
        const d = modelVariant(fp, join(tmp, "m-trunc"), {});
        const b = readFileSync(join(d, "model.safetensors"));
        writeFileSync(join(d, "model.safetensors"), b.subarray(0, b.length - 1000));
        return d;
      },
      /model\.safetensors/,
    ],
    [
      "with a garbage model.safetensors",
      () => {
        const d = modelVariant(fp, join(tmp, "m-garbage"), {});
        writeFileSync(join(d, "model.safetensors"), "this is not a safetensors file at all");
        return d;
      },
      /model\.safetensors/,
    ],
    ["without weights", () => withFile(modelVariant(fp, join(tmp, "m-noweights"), {}), "model.safetensors", null), /weights .* not found/],
    ["that does not exist", () => join(tmp, "no-such-model"), /config\.json: model config not found/],
    ["that is a file", () => file("model-file", "x"), /config\.json/],
  ];
  it.each(cases)("a model %s: exit 1 naming what is wrong, no output", (_, model, re) => {
    const out = join(tmp, "model-out");
    const r = run("quantize", "--model", model(), "--output", out, "--recipe", W4, "-q");
    expectFailure(r, 1, re);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("a corrupt tokenizer.json with a text dataset names the file", () => {
    const m = withFile(modelVariant(fp, join(tmp, "m-badtok"), {}), "tokenizer.json", '{"model": 5}');
    expectFailure(run("quantize", "--model", m, "--output", join(tmp, "badtok-out"), "--recipe", GPTQ, "--dataset", text, "-q"), 1, /m-badtok\/tokenizer\.json: tokenizer: /);
    expect(existsSync(join(tmp, "badtok-out"))).toBe(false);
  });

  it("a tokenizer file that cannot be copied fails the save with the file named; no output", () => {
    const m = modelVariant(fp, join(tmp, "m-tokdir"), {});
    rmSync(join(m, "special_tokens_map.json"));
    mkdirSync(join(m, "special_tokens_map.json"));
    const out = join(tmp, "tokdir-out");
    expectFailure(run("quantize", "--model", m, "--output", out, "--recipe", W4, "-q"), 1, /special_tokens_map\.json — cannot write the checkpoint metadata: it is a directory/);
    expect(existsSync(out)).toBe(false);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("eval of a model with NaN weights is an error naming the window and position, not perplexity NaN", () => {
    const m = modelVariant(fp, join(tmp, "m-nan"), {
      tensors: (t) => t.set("model.norm.weight", f32(Array.from({ length: 64 }, (_, i) => (i === 3 ? Number.NaN : 1)))),
    });
    expectFailure(run("eval", "--model", m, "--dataset", ids, "-q"), 1, /produces NaN logits \(window 0, position 0, token id 0\)/);
  });

  it.each([
    ["--report into a directory", () => ["--dataset", ids, "--report", freshDir(tmp, "eval-report-dir")], /--report — .*is a directory/],
    ["--report onto the dataset", () => ["--dataset", ids, "--report", ids], /--report — .*is the input/],
    ["a missing reference", () => ["--dataset", ids, "--reference", join(tmp, "no-ref")], /no-ref\/config\.json: model config not found/],
    ["a text dataset for a model without tokenizer", () => ["--dataset", text, "--model", withFile(modelVariant(fp, join(tmp, "m-notok"), {}), "tokenizer.json", null)], /has no tokenizer \(tokenizer\.json\); pass a JSON array of token-id arrays/],
    ["a missing --dataset", () => [], /required option '--dataset <file>' not specified/],
  ] as Array<[string, () => string[], RegExp]>)("eval with %s: exit 1, one line, no report", (_, extra, re) => {
    const args = extra();
    const model = args.includes("--model") ? [] : ["--model", fp];
    expectFailure(run("eval", ...model, ...args, "-q"), 1, re);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("eval against a reference with another vocabulary is refused", () => {
    const m = modelVariant(fp, join(tmp, "m-vocab2"), {
      config: (c) => ({ ...c, vocab_size: 256 }),
      tensors: (t) => t.set("model.embed_tokens.weight", zeros("f32", [256, 64])),
    });
    expectFailure(run("eval", "--model", fp, "--reference", m, "--dataset", file("small-ids.json", "[[1, 2, 3, 4]]"), "-q"), 1, /vocabulary of 256, the model 512/);
  });
});

/** The pid of a process that has exited (the kernel does not reuse it this fast). */
describe("convert and inspect", () => {
  const bin = join(ROOT, "fixtures/stories260K/stories260K.bin");
  const cases: Array<[string, () => string[], RegExp]> = [
    ["convert of a garbage checkpoint", () => ["convert", "--from", "llama2c", file("garbage.bin", "x".repeat(100)), "--output", join(tmp, "cv-out")], /garbage\.bin: invalid checkpoint/],
    ["convert of a truncated checkpoint", () => ["convert", "--from", "llama2c", file("cut.bin", readFileSync(bin).subarray(0, 3000)), "--output", join(tmp, "cv-out")], /cut\.bin: invalid checkpoint: needs \d+ float32 values/],
    ["convert with a missing tokenizer", () => ["convert", "--from", "llama2c", bin, "--tokenizer", join(tmp, "no-tok.bin"), "--output", join(tmp, "cv-out")], /no-tok\.bin: llama2\.c tokenizer not found/],
    ["convert onto its own source file", () => ["convert", "--from", "llama2c", file("src.bin", readFileSync(bin)), "--output", join(tmp, "src.bin"), "--overwrite"], /src\.bin — is the same path as .*src\.bin/],
    ["convert onto an existing model", () => ["convert", "--from", "llama2c", bin, "--output", fp], /output .*fp — exists and is not empty/],
    ["convert from an unknown format", () => ["convert", "--from", "safetensors", bin, "--output", join(tmp, "cv-out")], /argument 'safetensors' is invalid/],
    ["inspect of a missing directory", () => ["inspect", join(tmp, "nothing-here")], /config\.json — not found \(is this a model directory\?\)/],
    ["inspect of a null config.json", () => ["inspect", withFile(freshDir(tmp, "null-config"), "config.json", "null")], /the top level must be a JSON object/],
    ["inspect of a config.json that is a directory", () => ["inspect", (() => { const d = freshDir(tmp, "dir-config"); mkdirSync(join(d, "config.json")); return d; })()], /cannot read: it is a directory/],
    ["inspect of garbage weights", () => ["inspect", withFile(modelVariant(fp, join(tmp, "insp-garbage"), {}), "model.safetensors", "garbage")], /model\.safetensors/],
  ];
  it.each(cases)("%s: exit 1, one line, nothing written", (_, args, re) => {
    const a = args();
    const before = readdirSync(tmp).length;
    expectFailure(run(...a), 1, re);
    expect(existsSync(join(tmp, "cv-out"))).toBe(false);
    expect(readdirSync(tmp).length).toBe(before);
    expect(leftovers(tmp)).toEqual([]);
  });

  it("inspect of the model itself still works", () => {
    const r = run("inspect", fp, "--json");
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).format).toBe("dense");
  });
});

const deadPid = (): number => Number(spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" }).stdout);

const finished = (child: ReturnType<typeof llmqChild>): Promise<CliRun> =>
  new Promise((resolve) => {
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => {
      stdout += String(d);
    });
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
