import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { writeHfDirectory } from "./hf-directory.js";
import { convertLlama2c } from "./llama2c.js";
import { forwardLogits, modelFromSource } from "./model-handle.js";
import { openModel } from "./open-model.js";
import { loadTokenizer } from "./tokenizer.js";
import { memoryWeightSource } from "./weight-source.js";

const FX = new URL("../../../fixtures/stories260K/", import.meta.url).pathname;

const right = async <A>(t: () => Promise<E.Either<unknown, A>>): Promise<A> => {
  const r = await t();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

describe("writeHfDirectory (converted stories260K)", () => {
  it("writes an HF Llama directory that reopens losslessly, with a working tokenizer", async () => {
    const m = await right(convertLlama2c(`${FX}stories260K.bin`, { tokenizerBinPath: `${FX}tok512.bin` }));
    const out = join(mkdtempSync(join(tmpdir(), "llmq-hf-")), "stories260K");
    const w = await right(writeHfDirectory(out, m));
    expect(readdirSync(out).sort()).toEqual(
      ["config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json"].sort(),
    );
    expect(w.files).toHaveLength(6);
    expect(readdirSync(join(out, "..")).filter((n) => n.includes("llmq-"))).toEqual([]);
    const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as Record<string, unknown>;
    expect(cfg).toMatchObject({ tie_word_embeddings: true, rms_norm_eps: 1e-5, rope_theta: 10000, max_position_embeddings: 512, torch_dtype: "float32" });

    const h = await right(openModel(out));
    expect([...h.tensorNames()].sort()).toEqual([...m.tensors.keys()].sort());
    for (const [name, t] of m.tensors) {
      const back = await right(h.readTensor(name));
      expect(back.dtype).toBe("f32");
      expect(back.data).toEqual(t.data);
    }
    const mem = modelFromSource("mem", m.configJson, memoryWeightSource(m.tensors));
    if (E.isLeft(mem)) throw new Error("mem");
    const tokens = Int32Array.from([1, 403, 407, 261, 378]);
    expect((await right(forwardLogits(h, tokens))).data).toEqual((await right(forwardLogits(mem.right, tokens))).data);
    await h.close();

    const tok = await right(loadTokenizer(out));
    expect(tok.encode("Once upon a time", { bos: true })).toEqual([1, 403, 407, 261, 378]);
  });

  it("refuses a non-empty output directory unless overwrite, and then replaces it", async () => {
    const m = await right(convertLlama2c(`${FX}stories260K.bin`));
    const out = join(mkdtempSync(join(tmpdir(), "llmq-hf-")), "out");
    mkdirSync(out);
    writeFileSync(join(out, "stale.txt"), "x");
    expect(await writeHfDirectory(out, m)()).toEqual(E.left({ _tag: "OutputExists", path: out }));
    expect(readdirSync(out)).toEqual(["stale.txt"]);
    await right(writeHfDirectory(out, m, { overwrite: true }));
    expect(existsSync(join(out, "stale.txt"))).toBe(false);
    expect(readdirSync(out).sort()).toEqual(["config.json", "generation_config.json", "model.safetensors"]);
  });
});
