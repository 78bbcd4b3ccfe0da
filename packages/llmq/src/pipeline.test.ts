import { existsSync, mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type LayerState, type Modifier, type Tap, reducer, withTensors } from "@llmq/observers";
import { openCheckpoint } from "@llmq/serialization";
import { Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { tap } from "rxjs";
import { TestScheduler } from "rxjs/testing";
import { beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "./dataset.js";
import { formatLlmqError } from "./errors.js";
import { oneshot } from "./oneshot.js";
import { planPasses } from "./pipeline.js";
import { batchRanges, windowBatches$ } from "./window-batches.js";
import { recipeFromScheme, recipeFromYaml } from "./recipe.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// The generic pipeline with modifiers written here (as a researcher would): event order, the layer as the single
// source of truth, cancellation, the multi-modifier recipe semantics of llm-compressor, and what is refused up front.

const tmp = mkdtempSync(join(tmpdir(), "llmq-pipeline-"));
const fp = join(tmp, "fp");
// 4 windows of 24 token ids < 512 (stories260K's vocabulary), used as given.
const dataset: Dataset = {
  path: "windows",
  kind: "tokens",
  windows: Array.from({ length: 4 }, (_, w) => Int32Array.from({ length: 24 }, (_, t) => (w === 0 && t === 0 ? 1 : (w * 131 + t * 37) % 512))),
  tokens: 96,
};
const readTensors = async (dir: string): Promise<ReadonlyMap<string, Tensor>> => {
  const ck = must(await openCheckpoint(dir)());
  const out = new Map<string, Tensor>();
  for (const n of ck.names) out.set(n, must(await ck.read(n)()));
  await ck.close();
  return out;
};
const sameBytes = (a: Tensor, b: Tensor): boolean => a.dtype === b.dtype && Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength));

beforeAll(() => convertStories(fp));

/** A modifier that only logs the lifecycle calls it receives (and optionally taps q/k/v's input). */
const logger = (name: string, log: string[], needsData: boolean): Modifier<number, number> => ({
  type: name,
  requiresCalibrationData: needsData,
  initialize: () => {
    log.push(`${name} initialize`);
    return E.right(0);
  },
  onStart: (s) => {
    log.push(`${name} start`);
    return E.right(s);
  },
  onCalibrationEpochStart: (s) => {
    log.push(`${name} calibration_epoch_start`);
    return E.right(s);
  },
  ...(needsData
    ? { calibration: () => ({ linearInputs: new Set(["self_attn.q_proj"]), attentionKV: false, fold: reducer(() => 0, (n: number, t: Tap) => n + (t._tag === "LinearInput" ? 1 : 0)) }) }
    : {}),
  onSequentialEpochEnd: (s, layer, taps) => {
    log.push(`${name} sequential_epoch_end ${layer.index}${needsData ? ` taps ${taps}` : ""}`);
    return E.right({ state: s + 1, layer, warnings: [] });
  },
  onCalibrationEpochEnd: (s) => {
    log.push(`${name} calibration_epoch_end ${s}`);
    return E.right(s);
  },
  onEnd: (s) => {
    log.push(`${name} end`);
    return E.right(s);
  },
  onFinalize: (s) => {
    log.push(`${name} finalize`);
    return E.right(s);
  },
});

describe("pipeline choice (llm-compressor's CalibrationPipeline.from_modifiers, independent by default)", () => {
  it("gives each data-needing modifier its own pass in independent mode, all in one in sequential mode", () => {
    expect(planPasses([false, true, false, true, false], "independent")).toEqual(
      E.right([
        { pre: [0], data: [1], post: [] },
        { pre: [2], data: [3], post: [4] },
      ]),
    );
    expect(planPasses([false, true, false, true], "sequential")).toEqual(E.right([{ pre: [], data: [0, 1, 2, 3], post: [] }]));
    expect(planPasses([false, false], "independent")).toEqual(E.right([{ pre: [0, 1], data: [], post: [] }]));
    expect(E.isLeft(planPasses([true], "datafree"))).toBe(true);
  });
});

