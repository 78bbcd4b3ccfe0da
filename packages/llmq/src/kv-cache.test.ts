import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readTensors } from "./test-support/read-tensors.js";
import { must } from "./test-support/stories260k.js";
import { spawnSync } from "node:child_process";
import {
  KvCacheModifier,
  convertCommand,
  evalCommand,
  finalHiddenStates,
  formatLlmqError,
  loadDataset,
  models,
  noProgress,
  oneshot,
  openModelDir,
  optionalTokenizer,
  recipeFromYaml,
  schemes,
  serialization,
  tensor as tensorNs,
} from "./index.js";

// kv_cache_scheme against llm-compressor 0.14 itself: packages/llmq/fixtures/kv-cache, made by
// tools/gen_kv_cache_fixtures.py (the command is at its top), holds the k_scale / v_scale tensors and the config.json
// quantization_config LC saved for a tiny random GQA Llama (f32 and bf16) and stories260K, per kv recipe. llmq's
// oneshot runs the same recipe on the same windows; the saved checkpoint must carry the same tensors and config.

const FX = new URL("../fixtures/kv-cache/", import.meta.url).pathname;
const TFX = new URL("../fixtures/transforms/", import.meta.url).pathname;
const ROOT = new URL("../../../fixtures/", import.meta.url).pathname;

let tmp = "";
const CASES: Record<string, { model: string; windows: string; vocab: number }> = {};

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-kv-"));
  const st = join(tmp, "stories260k");
  must(await convertCommand({ from: "llama2c", model: `${ROOT}stories260K/stories260K.bin`, tokenizer: `${ROOT}stories260K/tok512.bin`, output: st, overwrite: false })());
  CASES["tiny-gqa-f32"] = { model: `${FX}tiny-gqa-f32`, windows: `${FX}tiny-gqa-f32/windows.json`, vocab: 128 };
  CASES["tiny-gqa-bf16"] = { model: `${FX}tiny-gqa-bf16`, windows: `${FX}tiny-gqa-bf16/windows.json`, vocab: 128 };
  CASES.stories260k = { model: st, windows: `${TFX}stories260k-windows.json`, vocab: 512 };
}, 120_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** Runs llmq's oneshot with the fixture's recipe on the fixture's windows; returns the output directory. */
const runOneshot = async (name: string, recipe: string): Promise<string> => {
  const c = CASES[name]!;
  const windows = JSON.parse(readFileSync(c.windows, "utf8")) as number[][];
  const tok = must(await optionalTokenizer(c.model)());
  const ds = must(await loadDataset(c.windows, tok, { numSamples: windows.length, seqLen: windows[0]!.length, sampling: "sequential", vocabSize: c.vocab })());
  const out = join(tmp, `${name}-${recipe}`);
  const text = readFileSync(join(FX, name, `${recipe}.yaml`), "utf8");
  must(await oneshot({ model: c.model, output: out, recipe: must(recipeFromYaml(text)), dataset: ds, overwrite: true })());
  return out;
};

/** Differing elements, and the largest difference in units of the fixture dtype's last place (integers: in units). */
const compare = (a: Tensor, b: Tensor): { readonly differ: number; readonly ulps: number } => {
  const x = toFloat32(a).data;
  const y = toFloat32(b).data;
  const ulp = b.dtype === "bf16" ? 2 ** -7 : b.dtype === "f32" ? 2 ** -23 : 0;
  let differ = 0;
  let ulps = 0;
  for (let i = 0; i < y.length; i++) {
    if (Object.is(x[i], y[i])) continue;
    differ++;
    ulps = Math.max(ulps, ulp === 0 ? Math.abs(x[i]! - y[i]!) : Math.abs(x[i]! - y[i]!) / (Math.abs(y[i]!) * ulp));
  }
  return { differ, ulps };
};

const RECIPES: Record<string, ReadonlyArray<string>> = {
  "tiny-gqa-f32": ["fp8-tensor", "fp8-tensor-default-observer", "fp8-attn-head", "int8-tensor", "int8-asym-attn-head"],
  "tiny-gqa-bf16": ["fp8-tensor", "fp8-attn-head", "int8-tensor", "int8-asym-attn-head"],
  stories260k: ["fp8-tensor", "fp8-attn-head", "int8-tensor", "gptq-fp8-tensor"],
};

