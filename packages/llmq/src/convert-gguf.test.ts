// `llmq convert --from gguf` on SmolLM2-135M-Instruct (fetched by tools/fetch_smollm2.sh into .models/; the tests
// that need it skip with a message when it cannot be had). Numerics against transformers: packages/models smollm2.test.ts.
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { forwardLogits, openModel } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { convertCommand, formatConvert } from "./convert-command.js";
import { formatInspect, inspectCommand } from "./inspect-command.js";
import { quantizeCommand } from "./quantize-command.js";
import { openModelDir, optionalTokenizer } from "./open-model.js";

const ROOT = new URL("../../../", import.meta.url).pathname;
const MODEL = join(ROOT, ".models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
const tmp = mkdtempSync(join(tmpdir(), "llmq-convert-gguf-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const available = ((): boolean => {
  if (!existsSync(MODEL) && process.env.LLMQ_NO_FETCH !== "1") {
    try {
      execFileSync("bash", [join(ROOT, "tools/fetch_smollm2.sh")], { stdio: "pipe", timeout: 300_000 });
    } catch {
      // reported below
    }
  }
  if (!existsSync(MODEL)) console.warn(`convert --from gguf tests on SmolLM2 skipped: ${MODEL} is absent (bash tools/fetch_smollm2.sh)`);
  return existsSync(MODEL);
})();

describe("llmq convert --from gguf", () => {
  it("--tokenizer with a GGUF source is a usage error before any work", async () => {
    const r = await convertCommand({ from: "gguf", model: "x.gguf", tokenizer: "t.bin", output: join(tmp, "never"), overwrite: false })();
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "UsageError", option: "--tokenizer" });
    expect(existsSync(join(tmp, "never"))).toBe(false);
  });

  it("a missing or non-GGUF file is one model error, nothing written", async () => {
    const r = await convertCommand({ from: "gguf", model: join(ROOT, "fixtures/stories260K/stories260K.bin"), output: join(tmp, "bad"), overwrite: false })();
    expect(E.isLeft(r) && r.left._tag).toBe("ModelError");
    expect(existsSync(join(tmp, "bad"))).toBe(false);
  });

  it.skipIf(!available)("SmolLM2 Q4_1 → an HF directory llmq opens (f32, tied head, tokenizer files)", async () => {
    const out = join(tmp, "smollm2-f32");
    const r = await convertCommand({ from: "gguf", model: MODEL, output: out, overwrite: false })();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    expect(r.right).toMatchObject({ tensors: 272, parameters: 134_515_008, dtype: "f32", tokenizer: true, sourceTypes: { Q4_1: 210, F32: 61, Q8_0: 1 }, warnings: [] });
    expect(formatConvert(r.right)).toContain("210 Q4_1");
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg).toMatchObject({ torch_dtype: "float32", tie_word_embeddings: true, num_key_value_heads: 3 });
    const m = await openModel(out)();
    if (E.isLeft(m)) throw new Error(JSON.stringify(m.left));
    expect(m.right.config.num_hidden_layers).toBe(30);
    await m.right.close();
  }, 120_000);

  it("--dtype bf16 casts every tensor (round half to even) and says so in config.json (llama2c source: small)", async () => {
    const out = join(tmp, "stories-bf16");
    const r = await convertCommand({ from: "llama2c", model: join(ROOT, "fixtures/stories260K/stories260K.bin"), output: out, overwrite: false, dtype: "bf16" })();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    expect(r.right.dtype).toBe("bf16");
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).torch_dtype).toBe("bfloat16");
    const m = await openModel(out)();
    if (E.isLeft(m)) throw new Error(JSON.stringify(m.left));
    const w = await m.right.readTensor("model.layers.0.self_attn.q_proj.weight")();
    await m.right.close();
    expect(E.isRight(w) && w.right.dtype).toBe("bf16");
  });

  it.skipIf(!available)("eval / quantize open the .gguf itself: same logits as the converted f32 directory, tokenizer from the metadata", async () => {
    const out = join(tmp, "smollm2-f32"); // written by the first test
    const tok = await optionalTokenizer(MODEL)();
    if (E.isLeft(tok) || tok.right === null) throw new Error("no tokenizer from the GGUF metadata");
    const ids = Int32Array.from(tok.right.encode("The capital of France is", { bos: false }));
    expect([...ids]).toEqual([504, 3575, 282, 4649, 314]);
    const logits = [];
    for (const path of [MODEL, out]) {
      const h = await openModelDir(path)();
      if (E.isLeft(h)) throw new Error(JSON.stringify(h.left));
      const l = await forwardLogits(h.right, ids)();
      await h.right.close();
      if (E.isLeft(l)) throw new Error(JSON.stringify(l.left));
      logits.push(l.right.data as Float32Array);
    }
    expect(logits[0]).toEqual(logits[1]);
  }, 120_000);

  it.skipIf(!available || process.env.LLMQ_PYTHON === undefined)("transformers loads the f32 conversion with every tensor equal to its own GGUF loader's, and equal logits (LLMQ_PYTHON)", () => {
    const out = join(tmp, "smollm2-f32");
    const r = spawnSync(process.env.LLMQ_PYTHON!, [join(ROOT, "tools/check_gguf_convert.py"), out, MODEL], { encoding: "utf8", timeout: 300_000 });
    expect(r.status, r.stderr.slice(-2000)).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!)).toMatchObject({ tensors: 273, differing_tensors: [], max_abs_logit_diff: 0, tokenizer_ids_equal: true });
  }, 300_000);

  it.skipIf(!available)("quantize --model file.gguf: dequantized beside the output, quantized, the copy removed, with a warning", async () => {
    const out = join(tmp, "smollm2-w8a8");
    const r = await quantizeCommand({ model: MODEL, output: out, scheme: "W8A8", method: "rtn", numSamples: 1, seqLen: 8, seed: 0, overwrite: false })();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    expect(r.right.warnings.join("\n")).toMatch(/is a gguf checkpoint \(1 Q8_0, 61 F32, 210 Q4_1\): it was dequantized to f32 and re-quantized/);
    expect(readdirSync(tmp).filter((n) => n.startsWith(".llmq-dequantized-"))).toEqual([]);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
    expect(cfg.quantization_config.quant_method).toBe("compressed-tensors");
    expect(existsSync(join(out, "tokenizer.json"))).toBe(true);
  }, 300_000);

  it.skipIf(!available)("inspect reads a .gguf: metadata, ggml types, torch-order shapes", async () => {
    const r = await inspectCommand(MODEL)();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    expect(r.right).toMatchObject({ format: "gguf", files: 1, quantization_config: null });
    expect(r.right.tensors.find((t) => t.name === "token_embd.weight")).toMatchObject({ dtype: "Q8_0", shape: [49152, 576] });
    expect(r.right.gguf_metadata?.["llama.attention.head_count_kv"]).toBe(3);
    expect(formatInspect(r.right)).toContain("general.architecture: llama");
  });
});
