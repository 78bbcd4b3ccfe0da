import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { decodeQuantizationArgs } from "@llmq/schemes";
import { type Tensor, toFloat32, toFloat64 } from "@llmq/tensor";
import { type BalanceLayer, awqGrid, awqScales, awqWeightMean, smoothQuantScales, smoothingEdits } from "@llmq/transforms";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTensors } from "./test-support/read-tensors.js";
import { convertCommand, formatLlmqError, loadDataset, oneshot, optionalTokenizer, recipeFromYaml, schemes, transforms } from "./index.js";
import type { LayerReport } from "./pipeline.js";

// SmoothQuant and AWQ against llm-compressor 0.14 itself: packages/llmq/fixtures/transforms, made by
// tools/gen_transform_fixtures.py (the command is at its top), records what LC computed per mapping on a tiny random
// Llama (f32 and bf16, MHA so v_proj → o_proj applies) and on stories260K (GQA). The math is checked on LC's own
// inputs (statistics, weights), the whole modifier by running llmq's oneshot on the same windows and recipe.

const FX = new URL("../fixtures/transforms/", import.meta.url).pathname;
const ROOT = new URL("../../../fixtures/", import.meta.url).pathname;

interface MappingRecord {
  readonly smooth: string;
  readonly balance: ReadonlyArray<string>;
  readonly parent?: string;
  readonly grid?: ReadonlyArray<readonly [number, boolean]>;
  readonly losses?: ReadonlyArray<number>;
}

interface Records {
  readonly mappings: ReadonlyArray<MappingRecord>;
  readonly tensors: ReadonlyMap<string, Tensor>;
}

const right = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};


const records = async (dir: string, recipe: string): Promise<Records> => ({
  mappings: (JSON.parse(readFileSync(join(dir, `${recipe}.json`), "utf8")) as { mappings: MappingRecord[] }).mappings,
  tensors: await readTensors(join(dir, `${recipe}.safetensors`)),
});

/** LC's strict minimum over the grid losses (first wins). */
const best = (m: MappingRecord): number => m.losses!.reduce((b, l, i) => (l < m.losses![b]! ? i : b), 0);

/** max |a − b| / max |b| over the elements (0 when equal). */
const relDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let d = 0;
  let m = 0;
  for (let i = 0; i < b.length; i++) {
    d = Math.max(d, Math.abs(a[i]! - b[i]!));
    m = Math.max(m, Math.abs(b[i]!));
  }
  return m === 0 ? d : d / m;
};

const differing = (a: Tensor, b: Tensor): number => {
  const x = toFloat32(a).data;
  const y = toFloat32(b).data;
  let n = 0;
  for (let i = 0; i < y.length; i++) if (!Object.is(x[i], y[i])) n++;
  return n;
};

const local = (full: string): string => full.replace(/^model\.layers\.\d+\./, "");

let tmp = "";
const CASES: Record<string, { dir: string; model: string; windows: string }> = {};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-transforms-"));
  const st = join(tmp, "stories260k");
  right(await convertCommand({ from: "llama2c", model: `${ROOT}stories260K/stories260K.bin`, tokenizer: `${ROOT}stories260K/tok512.bin`, output: st, overwrite: false })());
  CASES["tiny-f32"] = { dir: `${FX}tiny-f32`, model: `${FX}tiny-f32`, windows: `${FX}tiny-f32/windows.json` };
  CASES["tiny-bf16"] = { dir: `${FX}tiny-bf16`, model: `${FX}tiny-bf16`, windows: `${FX}tiny-bf16/windows.json` };
  CASES.stories260k = { dir: `${FX}stories260k`, model: st, windows: `${FX}stories260k-windows.json` };
}, 120_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("SmoothQuant: llmq's math on llm-compressor's statistics", () => {
  for (const name of ["tiny-f32", "tiny-bf16", "stories260k"]) {
    it(`${name}: scales within 1 ulp of the model dtype, smoothed weights bit-identical`, async () => {
      const c = CASES[name]!;
      const r = await records(c.dir, "smoothquant-w8a8");
      const model = await readTensors(join(c.model, "model.safetensors"));
      expect(r.mappings.length).toBeGreaterThanOrEqual(4);
      let unequal = 0;
      let total = 0;
      for (const m of r.mappings) {
        const balance = m.balance.map((b) => model.get(`${b}.weight`)!);
        const dtype = balance[0]!.dtype === "bf16" ? "bf16" : "f32";
        const range = { min: toFloat32(r.tensors.get(`sq.${m.smooth}.min`)!).data, max: toFloat32(r.tensors.get(`sq.${m.smooth}.max`)!).data };
        const lc = toFloat32(r.tensors.get(`sq.${m.smooth}.scales`)!).data;
        const ours = smoothQuantScales(range, balance, 0.8, "smoothquant", dtype);
        unequal += ours.filter((v, j) => v !== lc[j]).length;
        total += lc.length;
        // pow: torch's vectorised powf (≤ 1 ulp) against a correctly rounded pow, then one division.
        expect(relDiff(ours, lc), m.smooth).toBeLessThanOrEqual(dtype === "bf16" ? 2 ** -8 : 2 ** -22);
        const after = r.tensors.get(`after.${m.smooth}.weight`);
        if (after === undefined) continue;
        const tensors = new Map([[`${local(m.smooth)}.weight`, model.get(`${m.smooth}.weight`)!]]);
        const edits = new Map(smoothingEdits(tensors, local(m.smooth), m.balance.map((b, i) => [local(b), balance[i]!] as const), lc));
        expect(differing(edits.get(`${local(m.smooth)}.weight`)!, after), m.smooth).toBe(0);
        for (const b of m.balance) expect(differing(edits.get(`${local(b)}.weight`)!, r.tensors.get(`after.${b}.weight`)!), b).toBe(0);
      }
      console.log(`${name}: SmoothQuant scales from LC's statistics: ${total - unequal}/${total} bit-identical`);
    });
  }
});

