import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { forwardLogits } from "@llmq/models";
import { writeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatLlmqError, hfQuantizeCommand, inspectCommand, openModelDir } from "./index.js";
import { logitsFile } from "./test-support/logits-file.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// `llmq quantize --hf-config` on stories260K. With LLMQ_PYTHON, tools/check_hf_quantized.py also has transformers
// quantize the same model on load (bytes and config must match) and load llmq's directory (logits within 1e-4):
//   LLMQ_PYTHON=$LLMQ_PYTHON npx vitest run src/hf-quantize.test.ts
const PY = process.env.LLMQ_PYTHON;
let dir: string;
let fp: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmq-hfq-"));
  fp = join(dir, "fp");
  await convertStories(fp);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const quantize = (name: string, hfConfig: string, dtype?: "float32" | "bfloat16" | "float16") =>
  hfQuantizeCommand({ model: fp, output: join(dir, name), hfConfig, dtype, overwrite: false })();

const CASES: ReadonlyArray<readonly [string, string, ("float32" | "bfloat16" | "float16")?]> = [
  ["nf4-dq", '{"load_in_4bit": true, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": true}'],
  ["fp4-bf16", '{"quant_method": "bitsandbytes", "load_in_4bit": true, "bnb_4bit_compute_dtype": "bfloat16"}', "bfloat16"],
  ["int8", '{"load_in_8bit": true, "llm_int8_threshold": 6.0}'],
];

describe("llmq quantize --hf-config (bitsandbytes)", () => {
  for (const [name, cfg, dtype] of CASES) {
    it(name, async () => {
      const r = must(await quantize(name, cfg, dtype));
      expect(r.converted).toBe(35);
      expect(r.quantizer).toBe(name.startsWith("int8") ? "bitsandbytes_8bit" : "bitsandbytes_4bit");
      // config.json keeps Python's floats (llm_int8_threshold must stay 6.0 for transformers' type check).
      expect(readFileSync(join(dir, name, "config.json"), "utf8")).toContain('"llm_int8_threshold": 6.0');
      const info = must(await inspectCommand(join(dir, name))()).hf_quantizer;
      expect(info).toMatchObject({ method: r.quantizer, config_class: "BitsAndBytesConfig", requires_calibration: false, is_serializable: true });
      const logits = await logitsFile(join(dir, name), forwardLogits);
      if (PY === undefined) return;
      const run = await promisify(execFile)(PY, [join(ROOT, "tools/check_hf_quantized.py"), fp, join(dir, name), logits, cfg], { maxBuffer: 1 << 24 }).catch(
        (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
      );
      const last = run.stdout.trim().split("\n").pop() ?? "";
      if (!last.startsWith("{")) throw new Error(`check_hf_quantized.py: ${run.stderr.slice(-3000)}`);
      const report = JSON.parse(last) as Record<string, unknown>;
      expect(report.ok, JSON.stringify(report)).toBe(true);
    }, 120_000);
  }

  it("hqq (hqq's HQQLinear layout; hqq itself reads it back)", async () => {
    const cfg = '{"quant_method": "hqq", "nbits": 4, "group_size": 64}';
    const r = must(await quantize("hqq", cfg));
    expect([r.quantizer, r.config_class, r.converted]).toEqual(["hqq", "HqqConfig", 35]);
    const h = must(await openModelDir(join(dir, "hqq"))());
    const weights = new Map<string, Tensor>();
    for (const l of h.linearModules().filter((m) => m.layer !== null)) weights.set(`${l.name}.weight`, must(await h.readTensor(`${l.name}.weight`)()));
    await h.close();
    const path = join(dir, "hqq.weights.safetensors");
    must(await writeSafetensors(path, weights, null)());
    if (PY === undefined) return;
    const run = await promisify(execFile)(PY, [join(ROOT, "tools/check_hqq_dir.py"), join(dir, "hqq"), path], { maxBuffer: 1 << 24 }).catch(
      (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
    );
    expect(run.stdout.trim().split("\n").pop(), run.stderr.slice(-2000)).toContain('"ok": true');
  }, 120_000);

  it("refuses before any work, naming the field and rule", async () => {
    const msg = async (cfg: string) => {
      const r = await quantize("never", cfg);
      expect(E.isLeft(r)).toBe(true);
      return E.isLeft(r) ? formatLlmqError(r.left) : "";
    };
    expect(await msg('{"load_in_4bit": true, "load_in_8bit": true}')).toContain("load_in_4bit and load_in_8bit are both True");
    expect(await msg('{"load_in_8bit": true, "llm_int8_threshold": 6}')).toContain("llm_int8_threshold must be a float");
    expect(await msg('{"load_in_4bit": true, "bnb_4bit_quant_type": "int4"}')).toContain('bnb_4bit_quant_type must be "nf4" or "fp4"');
    expect(await msg('{"quant_method": "gptq"}')).toContain("missing 1 required positional argument: 'bits'");
    expect(await msg('{"quant_method": "magic"}')).toContain("Unknown quantization type, got magic");
    expect(await msg('{"quant_method": "aqlm"}')).toContain("AQLM needs calibration");
    expect(await msg('{"quant_method": "quanto", "weights": "int4"}')).toContain("transformers cannot save quanto models");
    expect(await msg('{"load_in_4bit": tru')).toContain("is not JSON");
    expect(await msg(join(dir, "missing.json"))).toContain("cannot read the --hf-config file");
    const gguf = await hfQuantizeCommand({ model: join(ROOT, "fixtures/stories260K/stories260K.bin"), output: join(dir, "never"), hfConfig: '{"load_in_8bit": true}', overwrite: false })();
    expect(E.isLeft(gguf) && formatLlmqError(gguf.left)).toContain("is not a model directory with a config.json");
  });
});