describe("the per-layer stream", () => {
  it("emits windows in order and ends when the signal aborts, between two windows (marbles)", () => {
    new TestScheduler((a, b) => expect(a).toEqual(b)).run(({ expectObservable }) => {
      const x = [0, 1, 2, 3].map((i) => ({ i, shape: [8, 2] }) as unknown as Tensor<"f32">);
      const lengths = x.map(() => 8);
      const get = (i: number): E.Either<string, Tensor<"f32">> => (i === 9 ? E.left("unreadable") : E.right(x[i]!));
      const one = (b: number) => E.right({ x: x[b], start: b, count: 1 });
      expectObservable(windowBatches$(lengths, get, undefined, 0, 8)).toBe("(abcd|)", { a: one(0), b: one(1), c: one(2), d: one(3) });
      const c = new AbortController();
      const aborting = windowBatches$(lengths, get, c.signal, 0, 8).pipe(tap((b) => E.isRight(b) && b.right.start === 1 && c.abort()));
      expectObservable(aborting).toBe("(ab|)", { a: one(0), b: one(1) });
      // A window that cannot be read (a spill file gone) ends the stream with its error.
      const failing = (i: number): E.Either<string, Tensor<"f32">> => (i === 2 ? E.left("unreadable") : E.right(x[i]!));
      expectObservable(windowBatches$(lengths, failing, undefined, 0, 8)).toBe("(abc|)", { a: one(0), b: one(1), c: E.left("unreadable") });
    });
  });

  it("batches consecutive equal-length windows up to the row budget, split at the report boundary, never tiny ones", () => {
    expect(batchRanges(Array(11).fill(512), 2048, 8)).toEqual([[0, 4], [4, 4], [8, 3]]);
    expect(batchRanges(Array(11).fill(512), 2048, 6)).toEqual([[0, 4], [4, 2], [6, 4], [10, 1]]);
    expect(batchRanges([100, 100, 50, 50, 50, 100], 1000, 0)).toEqual([[0, 2], [2, 3], [5, 1]]);
    expect(batchRanges([4, 4, 4], 1000, 0)).toEqual([[0, 1], [1, 1], [2, 1]]);
    expect(batchRanges([512, 512], 0, 8)).toEqual([[0, 1], [1, 1]]);
    expect(batchRanges([4096, 4096], 2048, 8)).toEqual([[0, 1], [1, 1]]);
  });

  it("gives the same checkpoint, bit for bit, when --max-memory spills the activations to disk (one pass and two)", async () => {
    for (const name of ["stories260k-w4a16-g32-gptq.yaml", "stories260k-smoothquant-w8a8-gptq.yaml"]) {
      const recipe = must(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes", name), "utf8")));
      const spill = mkdtempSync(join(tmp, "spill-"));
      const inMemory = join(tmp, `memory-${name}`);
      const spilled = join(tmp, `spilled-${name}`);
      must(await oneshot({ model: fp, output: inMemory, recipe, dataset })());
      // One window of 24 × 64 floats fits; the other three go to the spill file.
      must(await oneshot({ model: fp, output: spilled, recipe, dataset, maxMemory: 24 * 64 * 4, spillDir: spill })());
      const [a, b] = [await readTensors(inMemory), await readTensors(spilled)];
      expect([...b.keys()].sort()).toEqual([...a.keys()].sort());
      for (const [n, t] of a) expect(sameBytes(t, b.get(n)!), `${name}: ${n}`).toBe(true);
      expect(readdirSync(spill)).toEqual([]);
    }
  });

  it("runs the lifecycle in llm-compressor's order: all initialized and started, then pass by pass, then end and finalize", async () => {
    const log: string[] = [];
    const out = join(tmp, "order");
    must(await oneshot({ model: fp, output: out, modifiers: [logger("A", log, false), logger("B", log, true), logger("C", log, false)], dataset })());
    const layers = [0, 1, 2, 3, 4, 5].flatMap((i) => [`A sequential_epoch_end ${i}`, `B sequential_epoch_end ${i} taps ${i < 5 ? 4 : 0}`, `C sequential_epoch_end ${i}`]);
    expect(log).toEqual([
      ...["A", "B", "C"].flatMap((m) => [`${m} initialize`, `${m} start`]),
      ...["A", "B", "C"].map((m) => `${m} calibration_epoch_start`),
      ...layers,
      ...["A", "B", "C"].map((m) => `${m} calibration_epoch_end 6`),
      ...["A", "B", "C"].flatMap((m) => [`${m} end`, `${m} finalize`]),
    ]);
    // Nothing was quantized: a dense copy without quantization_config, as compressed-tensors saves such a model.
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).quantization_config).toBeUndefined();
  });

  it("gives every data-needing modifier its own full pass in independent mode", async () => {
    const log: string[] = [];
    must(await oneshot({ model: fp, output: join(tmp, "two-passes"), modifiers: [logger("A", log, true), logger("B", log, true)], dataset })());
    const ends = log.filter((l) => l.includes("epoch_end") || l.includes("epoch_start"));
    expect(ends[0]).toBe("A calibration_epoch_start");
    expect(ends.slice(1, 7)).toEqual([0, 1, 2, 3, 4, 5].map((i) => `A sequential_epoch_end ${i} taps ${i < 5 ? 4 : 0}`));
    expect(ends.slice(7, 9)).toEqual(["A calibration_epoch_end 6", "B calibration_epoch_start"]);
    expect(ends.at(-1)).toBe("B calibration_epoch_end 6");
  });

  it("ends on an abort in the middle of a layer's calibration and leaves nothing on disk", async () => {
    const c = new AbortController();
    const stopper: Modifier<null, number> = {
      type: "Stopper",
      requiresCalibrationData: true,
      initialize: () => E.right(null),
      calibration: (_s, layer: LayerState) => ({
        linearInputs: new Set(["mlp.down_proj"]),
        attentionKV: false,
        fold: reducer(
          () => 0,
          (n: number) => {
            if (layer.index === 2 && n === 1) c.abort(new Error("test abort"));
            return n + 1;
          },
        ),
      }),
      onSequentialEpochEnd: (s, layer) => E.right({ state: s, layer, warnings: [] }),
    };
    const out = join(tmp, "aborted");
    const r = await oneshot({ model: fp, output: out, modifiers: [stopper], dataset, signal: c.signal })();
    expect(E.isLeft(r) && r.left).toEqual({ _tag: "Aborted", detail: "test abort" });
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(tmp).filter((f) => f.includes("staging") || f.includes("tmp"))).toEqual([]);
  });
});

