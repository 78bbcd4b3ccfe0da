import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

// A third-party quantization method from a separate package (test-plugins/sign-magnitude: a 4-bit sign-magnitude
// toy) registers its config class and quantizer through LLMQ_PLUGINS, then round-trips through the CLI:
// `llmq quantize --hf-config` writes it, `llmq inspect` names it, `llmq eval` reads it back with its dequantizer.
const root = new URL("../../../", import.meta.url).pathname;
const plugin = join(root, "packages/llmq/test-plugins/sign-magnitude/index.mjs");
const nodeArgs = ["--conditions=@llmq/source", "--import", pathToFileURL(join(root, "node_modules/tsx/dist/loader.mjs")).href, join(root, "packages/llmq/src/cli.ts")];
const tmp = mkdtempSync(join(tmpdir(), "llmq-plugin-"));
const fp = join(tmp, "fp");

const llmq = (env: Record<string, string>, ...args: string[]) => {
  const r = spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: "utf8", cwd: tmp, env: { ...process.env, NO_COLOR: "1", ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
};
const withPlugin = { LLMQ_PLUGINS: plugin };

beforeAll(() => {
  const r = llmq({}, "convert", "--from", "llama2c", join(root, "fixtures/stories260K/stories260K.bin"), "--tokenizer", join(root, "fixtures/stories260K/tok512.bin"), "--output", fp, "--json");
  expect(r.code, r.stderr).toBe(0);
}, 120_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("a third-party quantizer registered from its own package", () => {
  it("is unknown without the plugin", () => {
    const r = llmq({}, "quantize", "--model", fp, "--output", join(tmp, "none"), "--hf-config", '{"quant_method": "sign-magnitude"}');
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("Unknown quantization type, got sign-magnitude");
  });

  it("quantizes, inspects and evaluates through the CLI", () => {
    const out = join(tmp, "sm");
    const q = llmq(withPlugin, "quantize", "--model", fp, "--output", out, "--hf-config", '{"quant_method": "sign-magnitude", "group_size": 4}', "--json");
    expect(q.code, q.stderr).toBe(0);
    expect(JSON.parse(q.stdout)).toMatchObject({ quantizer: "sign-magnitude", config_class: "SignMagnitudeConfig", converted: 35 });
    const i = llmq(withPlugin, "inspect", out, "--json");
    expect(i.code, i.stderr).toBe(0);
    const info = JSON.parse(i.stdout);
    expect(info.hf_quantizer).toMatchObject({ method: "sign-magnitude", config_class: "SignMagnitudeConfig", flags: { quant_method: "sign-magnitude", group_size: 4 } });
    expect(info.tensors.some((t: { name: string }) => t.name === "model.layers.0.mlp.down_proj.weight_packed")).toBe(true);
    const e = llmq(withPlugin, "eval", "--model", out, "--reference", fp, "--dataset", join(root, "fixtures/wikitext-2/test.txt"), "--seq-len", "64", "--num-samples", "4", "--json");
    expect(e.code, e.stderr).toBe(0);
    const r = JSON.parse(e.stdout);
    // A 4-bit toy on a 260K-parameter model: clearly worse than the reference, clearly not noise.
    expect(r.kld.mean).toBeGreaterThan(0.01);
    expect(r.kld.mean).toBeLessThan(2);
    expect(r.top1).toBeGreaterThan(0.3);
  }, 120_000);

  it("refuses a plugin that does not import", () => {
    const bad = llmq({ LLMQ_PLUGINS: join(tmp, "missing.mjs") }, "--help");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("cannot import");
  });
});