/**
 * A weight right after mapping i (the fixture snapshots weights before each mapping and at the layer's end): the
 * snapshot before the next mapping of the layer that touches it, else the layer-end one.
 */
const afterMapping = (r: Records, i: number, n: string): Tensor => {
  const layer = (s: string) => /^model\.layers\.(\d+)\./.exec(s)?.[1];
  const later = r.mappings.slice(i + 1).find((m) => layer(m.smooth) === layer(n) && (m.smooth === n || m.balance.includes(n)));
  const t = later !== undefined ? r.tensors.get(`before.${later.smooth}.${n}.weight`) : r.tensors.get(`after.${r.mappings[i]!.smooth}.${n}.weight`);
  if (t === undefined) throw new Error(`no snapshot of ${n} after mapping ${i}`);
  return t;
};

const AWQ_ARGS = (name: string) =>
  right(decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: name.startsWith("stories") ? 32 : 16 }));

describe("AWQ: llmq's math on llm-compressor's statistics", () => {
  it("the grid is LC's: (0, no duo) then 19 duo ratios k/18", () => {
    expect(awqGrid(true, 20)).toEqual([[0, false], ...Array.from({ length: 19 }, (_, k) => [k / 18, true])]);
  });

  for (const name of ["tiny-f32", "tiny-bf16", "stories260k"]) {
    it(`${name}: w̄ to 1e-12, best scales to 2^-22, balanced weights bit-identical`, async () => {
      const c = CASES[name]!;
      const r = await records(c.dir, "awq-w4a16-asym");
      expect(r.mappings.length).toBeGreaterThanOrEqual(6);
      let checked = 0;
      for (const [i, m] of r.mappings.entries()) {
        expect(m.grid).toEqual(awqGrid(true, 20));
        const before = m.balance.map((b) => r.tensors.get(`before.${m.smooth}.${b}.weight`));
        const xMean = toFloat32(r.tensors.get(`awq.${m.smooth}.x_mean`)!).data;
        const lcWMean = toFloat64(r.tensors.get(`awq.${m.smooth}.w_mean`)!).data;
        const [ratio, duo] = m.grid![best(m)]!;
        const lcScales = toFloat64(r.tensors.get(`awq.${m.smooth}.scales`)!).data;
        expect(relDiff(awqScales(xMean, lcWMean, ratio, duo), lcScales), m.smooth).toBeLessThanOrEqual(2 ** -22);
        if (before.some((b) => b === undefined)) continue;
        // down_proj of stories260K has 172 = 4·43 inputs: group 43 there.
        const args = (b: string) => (name.startsWith("stories") && b.endsWith("down_proj") ? { ...AWQ_ARGS(name), group_size: 43 } : AWQ_ARGS(name));
        const balance: BalanceLayer[] = m.balance.map((b, i) => ({ local: local(b), name: b, weight: before[i]!, args: args(b) }));
        expect(relDiff(right(awqWeightMean(balance)), lcWMean), m.smooth).toBeLessThanOrEqual(1e-12);
        const smooth = r.tensors.get(`before.${m.smooth}.${m.smooth}.weight`)!;
        const edits = new Map(smoothingEdits(new Map([[`${local(m.smooth)}.weight`, smooth]]), local(m.smooth), balance.map((b) => [b.local, b.weight] as const), lcScales));
        for (const n of [m.smooth, ...m.balance]) expect(differing(edits.get(`${local(n)}.weight`)!, afterMapping(r, i, n)), n).toBe(0);
        checked++;
      }
      expect(checked).toBeGreaterThanOrEqual(3);
    });
  }
});