describe("the in-memory layer is the single source of truth", () => {
  it("a modifier's edit of a norm weight reaches the saved file, and RTN quantizes the edited weights", async () => {
    const doubleNorm: Modifier<null> = {
      type: "DoubleNorm",
      requiresCalibrationData: false,
      initialize: () => E.right(null),
      onSequentialEpochEnd: (s, layer) => {
        const n = layer.tensors.get("input_layernorm.weight");
        if (n === undefined) return E.right({ state: s, layer, warnings: [] });
        const f = toFloat32(n);
        return E.right({ state: s, layer: withTensors(layer, [["input_layernorm.weight", new Tensor("f32", f.shape, f.data.map((x) => 2 * x))]]), warnings: [] });
      },
    };
    const recipe = must(recipeFromScheme({ scheme: "W8A8", method: "rtn" }));
    const out = join(tmp, "norm-edit");
    must(await oneshot({ model: fp, output: out, recipe, modifiers: [doubleNorm, ...recipe.modifiers] })());
    const before = await readTensors(fp);
    const after = await readTensors(out);
    for (let i = 0; i < 5; i++) {
      const n = `model.layers.${i}.input_layernorm.weight`;
      expect(Array.from(toFloat32(after.get(n)!).data)).toEqual(Array.from(toFloat32(before.get(n)!).data, (x) => 2 * x));
      expect(sameBytes(after.get(`model.layers.${i}.post_attention_layernorm.weight`)!, before.get(`model.layers.${i}.post_attention_layernorm.weight`)!)).toBe(true);
    }
  });

  it("a weight edited after it was quantized is an error, not a stale checkpoint", async () => {
    const late: Modifier<null> = {
      type: "LateEdit",
      requiresCalibrationData: false,
      initialize: () => E.right(null),
      onSequentialEpochEnd: (s, layer) => {
        const w = layer.tensors.get("mlp.up_proj.weight");
        return E.right({ state: s, layer: w === undefined ? layer : withTensors(layer, [["mlp.up_proj.weight", new Tensor("f32", w.shape, toFloat32(w).data.slice())]]), warnings: [] });
      },
    };
    const recipe = must(recipeFromScheme({ scheme: "W8A8", method: "rtn" }));
    const r = await oneshot({ model: fp, output: join(tmp, "late"), recipe, modifiers: [...recipe.modifiers, late] })();
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "QuantizationError", module: "model.layers.0.mlp.up_proj" });
    expect(existsSync(join(tmp, "late"))).toBe(false);
  });
});

const TWO_STAGE = readFileSync(join(ROOT, "packages/llmq/fixtures/interop/recipes/two-stage-rtn-mlp-gptq-attn.yaml"), "utf8");

