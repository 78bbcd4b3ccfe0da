import { readFileSync } from "node:fs";
import { join } from "node:path";
import { decodeLlamaConfig, memoryWeightSource, modelFromSource, modelTensorProblems } from "@llmq/models";
import fc from "fast-check";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { parse as parseYaml, stringify as stringifyYaml } from "yaml";
import { type DatasetTokenizer, detectKind, jsonlWindows, textWindows, tokenWindows } from "./dataset.js";
import { formatLlmqError } from "./errors.js";
import { recipeFromYaml } from "./recipe.js";
import { ROOT } from "./test-support/stories260k.js";

// Property-style fuzzing of every parser a user's files reach: config.json, recipes (YAML and JSON), text / JSONL
// datasets and the token-array JSON. Each input either decodes or is a typed Left with a one-line message; nothing
// throws. Inputs are random values and mutations of valid files (a field replaced, deleted or retyped), which reach
// deeper than random text. LLMQ_FUZZ_RUNS sets the cases per property (CI default 2000; 100000 was run locally).

const RUNS = Number(process.env.LLMQ_FUZZ_RUNS ?? 2000);
const opts = { numRuns: RUNS, seed: Number(process.env.LLMQ_FUZZ_SEED ?? 12) };

const STORIES_CONFIG: Record<string, unknown> = {
  architectures: ["LlamaForCausalLM"],
  hidden_size: 64,
  intermediate_size: 172,
  max_position_embeddings: 512,
  model_type: "llama",
  num_attention_heads: 8,
  num_hidden_layers: 5,
  num_key_value_heads: 4,
  rms_norm_eps: 1e-5,
  rope_theta: 10000,
  tie_word_embeddings: true,
  vocab_size: 512,
  head_dim: 8,
  bos_token_id: 1,
};

/** Values that break decoders: wrong types, extremes, nesting. */
const hostileValue = fc.oneof(
  fc.jsonValue({ maxDepth: 2 }),
  fc.constantFrom(0, -1, 1.5, 2 ** 53, 2 ** 31, Number.MAX_VALUE, 1e308, -0, "", "64", null, true, [], {}, [64], { rope_type: "llama3" }),
);

/** A JSON object with some of `base`'s fields replaced, retyped or deleted, and maybe some added. */
const mutated = (base: Record<string, unknown>) =>
  fc
    .tuple(
      fc.array(fc.tuple(fc.constantFrom(...Object.keys(base), "rope_scaling", "rope_parameters", "sliding_window", "torch_dtype"), fc.option(hostileValue)), {
        maxLength: 4,
      }),
    )
    .map(([edits]) => {
      const o: Record<string, unknown> = { ...base };
      for (const [k, v] of edits) {
        if (v === null) delete o[k];
        else o[k] = v;
      }
      return o;
    });

const noThrowOneLine = (label: string, f: () => E.Either<unknown, unknown>, format?: (e: never) => string): void => {
  let r: E.Either<unknown, unknown>;
  try {
    r = f();
  } catch (e) {
    throw new Error(`${label} threw ${(e as Error)?.stack ?? String(e)}`);
  }
  if (E.isLeft(r) && format) expect(format(r.left as never)).not.toMatch(/\n/);
};

describe(`fuzz: config.json (${RUNS} cases per property; LLMQ_FUZZ_RUNS)`, () => {
  it("random JSON and mutated configs decode or fail as values; a decoded config opens and is checked without throwing", () => {
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 3 }), mutated(STORIES_CONFIG)), (raw) => {
        noThrowOneLine("decodeLlamaConfig", () => decodeLlamaConfig("config.json", raw));
        const h = modelFromSource("m", raw, memoryWeightSource(new Map()));
        if (E.isRight(h)) {
          // An empty checkpoint: every decoded config must name what is missing, in bounded time.
          const p = modelTensorProblems(h.right);
          expect(p.length).toBeGreaterThan(0);
          expect(p.length).toBeLessThanOrEqual(11);
        }
      }),
      opts,
    );
  });

  it("config.json text: random and truncated text never throws past JSON.parse's own error", () => {
    const text = JSON.stringify(STORIES_CONFIG);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.nat(text.length).map((n) => text.slice(0, n))), (t) => {
        let raw: unknown;
        try {
          raw = JSON.parse(t);
        } catch {
          return; // the CLI reports this as "not valid JSON"
        }
        noThrowOneLine("decodeLlamaConfig", () => decodeLlamaConfig("config.json", raw));
      }),
      opts,
    );
  });
});