describe("kv_cache_scheme: llmq's k_scale / v_scale and config.json are llm-compressor's", () => {
  for (const [name, recipes] of Object.entries(RECIPES))
    for (const recipe of recipes)
      it(`${name} ${recipe}`, async () => {
        const out = await runOneshot(name, recipe);
        const lc = JSON.parse(readFileSync(join(FX, name, `${recipe}.json`), "utf8")) as { quantization_config: unknown; tensors: Record<string, { dtype: string; shape: number[] }> };
        const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8")) as { quantization_config: unknown };
        expect(cfg.quantization_config).toEqual(lc.quantization_config);
        const want = await readTensors(join(FX, name, `${recipe}.safetensors`));
        const got = await readTensors(join(out, "model.safetensors"));
        const dtypes: Record<string, string> = { f32: "float32", bf16: "bfloat16", i8: "int8" };
        let differ = 0;
        for (const [n, t] of want) {
          const g = got.get(n);
          expect(g, n).toBeDefined();
          expect({ n, dtype: dtypes[g!.dtype] ?? g!.dtype, shape: g!.shape }).toEqual({ n, dtype: lc.tensors[n]!.dtype, shape: lc.tensors[n]!.shape });
          const c = compare(g!, t);
          differ += c.differ;
          // The keys come out of two different forwards (torch's GEMMs and RoPE round in other orders than llmq's, and
          // the differences grow layer by layer), so their extremes, hence the scales, may differ in the last places; LC
          // runs a bf16 model's forward in bf16 and llmq in f32, so a bf16 scale may land one step away, a zero point 1.
          expect(c.ulps, n).toBeLessThanOrEqual(t.dtype === "f32" ? 8 : t.dtype === "bf16" ? 1 : name.endsWith("bf16") ? 1 : 0);
        }
        expect([...got.keys()].filter((n) => /_(scale|zero_point)$/.test(n) && n.includes("self_attn.") && !/_proj\./.test(n)).sort()).toEqual([...want.keys()].sort());
        console.log(`${name} ${recipe}: ${want.size} kv tensors, ${differ} elements differ from LC`);
      }, 120_000);
});