const runOneshot = async (name: string, recipe: string): Promise<ReadonlyArray<LayerReport>> => {
  const c = CASES[name]!;
  const windows = JSON.parse(readFileSync(c.windows, "utf8")) as number[][];
  const tok = right(await optionalTokenizer(c.model)());
  const text = readFileSync(join(c.dir, `${recipe}.yaml`), "utf8");
  const ds = right(
    await loadDataset(c.windows, tok, { numSamples: windows.length, seqLen: windows[0]!.length, sampling: "sequential", vocabSize: name.startsWith("tiny") ? 128 : 512 })(),
  );
  expect(ds.windows.map((w) => Array.from(w))).toEqual(windows);
  const out = join(tmp, `${name}-${recipe}`);
  const res = right(await oneshot({ model: c.model, output: out, recipe: right(recipeFromYaml(text)), dataset: ds })());
  return res.layers;
};

const awqAgainstLc = async (name: string, recipe: string): Promise<void> => {
      const r = await records(CASES[name]!.dir, recipe);
      const got = (await runOneshot(name, recipe)).flatMap((l) => l.transforms);
      expect(got.map((t) => t.smooth)).toEqual(r.mappings.map((m) => m.smooth));
      let same = 0;
      for (const [i, m] of r.mappings.entries()) {
        const [ratio, duo] = m.grid![best(m)]!;
        const ours = m.grid!.findIndex(([rr, d]) => rr === got[i]!.ratio && d === got[i]!.duoScaling);
        expect(ours, m.smooth).toBeGreaterThanOrEqual(0);
        if (ours === best(m)) same++;
        if (name !== "tiny-bf16") {
          expect({ mapping: m.smooth, ratio: got[i]!.ratio, duo: got[i]!.duoScaling }).toEqual({ mapping: m.smooth, ratio, duo });
          expect(relDiff([got[i]!.loss!], [m.losses![best(m)]!]), m.smooth).toBeLessThanOrEqual(1e-4);
        } else {
          // LC runs the parent forward in bf16 and llmq in f32, so near-ties may go either way: llmq's pick must cost
          // at most 3 % more than LC's best under LC's own bf16 losses.
          expect(m.losses![ours]! / m.losses![best(m)]!, m.smooth).toBeLessThanOrEqual(1.03);
        }
      }
      console.log(`${name} ${recipe}: AWQ grid point equal to LC's for ${same}/${r.mappings.length} mappings`);
      if (name === "tiny-bf16") expect(same).toBeGreaterThanOrEqual(r.mappings.length / 2);
};


describe("the modifiers end to end: llmq's oneshot chooses what llm-compressor chose", () => {
  it("tiny-f32: AWQ before NVFP4A16 (fused q/k/v and gate/up global scales in the search) picks LC's grid points", () => awqAgainstLc("tiny-f32", "awq-nvfp4a16"), 120_000);
  it('tiny-f32: AWQ with duo_scaling "both" (n_grid 10) picks LC\'s grid points', () => awqAgainstLc("tiny-f32", "awq-both-w4a16-asym"), 120_000);

  for (const name of ["tiny-f32", "tiny-bf16", "stories260k"]) {
    it(`${name}: AWQ picks LC's grid point for every mapping (bf16: near LC's best by LC's own losses)`, () => awqAgainstLc(name, "awq-w4a16-asym"), 120_000);

    it(`${name}: SmoothQuant's scales match LC's within 1e-5 (range) through the whole pipeline`, async () => {
      const r = await records(CASES[name]!.dir, "smoothquant-w8a8");
      const got = (await runOneshot(name, "smoothquant-w8a8")).flatMap((l) => l.transforms);
      expect(got.map((t) => t.smooth)).toEqual(r.mappings.map((m) => m.smooth));
      for (const [i, m] of r.mappings.entries()) {
        const lc = toFloat32(r.tensors.get(`sq.${m.smooth}.scales`)!).data;
        const tol = name === "tiny-bf16" ? 2 ** -7 : 1e-5;
        expect(relDiff([got[i]!.scaleMin, got[i]!.scaleMax], [Math.min(...lc), Math.max(...lc)]), m.smooth).toBeLessThanOrEqual(tol);
      }
    }, 120_000);
  }
});