describe(`fuzz: recipes (${RUNS} cases per property)`, () => {
  const valid = parseYaml(readFileSync(join(ROOT, "fixtures/recipes/stories260k-w4a16-g32-gptq.yaml"), "utf8")) as Record<string, unknown>;
  const leafPaths = (o: unknown, path: string[] = []): string[][] =>
    typeof o === "object" && o !== null && !Array.isArray(o) ? Object.entries(o).flatMap(([k, v]) => [[...path, k], ...leafPaths(v, [...path, k])]) : [];
  const paths = leafPaths(valid);
  const mutatedRecipe = fc.tuple(fc.constantFrom(...paths), fc.option(hostileValue), fc.boolean()).map(([path, v, asJson]) => {
    const copy = structuredClone(valid);
    let o = copy as Record<string, unknown>;
    for (const k of path.slice(0, -1)) o = o[k] as Record<string, unknown>;
    if (v === null) delete o[path[path.length - 1]!];
    else o[path[path.length - 1]!] = v;
    return asJson ? JSON.stringify(copy) : stringifyYaml(copy);
  });

  it("random text, random JSON and mutated recipes (YAML or JSON) decode or fail with one line", () => {
    fc.assert(
      fc.property(fc.oneof(fc.string({ maxLength: 200 }), fc.jsonValue({ maxDepth: 4 }).map((v) => JSON.stringify(v)), mutatedRecipe), (text) => {
        noThrowOneLine("recipeFromYaml", () => recipeFromYaml(text), formatLlmqError);
      }),
      opts,
    );
  });
});

describe(`fuzz: datasets and token arrays (${RUNS} cases per property)`, () => {
  const tok: DatasetTokenizer = { encode: (t, o) => [...(o.bos ? [1] : []), ...Array.from(t, (c) => (c.codePointAt(0) ?? 0) % 512)], bosId: 1 };
  const seqLen = fc.option(fc.integer({ min: -2, max: 300 }), { nil: undefined });

  it("token-array JSON: any JSON value gives windows of in-range ids or a Left naming the item and position", () => {
    const nearTokens = fc.array(fc.array(fc.oneof(fc.integer({ min: -5, max: 600 }), hostileValue), { maxLength: 8 }), { maxLength: 6 });
    fc.assert(
      fc.property(fc.oneof(fc.jsonValue({ maxDepth: 3 }), nearTokens), seqLen, (json, L) => {
        const r = tokenWindows("ids.json", json, { vocabSize: 512, seqLen: L });
        if (E.isRight(r)) for (const w of r.right) expect(w.every((t) => t >= 0 && t < 512)).toBe(true);
        else expect(formatLlmqError(r.left)).toMatch(/^dataset ids\.json — /);
      }),
      opts,
    );
  });

  it("token-array JSON text: truncated and random text never throws past JSON.parse", () => {
    const text = JSON.stringify([[1, 2, 3], [4, 5, 6, 7]]);
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.nat(text.length).map((n) => text.slice(0, n))), (t) => {
        let json: unknown;
        try {
          json = JSON.parse(t);
        } catch {
          return;
        }
        noThrowOneLine("tokenWindows", () => tokenWindows("ids.json", json, { vocabSize: 512 }), formatLlmqError);
      }),
      opts,
    );
  });

  it("text and JSONL datasets: any text gives windows within seqLen or a Left", () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 300, unit: "grapheme-composite" }), fc.integer({ min: 2, max: 64 }), (t, L) => {
        const w = textWindows("d.txt", t, tok, { seqLen: L });
        if (E.isRight(w)) for (const x of w.right) expect(x.length).toBeLessThanOrEqual(L);
        const j = jsonlWindows("d.jsonl", t, tok, { seqLen: L });
        if (E.isRight(j)) for (const x of j.right) expect(x.length).toBeLessThanOrEqual(L);
        expect(["text", "tokens", "jsonl"]).toContain(detectKind("d.bin", t));
        expect(detectKind("d.txt", t)).toBe("text");
      }),
      opts,
    );
  });

  it("JSONL lines built from random JSON values decode or name the line", () => {
    fc.assert(
      fc.property(fc.array(fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.record({ text: fc.string() })), { maxLength: 5 }), (rows) => {
        const r = jsonlWindows("d.jsonl", rows.map((x) => JSON.stringify(x)).join("\n"), tok, { seqLen: 16 });
        if (E.isLeft(r)) expect(formatLlmqError(r.left)).toMatch(/line \d+/);
      }),
      opts,
    );
  });
});