/** Renames tensors in a safetensors file's header (data untouched), as an older writer would have named them. */
const renameTensors = (path: string, rename: (n: string) => string): void => {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString("utf8")) as Record<string, unknown>;
  const renamed = Object.fromEntries(Object.entries(header).map(([k, v]) => [k === "__metadata__" ? k : rename(k), v]));
  let text = JSON.stringify(renamed);
  text += " ".repeat((8 - ((8 + Buffer.byteLength(text)) % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(Buffer.byteLength(text)));
  writeFileSync(path, Buffer.concat([len, Buffer.from(text), buf.subarray(8 + n)]));
};

describe("a kv-calibrated checkpoint runs as its config says", () => {
  const evalOf = async (model: string, kvCache?: "f32" | "fp8") =>
    must(await evalCommand({ model, reference: CASES.stories260k!.model, dataset: `${ROOT}wikitext-2/test.txt`, seqLen: 128, numSamples: 4, scoreSecondHalf: false, kvCache })());

  it("eval applies the stored k/v scales (legacy k_proj.output_scale names too); --kv-cache overrides them", async () => {
    const out = await runOneshot("stories260k", "fp8-attn-head");
    const own = await evalOf(out);
    expect(own.kv_cache).toBe("static fp8 (attn_head) from the checkpoint's k/v scales");
    const plain = await evalOf(out, "f32");
    expect(plain.kv_cache).toBe("f32");
    expect(own.kld!.mean).not.toBe(plain.kld!.mean);
    const legacy = join(tmp, "legacy");
    cpSync(out, legacy, { recursive: true });
    renameTensors(join(legacy, "model.safetensors"), (k) => k.replace(/self_attn\.(k|v)_scale$/, "self_attn.$1_proj.output_scale"));
    expect((await evalOf(legacy)).kld!.mean).toBe(own.kld!.mean);
    const broken = join(tmp, "no-scales");
    cpSync(out, broken, { recursive: true });
    renameTensors(join(broken, "model.safetensors"), (k) => k.replace(/self_attn\.(k|v)_scale$/, "self_attn.$1_other"));
    const r = await evalCommand({ model: broken, dataset: `${ROOT}wikitext-2/test.txt`, seqLen: 128, numSamples: 2, scoreSecondHalf: false })();
    expect(E.isLeft(r) && formatLlmqError(r.left)).toMatch(/kv_cache_scheme but the checkpoint stores no self_attn\.k_scale/);
  }, 120_000);

  it("a kv_cache_scheme that cannot be calibrated, or a model without k/v projections, is refused before any data", async () => {
    const dyn = "s_stage:\n  m_modifiers:\n    QuantizationModifier:\n      kv_cache_scheme: {num_bits: 8, type: float, strategy: token, dynamic: true}\n";
    const out = join(tmp, "dyn");
    const c = CASES["tiny-gqa-f32"]!;
    const ds = must(await loadDataset(c.windows, null, { numSamples: 4, seqLen: 32, sampling: "sequential", vocabSize: 128 })());
    const o = await oneshot({ model: c.model, output: out, recipe: must(recipeFromYaml(dyn)), dataset: ds })();
    expect(E.isLeft(o) && formatLlmqError(o.left)).toMatch(/kv_cache_scheme\.dynamic: true is not supported/);
    expect(existsSync(out)).toBe(false);
    const none = await oneshot({ model: c.model, output: out, recipe: must(recipeFromYaml(dyn.replace("strategy: token, dynamic: true", "strategy: tensor"))) })();
    expect(E.isLeft(none) && formatLlmqError(none.left)).toMatch(/calibration data/);
    const m = KvCacheModifier(must(schemes.decodeQuantizationArgs({ num_bits: 8, type: "float", strategy: "tensor" })));
    const info = {
      linears: [{ name: "model.layers.0.mlp.up_proj", layer: 0, className: "Linear", inFeatures: 4, outFeatures: 4 }],
      numLayers: 1,
      architecture: { layerPrefix: (i: number) => `model.layers.${i}.`, sharedInputs: [], fusedGroups: [], layerNorms: [], normMappings: [], linearMappings: [] },
      hasTensor: () => true,
      submodules: { inputOf: () => null, forward: () => E.left("none") },
      attention: { heads: 2, kvHeads: 1, headDim: 2 },
    };
    const r = m.initialize(info);
    expect(E.isLeft(r) && r.left.detail).toMatch(/kv_cache_scheme needs attention modules with k_proj and v_proj/);
  });
});

const PY = process.env.LLMQ_PYTHON;
// transformers ≤ 5.17 (what llm-compressor 0.14 supports) on this PYTHONPATH: later releases rename the attention's
// cache argument and compressed-tensors 0.20 then attaches no KV cache (tools/kv_interop_check.py explains).
const KV_PYTHONPATH = process.env.LLMQ_KV_PYTHONPATH;

describe("interop: transformers runs llmq's kv checkpoint with its k/v scales", () => {
  it.skipIf(PY === undefined || KV_PYTHONPATH === undefined)(
    "logits agree with llmq's (which apply the same scales) far closer than the kv quantization moves them",
    async () => {
      const out = await runOneshot("stories260k", "fp8-tensor");
      const h = must(await openModelDir(out)());
      const windows = (JSON.parse(readFileSync(CASES.stories260k!.windows, "utf8")) as number[][]).slice(0, 2).map((w) => Int32Array.from(w));
      const head = must(await h.loadHead()());
      const dump = async (file: string, kvCache?: "f32") => {
        const hid = must(await finalHiddenStates(h, windows, "model", noProgress, undefined, kvCache)());
        const entries = new Map<string, Tensor>();
        hid.forEach((x, i) => {
          entries.set(`llmq.logits.${i}`, models.headForward(h.config, head, x));
          entries.set(`llmq.tokens.${i}`, must(tensorNs.fromStorage("i32", [windows[i]!.length], windows[i]!)));
        });
        must(await serialization.writeSafetensors(join(tmp, file), entries)());
      };
      await dump("kv.safetensors");
      await dump("nokv.safetensors", "f32");
      await h.close();
      const check = (file: string) => {
        const r = spawnSync(PY!, [`${ROOT}../tools/kv_interop_check.py`, out, join(tmp, file)], { encoding: "utf8", env: { ...process.env, PYTHONPATH: KV_PYTHONPATH } });
        expect(r.status, r.stderr).toBe(0);
        return JSON.parse(r.stdout.trim().split("\n").pop()!) as { kv_cache_attached: boolean; k_scale: number[]; logits_rel_err: number; logits_mean_rel_err: number; top1_agreement: number };
      };
      const [withKv, without] = [check("kv.safetensors"), check("nokv.safetensors")];
      console.log(`transformers vs llmq with the k/v scales: ${JSON.stringify(withKv)}; vs llmq without: ${JSON.stringify(without)}`);
      expect(withKv.kv_cache_attached).toBe(true);
      expect(withKv.logits_mean_rel_err).toBeLessThan(1e-5);
      expect(withKv.top1_agreement).toBeGreaterThanOrEqual(0.99);
      // the fp8 cache moves the logits ~10⁴× more than the remaining difference (keys an ulp apart in the two forwards
      // may round to neighbouring fp8 codes, so the max error is not bounded by the f32 tolerance of 1e-4)
      expect(without.logits_mean_rel_err).toBeGreaterThan(100 * withKv.logits_mean_rel_err);
    },
    240_000,
  );
});