describe("bad input: refused before anything is read or written", () => {
  it("AWQ without a later quantization modifier is llm-compressor's validation error (recipes and modifier values)", async () => {
    const text = "s_stage:\n  m_modifiers:\n    AWQModifier: {}\n";
    const r = recipeFromYaml(text);
    expect(E.isLeft(r) && JSON.stringify(r.left)).toMatch(/Recipe includes AWQModifier with no subsequent quantization modifier/);
    const awq = transforms.AWQModifier(right(schemes.decodeModifier("AWQModifier", {}, "s")) as schemes.AWQModifierConfig);
    const out = join(tmp, "awq-alone");
    const o = await oneshot({ model: CASES["tiny-f32"]!.model, output: out, modifiers: [awq] })();
    expect(E.isLeft(o) && formatLlmqError(o.left)).toMatch(/AWQ must be run with a subsequent quantization modifier/);
    expect(existsSync(out)).toBe(false);
  });

  it("a mapping naming modules the model lacks lists the candidates", async () => {
    const text = [
      "s_stage:",
      "  m_modifiers:",
      "    SmoothQuantModifier:",
      '      mappings: [[["re:.*fc1$"], "re:.*final_layer_norm$"]]',
      "    QuantizationModifier: {targets: [Linear], scheme: W8A8, ignore: [lm_head]}",
      "",
    ].join("\n");
    const windows = JSON.parse(readFileSync(CASES["tiny-f32"]!.windows, "utf8")) as number[][];
    const ds = right(await loadDataset(CASES["tiny-f32"]!.windows, null, { numSamples: windows.length, seqLen: 32, sampling: "sequential", vocabSize: 128 })());
    const out = join(tmp, "bad-mapping");
    const o = await oneshot({ model: CASES["tiny-f32"]!.model, output: out, recipe: right(recipeFromYaml(text)), dataset: ds })();
    expect(E.isLeft(o) && formatLlmqError(o.left)).toMatch(
      /re:\.\*final_layer_norm\$ → \[re:\.\*fc1\$\] matches no module of the model \(modules of each decoder layer: input_layernorm, post_attention_layernorm, self_attn\.q_proj/,
    );
    expect(existsSync(out)).toBe(false);
  });
});

// W4A16_ASYM's group 128 does not fit the tiny model's 32 features: the same args with group 16.
const W4_G16 =
  "{ignore: [lm_head], config_groups: {group_0: {targets: [Linear], weights: {num_bits: 4, type: int, symmetric: false, strategy: group, group_size: 16}}}}";

describe("recipes in one stage or two (llm-compressor flattens stages into one modifier list)", () => {
  it("SmoothQuant + W8A8 and AWQ + W4A16_ASYM (group 16) give the same checkpoint bytes either way", async () => {
    const one = {
      sq: "s_stage:\n  m_modifiers:\n    SmoothQuantModifier: {smoothing_strength: 0.8}\n    QuantizationModifier: {targets: [Linear], scheme: W8A8, ignore: [lm_head]}\n",
      awq: `s_stage:\n  m_modifiers:\n    AWQModifier: {duo_scaling: both, n_grid: 6}\n    QuantizationModifier: ${W4_G16}\n`,
    };
    const two = {
      sq: "smooth_stage:\n  smooth_modifiers:\n    SmoothQuantModifier: {smoothing_strength: 0.8}\nquant_stage:\n  quant_modifiers:\n    QuantizationModifier: {targets: [Linear], scheme: W8A8, ignore: [lm_head]}\n",
      awq: `awq_stage:\n  awq_modifiers:\n    AWQModifier: {duo_scaling: both, n_grid: 6}\nquant_stage:\n  quant_modifiers:\n    QuantizationModifier: ${W4_G16}\n`,
    };
    const c = CASES["tiny-f32"]!;
    const ds = right(await loadDataset(c.windows, null, { numSamples: 4, seqLen: 32, sampling: "sequential", vocabSize: 128 })());
    for (const k of ["sq", "awq"] as const) {
      const bytes: Buffer[] = [];
      for (const [i, text] of [one[k], two[k]].entries()) {
        const out = join(tmp, `stages-${k}-${i}`);
        right(await oneshot({ model: c.model, output: out, recipe: right(recipeFromYaml(text)), dataset: ds })());
        bytes.push(readFileSync(join(out, "model.safetensors")));
      }
      expect(bytes[0]!.equals(bytes[1]!), k).toBe(true);
    }
  }, 120_000);
});
