import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type PyJsonObject, dumpPythonJson, parsePythonJson } from "@llmq/serialization";
import { forwardLogits } from "@llmq/models";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hfQuantizeCommand, inspectCommand, modelLogits, openModelDir } from "./index.js";
import { safetensorsParts } from "./test-support/safetensors-parts.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// `llmq quantize --hf-config` with FbgemmFp8Config on stories260K against tools/gen_fbgemm_fp8_fixtures.py: the whole
// model.safetensors transformers 5.24 saves (its layout; the quantize op transliterated from FBGEMM's CUDA kernel,
// which cannot run here), byte for byte; then llmq reads it back and evaluates it with the run-time fp8 inputs.
const manifest = must(parsePythonJson(readFileSync(join(ROOT, "packages/hf-quantizers/fixtures/fbgemm-fp8/manifest.json"), "utf8"))) as PyJsonObject;
const cases = manifest.cases as Record<string, PyJsonObject>;
let dir: string;
let fp: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmq-fbgemm-"));
  fp = join(dir, "fp");
  await convertStories(fp);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("llmq quantize --hf-config (FbgemmFp8Config)", () => {
  for (const [name, want] of Object.entries(cases)) {
    it(name, async () => {
      const r = must(await hfQuantizeCommand({ model: fp, output: join(dir, name), hfConfig: dumpPythonJson(want.config as PyJsonObject), overwrite: false })());
      expect([r.quantizer, r.config_class, r.dtype]).toEqual(["fbgemm_fp8", "FbgemmFp8Config", "bfloat16"]);
      expect(r.warnings.join("\n")).toContain("cannot run here");
      expect(safetensorsParts(join(dir, name, "model.safetensors"))).toEqual({ n: want.header_length, entries: want.entries, metadata: want.metadata, sha: want.data_sha256 });
      const saved = must(parsePythonJson(readFileSync(join(dir, name, "config.json"), "utf8"))) as PyJsonObject;
      expect(dumpPythonJson(saved.quantization_config!, { sortKeys: true })).toBe(dumpPythonJson(want.quantization_config!, { sortKeys: true }));
      expect(must(await inspectCommand(join(dir, name))()).hf_quantizer).toMatchObject({ method: "fbgemm_fp8", config_class: "FbgemmFp8Config", is_serializable: true });
      // eval quantizes each converted linear's input to fp8 at run time: the logits differ from the weight-only forward.
      const h = must(await openModelDir(join(dir, name))());
      const tokens = Int32Array.from({ length: 24 }, (_, i) => (i === 0 ? 1 : (i * 37) % 512));
      const [logits, weightOnly] = [must(await modelLogits(h, tokens)()), must(await forwardLogits(h, tokens)())];
      await h.close();
      expect(logits.shape).toEqual([24, 512]);
      expect(logits.data.every(Number.isFinite)).toBe(true);
      expect(Buffer.from(logits.data.buffer).equals(Buffer.from(weightOnly.data.buffer))).toBe(false);
    }, 120_000);
  }
});
