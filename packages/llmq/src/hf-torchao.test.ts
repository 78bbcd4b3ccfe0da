import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type PyJsonObject, dumpPythonJson, parsePythonJson, writeSafetensors } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatLlmqError, hfQuantizeCommand, inspectCommand, modelLogits, openModelDir } from "./index.js";
import { safetensorsParts } from "./test-support/safetensors-parts.js";
import { logitsFile } from "./test-support/logits-file.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// `llmq quantize --hf-config` with TorchAoConfig on stories260K against transformers 5.24 + torchao 0.18
// (tools/gen_torchao_fixtures.py made the manifest: the whole model.safetensors header and its data's sha256). With
// LLMQ_PYTHON, tools/check_torchao_dir.py also quantizes live and loads llmq's directory with torchao (logits within 1e-4
// for weight-only; dynamic int8 activations within 5e-2: torchao's per-token scale puts each token's largest |x| on a
// rounding tie, so the last ulp of an activation decides a code — see the script):
// Int4WeightOnlyConfig (Int4Tensor): its forward is a CUDA kernel, so the script checks llmq's dequantized weights
// against torchao's int4 dequantization instead of logits; it needs LLMQ_MSLK (tools/mslk_shim.py):
//   LLMQ_PYTHON=$LLMQ_PYTHON LLMQ_MSLK=<MSLK clone> npx vitest run src/hf-torchao.test.ts
const PY = process.env.LLMQ_PYTHON;
const manifest = must(parsePythonJson(readFileSync(join(ROOT, "packages/hf-quantizers/fixtures/torchao/manifest.json"), "utf8"))) as PyJsonObject;
const cases = manifest.cases as Record<string, PyJsonObject>;
let dir: string;
let fp: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmq-torchao-"));
  fp = join(dir, "fp");
  await convertStories(fp);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));


/** llmq's reader on an Int4WeightOnlyConfig directory: every quantized linear's weight, dequantized (f32). */
const denseWeights = async (model: string): Promise<string> => {
  const h = must(await openModelDir(model)());
  const names = h.tensorNames().filter((n) => n.endsWith("_proj.weight"));
  const tensors = new Map(await Promise.all(names.map(async (n) => [n, must(await h.readTensor(n)())] as const)));
  await h.close();
  const path = `${model}.weights.safetensors`;
  must(await writeSafetensors(path, tensors, null)());
  return path;
};

const pythonCheck = async (name: string, cfg: string, logits: string, weights: string[]): Promise<Record<string, unknown>> => {
  const args = [join(ROOT, "tools/check_torchao_dir.py"), fp, join(dir, name), logits, cfg, join(dir, `${name}.transformers`), ...weights];
  const run = await promisify(execFile)(PY!, args, { maxBuffer: 1 << 24 }).catch((e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }));
  const last = run.stdout.trim().split("\n").pop() ?? "";
  if (!last.startsWith("{")) throw new Error(`check_torchao_dir.py: ${run.stderr.slice(-3000)}`);
  return JSON.parse(last) as Record<string, unknown>;
};

describe("llmq quantize --hf-config (TorchAoConfig, torchao 0.18 Int8Tensor)", () => {
  for (const [name, want] of Object.entries(cases)) {
    it(name, async () => {
      const cfg = dumpPythonJson(want.config as PyJsonObject);
      const r = must(await hfQuantizeCommand({ model: fp, output: join(dir, name), hfConfig: cfg, dtype: want.dtype as "float32", overwrite: false })());
      expect([r.quantizer, r.config_class, r.dtype]).toEqual(["torchao", "TorchAoConfig", want.saved_dtype]);
      // model.safetensors = transformers' save_pretrained: header length, entries, metadata (as a map), data bytes.
      const got = safetensorsParts(join(dir, name, "model.safetensors"));
      expect(got).toEqual({ n: want.header_length, entries: want.entries, metadata: Object.fromEntries(Object.entries(want.metadata as Record<string, string>).sort()), sha: want.data_sha256 });
      const qc = (JSON.parse(readFileSync(join(dir, name, "config.json"), "utf8")) as { quantization_config: unknown }).quantization_config;
      expect(qc).toEqual(want.quantization_config);
      const info = must(await inspectCommand(join(dir, name))()).hf_quantizer;
      expect(info).toMatchObject({ method: "torchao", config_class: "TorchAoConfig", requires_calibration: false, is_serializable: true });
      const logits = await logitsFile(join(dir, name), modelLogits);
      if (PY === undefined) return;
      const int4 = ((want.config as PyJsonObject).quant_type as { default: PyJsonObject }).default._type === "Int4WeightOnlyConfig";
      const report = await pythonCheck(name, cfg, logits, int4 ? [await denseWeights(join(dir, name))] : []);
      expect(report.ok, JSON.stringify(report)).toBe(true);
      // llmq reads what transformers + torchao saved: the same logits as from its own (byte-identical) directory.
      const theirs = must(await openModelDir(join(dir, `${name}.transformers`))());
      const tokens = Int32Array.from({ length: 48 }, (_, i) => (i === 0 ? 1 : (i * 37) % 512));
      const [a, b] = [must(await modelLogits(theirs, tokens)()), must(await modelLogits(must(await openModelDir(join(dir, name))()), tokens)())];
      await theirs.close();
      expect(Buffer.from(a.data.buffer).equals(Buffer.from(b.data.buffer))).toBe(true);
    }, 180_000);
  }

  it("refuses an int4 layout it cannot match (preshuffled) before any work, with the reason", async () => {
    const cfg = '{"quant_method": "torchao", "quant_type": {"default": {"_type": "Int4WeightOnlyConfig", "_version": 2, "_data": {"group_size": 32, "int4_packing_format": "preshuffled"}}}}';
    const r = await hfQuantizeCommand({ model: fp, output: join(dir, "never"), hfConfig: cfg, overwrite: false })();
    expect(E.isLeft(r) && formatLlmqError(r.left)).toContain("int4_packing_format preshuffled");
  });
});
