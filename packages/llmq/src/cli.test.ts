import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

// The CLI contract of DESIGN.md §5: --help, --json on stdout, one clear message and exit code 1 for bad input,
// nothing left behind on failure or Ctrl-C. The CLI runs from source through tsx, as a user's process would.

const root = new URL("../../../", import.meta.url).pathname;
// `node --import tsx` (not the tsx binary, which relays signals through a second process) so Ctrl-C reaches the CLI.
const nodeArgs = ["--conditions=@llmq/source", "--import", pathToFileURL(join(root, "node_modules/tsx/dist/loader.mjs")).href, join(root, "packages/llmq/src/cli.ts")];
const tmp = mkdtempSync(join(tmpdir(), "llmq-cli-"));
const fp = join(tmp, "fp");

const llmq = (...args: string[]) => {
  const r = spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: "utf8", cwd: tmp, env: { ...process.env, NO_COLOR: "1" } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};

beforeAll(() => {
  const r = llmq("convert", "--from", "llama2c", join(root, "fixtures/stories260K/stories260K.bin"), "--tokenizer", join(root, "fixtures/stories260K/tok512.bin"), "--output", fp, "--json");
  expect(r.code).toBe(0);
  expect(JSON.parse(r.stdout)).toMatchObject({ tensors: 47, parameters: 260032, tokenizer: true });
});

describe("llmq CLI", () => {
  it("--help lists the commands and exits 0", () => {
    const r = llmq("--help");
    expect(r.code).toBe(0);
    for (const c of ["convert", "quantize", "eval", "inspect"]) expect(r.stdout).toContain(c);
    const q = llmq("quantize", "--help");
    expect(q.code).toBe(0);
    for (const f of ["--model", "--scheme", "--recipe", "--dataset", "--num-samples", "--seq-len", "--ignore", "--overwrite", "--json"]) expect(q.stdout).toContain(f);
  });

  it("usage errors exit 1 with one message", () => {
    const r = llmq("quantize", "--model", fp);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/required option '--output <dir>'/);
    expect(llmq("quantize", "--model", fp, "--output", join(tmp, "x"), "--num-samples", "zero").code).toBe(1);
  });

  it("quantize --json prints the result shape, then inspect and eval --json work on it", () => {
    const out = join(tmp, "w8");
    const q = llmq("quantize", "--model", fp, "--output", out, "--scheme", "W8A16", "--recipe", join(root, "fixtures/recipes/stories260k-w4a16-g32.yaml"), "--json", "-q");
    expect(q.code).toBe(0);
    const res = JSON.parse(q.stdout);
    expect(Object.keys(res)).toEqual(expect.arrayContaining(["output", "scheme", "modules", "seconds", "peak_rss_mb", "layers"]));
    expect(res.layers[0]).toMatchObject({ name: "model.layers.0" });
    const i = JSON.parse(llmq("inspect", out, "--json").stdout);
    expect(i.format).toBe("pack-quantized");
    expect(i.quantization_config.quant_method).toBe("compressed-tensors");
    expect(i.total_bytes).toBe(i.tensors.reduce((a: number, t: { bytes: number }) => a + t.bytes, 0));
    const ids = Array.from({ length: 4 }, (_, k) => Array.from({ length: 64 }, (_, j) => (k * 64 + j * 7) % 512));
    writeFileSync(join(tmp, "ids.json"), JSON.stringify(ids));
    const e = llmq("eval", "--model", out, "--reference", fp, "--dataset", join(tmp, "ids.json"), "--json", "-q");
    expect(e.code).toBe(0);
    const ev = JSON.parse(e.stdout);
    expect(ev).toMatchObject({ model: out, reference: fp, tokens: 4 * 63 });
    for (const k of ["perplexity", "reference_perplexity", "top1"]) expect(typeof ev[k]).toBe("number");
    expect(Object.keys(ev.kld)).toEqual(["mean", "p99", "max"]);
    const e2 = JSON.parse(llmq("eval", "--model", fp, "--dataset", join(tmp, "ids.json"), "--json", "-q", "--score-second-half").stdout);
    expect(e2).toMatchObject({ reference: null, reference_perplexity: null, kld: null, top1: null, tokens: 4 * 31 });
  });

  it("bad inputs exit 1 with one clear message and leave nothing behind", () => {
    mkdirSync(join(tmp, "empty-model"), { recursive: true });
    writeFileSync(join(tmp, "corrupt-model.json"), "");
    mkdirSync(join(tmp, "corrupt"), { recursive: true });
    writeFileSync(join(tmp, "corrupt/config.json"), "{ not json");
    writeFileSync(join(tmp, "empty.json"), "[]");
    const cases: Array<[string[], RegExp]> = [
      [["quantize", "--model", join(tmp, "empty-model"), "--output", join(tmp, "o1"), "--scheme", "W8A8"], /config\.json.*not found/],
      [["quantize", "--model", join(tmp, "corrupt"), "--output", join(tmp, "o2"), "--scheme", "W8A8"], /config\.json/],
      [["quantize", "--model", fp, "--output", join(tmp, "o3"), "--scheme", "W4A16"], /group_size 128 does not divide the 64 input features/],
      [["quantize", "--model", fp, "--output", join(tmp, "o4"), "--scheme", "W9Z9"], /W9Z9/],
      [["quantize", "--model", fp, "--output", join(tmp, "o5"), "--scheme", "W8A8", "--method", "gptq", "--dataset", join(tmp, "empty.json")], /empty/],
      [["quantize", "--model", fp, "--output", fp, "--scheme", "W8A8"], /is the same path as .*which this run reads/],
      [["eval", "--model", fp, "--dataset", join(tmp, "missing.txt")], /missing\.txt — cannot read: no such file or directory \(ENOENT\)/],
    ];
    for (const [args, re] of cases) {
      const r = llmq(...args);
      expect(r.code, `${args.join(" ")}\n${r.stderr}`).toBe(1);
      expect(r.stderr).toMatch(re);
      expect(r.stderr.trim().split("\n").filter((l) => l.startsWith("llmq:"))).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /); // no stack trace for user errors
    }
    for (const o of ["o1", "o2", "o3", "o4", "o5"]) expect(existsSync(join(tmp, o))).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes("llmq-staging") || f.includes("llmq-tmp"))).toEqual([]);
  });

  it("Ctrl-C mid-run exits 130 and leaves no partial output", async () => {
    const out = join(tmp, "interrupted");
    const child = spawn(
      process.execPath,
      [...nodeArgs, "quantize", "--model", fp, "--output", out, "--recipe", join(root, "fixtures/recipes/stories260k-w4a16-g32-gptq.yaml"), "--dataset", join(root, "fixtures/wikitext-2/valid.txt"), "--num-samples", "256", "--seq-len", "256"],
      { cwd: tmp },
    );
    let stderr = "";
    child.stderr.on("data", (d) => {
      stderr += String(d);
    });
    // Interrupt once calibration has visibly started.
    await new Promise<void>((resolve) => {
      const t = setInterval(() => {
        if (/quantize: 0\/\d/.test(stderr)) {
          clearInterval(t);
          resolve();
        }
      }, 50);
    });
    child.kill("SIGINT");
    const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
    expect(code).toBe(130);
    expect(stderr).toMatch(/llmq: interrupted — SIGINT received; no partial output was left/);
    expect(stderr.split("\n").filter((l) => l.startsWith("llmq:"))).toHaveLength(1);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes("llmq-staging") || f.includes("llmq-tmp") || f.includes("llmq-lock"))).toEqual([]);
  });
});
