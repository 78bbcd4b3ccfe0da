import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { lastValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync } from "node:fs";
import { type LoadedModel, generate, generateCommand, loadForGeneration, modelLogits, oneshot, recipeFromYaml, sampleToken } from "./index.js";
import { openModelDir } from "./open-model.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// Incremental decoding through the KV cache against recomputing the whole sequence, and against llama2.c's own greedy
// output for stories260K (its README).

const LLAMA2C_GREEDY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";

let tmp = "";
let fp = "";
let model: LoadedModel;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-generate-"));
  fp = join(tmp, "fp");
  await convertStories(fp);
  model = must(await loadForGeneration(must(await openModelDir(fp)()))());
}, 60_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const ids = async (kvCache: "f32" | "f16" | "fp8" | "int8" | "none", maxTokens: number, prompt = Int32Array.of(1)) =>
  (await lastValueFrom(generate(model, prompt, { maxTokens, kvCache, eosId: null }).pipe(toArray()))).map((r) => must(r).id);

describe("generate", () => {
  it("greedy from BOS gives llama2.c's 60 tokens of stories260K", async () => {
    const r = must(await generateCommand({ model: fp, prompt: "", maxTokens: 60, temperature: 0, topP: 1, seed: 0, ignoreEos: false })());
    expect(r.text).toBe(LLAMA2C_GREEDY);
    expect(r.kv_bytes_per_token).toBe(5 * 2 * 4 * 8 * 4); // 5 layers × (k, v) × 4 KV heads × head_dim 8 × f32
  });

  it("200 greedy tokens through the f32 cache equal recomputing the whole sequence at every step", async () => {
    const [cached, full] = [await ids("f32", 200), await ids("none", 200)];
    expect(cached).toHaveLength(200);
    expect(cached).toEqual(full);
  }, 120_000);

  it("quantized caches hold a quarter (fp8 / int8 + scales) and half (f16) of the f32 bytes and still decode sensibly", async () => {
    const f32 = await ids("f32", 40);
    for (const kv of ["f16", "fp8", "int8"] as const) {
      const got = await ids(kv, 40);
      const same = got.filter((t, i) => t === f32[i]).length;
      expect(same, kv).toBeGreaterThanOrEqual(kv === "f16" ? 40 : 20);
    }
    const r = (kv: "f16" | "fp8") => generateCommand({ model: fp, prompt: "Once", maxTokens: 8, temperature: 0, topP: 1, seed: 0, kvCache: kv, ignoreEos: true })();
    expect(must(await r("f16")).kv_bytes_per_token).toBe(640);
    expect(must(await r("fp8")).kv_bytes_per_token).toBe(5 * 2 * (32 + 4 * 4)); // codes + an f32 scale per KV head
  });

  it("top-p sampling is seeded and stays inside the nucleus; greedy takes the first maximum", () => {
    const logits = Float32Array.from([1, 3, 3, 0, 2]);
    expect(sampleToken(logits, 0, 1, 0.5)).toBe(1);
    // p ∝ e^l: each 3 holds 0.39 of the mass, the 2 0.14: top-p 0.3 keeps the first 3 alone, 0.9 adds the other and the 2
    expect(new Set([0.01, 0.5, 0.99].map((u) => sampleToken(logits, 1, 0.3, u)))).toEqual(new Set([1]));
    const draws = Array.from({ length: 200 }, (_, i) => sampleToken(logits, 1, 0.9, i / 200));
    expect(new Set(draws)).toEqual(new Set([1, 2, 4]));
  });

  it("sampled generations repeat with the seed", async () => {
    const run = (seed: number) => generateCommand({ model: fp, prompt: "Once upon", maxTokens: 30, temperature: 0.9, topP: 0.9, seed, ignoreEos: true })();
    const [a, b, c] = [must(await run(7)), must(await run(7)), must(await run(8))];
    expect(a.tokens).toEqual(b.tokens);
    expect(c.tokens).not.toEqual(a.tokens);
  });

  it("a rotated checkpoint decodes with its online transforms, as eval runs it (QuIP v + W4A16)", async () => {
    const quip = join(tmp, "quip");
    const recipe = must(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes/stories260k-quip-w4a16-g32.yaml"), "utf8")));
    must(await oneshot({ model: fp, output: quip, recipe })());
    const h = must(await openModelDir(quip)());
    const m = must(await loadForGeneration(h)());
    const got = (await lastValueFrom(generate(m, Int32Array.of(1), { maxTokens: 8, eosId: null }).pipe(toArray()))).map((r) => must(r).id);
    // eval's forward on the growing sequence, argmax of its last position
    const seq = [1];
    for (let s = 0; s < 8; s++) {
      const logits = must(await modelLogits(h, Int32Array.from(seq))()).data;
      const last = logits.subarray((seq.length - 1) * 512, seq.length * 512);
      seq.push(last.indexOf(Math.max(...last)));
    }
    await h.close();
    expect(got).toEqual(seq.slice(1));
  }, 60_000);

  it("bad options are usage errors before any token", async () => {
    const r = await lastValueFrom(generate(model, Int32Array.of(1), { maxTokens: 4, topP: 0 }).pipe(toArray()));
    expect(r).toHaveLength(1);
    expect(E.isLeft(r[0]!) && r[0].left).toMatchObject({ _tag: "UsageError" });
    const v = await lastValueFrom(generate(model, Int32Array.of(600), { maxTokens: 4 }).pipe(toArray()));
    expect(E.isLeft(v[0]!) && JSON.stringify(v[0].left)).toMatch(/outside the vocabulary of 512/);
    // the cache is sized for the whole sequence: past the model's positions is refused before anything is allocated
    const w = await lastValueFrom(generate(model, Int32Array.of(1, 2), { maxTokens: 10 ** 9 }).pipe(toArray()));
    expect(E.isLeft(w[0]!) && JSON.stringify(w[0].left)).toMatch(/exceed the model's 512 positions/);
  });
});