describe("recipes with several stages and modifiers", () => {
  it("RTN on the MLP then GPTQ on attention: MLP bytes as RTN alone, attention as GPTQ alone with an fp MLP (LC semantics)", async () => {
    const two = join(tmp, "two-stage");
    must(await oneshot({ model: fp, output: two, recipe: must(recipeFromYaml(TWO_STAGE)), dataset })());
    const rtnOnly = join(tmp, "rtn-mlp");
    const rtnYaml = TWO_STAGE.slice(0, TWO_STAGE.indexOf("gptq_stage:"));
    must(await oneshot({ model: fp, output: rtnOnly, recipe: must(recipeFromYaml(rtnYaml)), dataset })());
    const gptqOnly = join(tmp, "gptq-attn");
    must(await oneshot({ model: fp, output: gptqOnly, recipe: must(recipeFromYaml(TWO_STAGE.slice(TWO_STAGE.indexOf("gptq_stage:")))), dataset })());
    const [t2, tr, tg] = [await readTensors(two), await readTensors(rtnOnly), await readTensors(gptqOnly)];
    let compared = 0;
    for (const [n, t] of t2) {
      const ref = n.includes(".mlp.") ? tr.get(n) : n.includes(".self_attn.") ? tg.get(n) : tr.get(n);
      expect(ref !== undefined && sameBytes(t, ref), n).toBe(true);
      compared++;
    }
    expect(compared).toBe(t2.size);
    const qc = JSON.parse(readFileSync(join(two, "config.json"), "utf8")).quantization_config;
    // compressed-tensors names groups by first use in module order: attention comes first in each layer.
    expect(Object.keys(qc.config_groups)).toEqual(["group_0", "group_1", "group_2"]);
    expect(qc.config_groups.group_0.targets).toEqual(["re:.*self_attn\\.(q|k|v|o)_proj$"]);
    expect(qc.ignore).toEqual(["lm_head"]);
  });

  it("refuses what it cannot run before reading anything: a kv_cache_scheme it cannot calibrate, SparseGPT, overlapping targets", async () => {
    const kv = recipeFromYaml(`quant_stage:
  quant_modifiers:
    QuantizationModifier:
      scheme: FP8
      ignore: [lm_head]
      kv_cache_scheme: {num_bits: 8, type: float, strategy: channel, dynamic: false, symmetric: true}
`);
    const r = await oneshot({ model: fp, output: join(tmp, "kv"), recipe: must(kv), dataset })();
    expect(E.isLeft(r) && formatLlmqError(r.left)).toMatch(/kv_cache_scheme\.strategy: "channel" cannot be applied to the kv cache/);
    expect(existsSync(join(tmp, "kv"))).toBe(false);
    const sq = recipeFromYaml(`s_stage:
  s_modifiers:
    SparseGPTModifier: {sparsity: 0.5}
    GPTQModifier: {scheme: W8A8, ignore: [lm_head]}
`);
    expect(E.isLeft(sq) && sq.left).toMatchObject({ _tag: "RecipeError" });
    expect(E.isLeft(sq) && sq.left._tag === "RecipeError" && sq.left.detail).toMatch(
      /SparseGPTModifier.*QuantizationModifier, GPTQModifier, SmoothQuantModifier, AWQModifier, SpinQuantModifier, QuIPModifier/,
    );
    const both = recipeFromYaml(`a_stage:
  a_modifiers:
    QuantizationModifier: {scheme: W8A8, ignore: [lm_head]}
    GPTQModifier: {scheme: W8A8, ignore: [lm_head]}
`);
    const rb = await oneshot({ model: fp, output: join(tmp, "both"), recipe: must(both), dataset })();
    expect(E.isLeft(rb) && rb.left._tag === "RecipeError" && rb.left.detail).toMatch(/targeted by both QuantizationModifier and GPTQModifier/);
  });

  it("accepts start/end/update with a warning (oneshot ignores them, as llm-compressor's does)", async () => {
    const r = must(
      recipeFromYaml(`q_stage:
  q_modifiers:
    QuantizationModifier: {scheme: W8A8, ignore: [lm_head], start: 0, end: 2}
`),
    );
    expect(r.warnings).toEqual([
      "QuantizationModifier.end = 2 has no effect in oneshot (llm-compressor's oneshot ignores it too; it schedules training)",
    ]);
  });

  it("says that GPTQModifier.batched_quantization has no effect here", () => {
    const r = must(
      recipeFromYaml(`q_stage:
  q_modifiers:
    GPTQModifier: {scheme: W8A8, ignore: [lm_head], batched_quantization: 4}
`),
    );
    expect(r.warnings).toEqual([
      "GPTQModifier.batched_quantization = 4 has no effect in llmq (it batches modules on a GPU in llm-compressor; results do not depend on it)",
    ]);
    expect(must(recipeFromScheme({ scheme: "W8A8", method: "gptq" })).warnings).toEqual([]);
  });

  it("keeps typed causes: a group size that does not fit names the module, the modifier and the cause", async () => {
    const r = await oneshot({ model: fp, output: join(tmp, "g128"), recipe: must(recipeFromScheme({ scheme: "W4A16", method: "rtn" })) })();
    expect(E.isLeft(r) && r.left).toMatchObject({
      _tag: "QuantizationError",
      module: "model.layers.0.self_attn.q_proj",
      cause: { _tag: "ModifierError", modifier: "QuantizationModifier", module: "model.layers.0.self_attn.q_proj" },
    });
  });

  it("an out-of-vocabulary token id is a dataset error", async () => {
    const bad: Dataset = { ...dataset, windows: [Int32Array.from([1, 2, 600])] };
    const r = await oneshot({ model: fp, output: join(tmp, "oov"), recipe: must(recipeFromScheme({ scheme: "W8A8", method: "gptq" })), dataset: bad })();
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "DatasetError" });
  });
});
