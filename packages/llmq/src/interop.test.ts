import { execFile } from "node:child_process";
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { dumpLlmq } from "./test-support/dump-llmq.js";
import { type Dataset, type QuantizeCommandOptions, convertCommand, loadDataset, models, oneshot, optionalTokenizer, quantizeCommand, recipeFromYaml } from "./index.js";

// End-to-end interop: llmq converts stories260K, quantizes it with every scheme family it writes, and
// tools/interop_check.py loads each directory with compressed-tensors (decompression) and transformers (logits),
// comparing with what llmq reads back from the same directory (weights decompressed by @llmq/serialization, logits of
// forwardLogits). Runs only where a Python with torch, transformers and compressed-tensors is available:
//   LLMQ_PYTHON=$LLMQ_PYTHON npx vitest run src/interop.test.ts
// LLMQ_WRITE_EVIDENCE=1 also refreshes fixtures/interop/summary.json (the committed report); LLMQ_INTEROP_KEEP=1 keeps
// the temporary directories (their path and the Python command line are printed) to rerun the check by hand.

const PY = process.env.LLMQ_PYTHON;
const ROOT = new URL("../../../", import.meta.url).pathname;
const FX = `${ROOT}fixtures/`;
const RECIPES = new URL("../fixtures/interop/recipes/", import.meta.url).pathname;

const right = async <A>(t: () => Promise<E.Either<unknown, A>>): Promise<A> => {
  const r = await t();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

interface Case {
  readonly name: string;
  readonly recipe?: string;
  readonly scheme?: string;
  readonly calibrate: boolean;
  /**
   * A known llmq gap: the checkpoint's weights must still decompress exactly, but transformers' load is only reported
   * (FP8's static input activations need an input_scale, which llmq does not calibrate yet).
   */
  readonly gap?: string;
  /** A known difference from llm-compressor's checkpoint of the same recipe (reported in the summary, not asserted). */
  readonly lcGap?: string;
}

const CASES: ReadonlyArray<Case> = [
  { name: "w4a16-g32-rtn", recipe: `${FX}recipes/stories260k-w4a16-g32.yaml`, calibrate: false },
  { name: "w4a16-g32-gptq-actorder", recipe: `${FX}recipes/stories260k-w4a16-g32-gptq.yaml`, calibrate: true },
  { name: "w4a16-asym-g32-rtn", recipe: `${RECIPES}w4a16-asym-g32.yaml`, calibrate: false },
  { name: "w4a16-asym-g32-gptq-actorder", recipe: `${RECIPES}w4a16-asym-g32-gptq.yaml`, calibrate: true },
  { name: "w8a16-g32-rtn", recipe: `${RECIPES}w8a16-g32.yaml`, calibrate: false },
  {
    name: "nvfp4a16-rtn",
    recipe: `${RECIPES}nvfp4a16.yaml`,
    calibrate: false,
    lcGap: "llm-compressor gives q/k/v and gate/up one fused weight_global_scale (the min); llmq computes one per module",
  },
  { name: "mxfp4a16-rtn", recipe: `${RECIPES}mxfp4a16.yaml`, calibrate: false },
  { name: "w8a8-rtn", scheme: "W8A8", calibrate: false },
  { name: "fp8-dynamic-rtn", scheme: "FP8_DYNAMIC", calibrate: false },
  { name: "fp8-block-rtn", scheme: "FP8_BLOCK", calibrate: false },
  { name: "fp8-static-rtn", scheme: "FP8", calibrate: true },
];

interface LogitsReport {
  readonly logits_rel_err: number;
  readonly logits_max_abs_diff: number;
  readonly argmax_agreement: number;
}

interface Summary {
  readonly ok: boolean;
  readonly fp: { readonly check_llama2c_hf: { readonly logits_rel_err: number; readonly token_ids_equal: boolean }; readonly transformers: LogitsReport };
  readonly quantized: ReadonlyArray<{
    readonly name: string;
    readonly format: string;
    readonly ok: boolean;
    readonly weights: {
      readonly modules: number;
      readonly max_abs_diff: number;
      readonly mismatched_elements: number;
      readonly passthrough_mismatched_elements: number;
      readonly formats_agree: boolean;
    };
    readonly llmcompressor: { readonly skipped?: string; readonly differing?: ReadonlyArray<string>; readonly quantization_config_equal?: boolean };
    readonly transformers: Partial<LogitsReport> & {
      readonly weight_only: boolean;
      readonly logits_rel_err_vs_fp: number;
      readonly missing_keys?: ReadonlyArray<string>;
      readonly decompressed_weights_mismatched_elements?: number;
      readonly error?: string;
      readonly upstream_issue?: string;
      readonly fallback_dense_in_transformers?: LogitsReport;
    };
  }>;
}

const STORY =
  "Once upon a time, there was a little girl named Lily. She loved to play outside in the park. One day, she saw a big, red ball. She wanted to play with it, but it was too high";

describe("interop with compressed-tensors and transformers (end to end)", () => {
  it.skipIf(PY === undefined)(
    "compressed-tensors decompresses llmq's checkpoints to llmq's weights bit for bit; transformers reproduces llmq's logits within 1e-4",
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), "llmq-interop-"));
      try {
        const fp = join(tmp, "fp");
        await right(
          convertCommand({ from: "llama2c", model: `${FX}stories260K/stories260K.bin`, tokenizer: `${FX}stories260K/tok512.bin`, output: fp, overwrite: false }),
        );
        for (const c of CASES) {
          const o: QuantizeCommandOptions = {
            model: fp,
            output: join(tmp, c.name),
            method: "rtn",
            ...(c.recipe !== undefined ? { recipe: c.recipe } : {}),
            ...(c.scheme !== undefined ? { scheme: c.scheme } : {}),
            ...(c.calibrate ? { dataset: `${FX}wikitext-2/valid.txt` } : {}),
            numSamples: 16,
            seqLen: 128,
            seed: 42,
            overwrite: false,
          };
          await right(quantizeCommand(o));
        }

        // Windows: llama2.c-encoded text (what tools/check_llama2c_hf.py expects as ids), from TinyStories-like
        // prose and wikitext.
        const tokBin = readFileSync(`${FX}stories260K/tok512.bin`);
        const vocab = await right(async () => models.parseLlama2cTokenizer(`${FX}stories260K/tok512.bin`, tokBin, 512));
        const wiki = readFileSync(`${FX}wikitext-2/test.txt`, "utf8")
          .split("\n")
          .filter((l) => l.trim().length > 200 && !/<unk>/.test(l));
        const texts = [STORY, wiki[0]!, wiki[1]!];
        const windows = texts.map((t) => models.llama2cEncode(vocab, t, true).slice(0, 128));

        const fpLogits = await dumpLlmq(fp, windows, join(tmp, "fp.llmq.safetensors"));
        for (const c of CASES) await dumpLlmq(join(tmp, c.name), windows, join(tmp, `${c.name}.llmq.safetensors`));
        // The FP directory also goes through tools/check_llama2c_hf.py (tokenizer + logits of the first window).
        const V = 512;
        const lg = fpLogits[0]!;
        writeFileSync(
          join(tmp, "fp.llama2c.json"),
          JSON.stringify({
            tokens: windows[0],
            logits: Array.from({ length: windows[0]!.length }, (_, t) => Array.from(lg.subarray(t * V, (t + 1) * V))),
            texts: [texts[0]],
            ids: [models.llama2cEncode(vocab, texts[0]!, true)],
          }),
        );

        const summaryPath = join(tmp, "summary.json");
        const args = [
          `${ROOT}tools/interop_check.py`,
          "--fp",
          fp,
          join(tmp, "fp.llmq.safetensors"),
          "--fp-llama2c-json",
          join(tmp, "fp.llama2c.json"),
          ...CASES.flatMap((c) => ["--quantized", join(tmp, c.name), join(tmp, `${c.name}.llmq.safetensors`)]),
          "--llmcompressor",
          "--out",
          summaryPath,
        ];
        if (process.env.LLMQ_INTEROP_KEEP === "1") console.log([PY, ...args].join(" "));
        const run = await promisify(execFile)(PY!, args, { maxBuffer: 64 << 20, cwd: ROOT }).catch((e: { stdout?: string; stderr?: string; code?: number }) => e);
        const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as Summary;
        expect(summary.fp.check_llama2c_hf.logits_rel_err).toBeLessThan(1e-4);
        expect(summary.fp.check_llama2c_hf.token_ids_equal).toBe(true);
        expect(summary.fp.transformers.logits_rel_err).toBeLessThan(1e-4);
        expect(summary.quantized.map((q) => q.name)).toEqual(CASES.map((c) => c.name));
        for (const [i, c] of CASES.entries()) {
          const q = summary.quantized[i]!;
          const w = q.weights;
          // Every quantized linear (5 layers × 7) decompresses to exactly llmq's weights; the rest passes through.
          expect({ case: c.name, modules: w.modules, diff: w.max_abs_diff, bad: w.mismatched_elements, pt: w.passthrough_mismatched_elements, formats: w.formats_agree }).toEqual({
            case: c.name,
            modules: 35,
            diff: 0,
            bad: 0,
            pt: 0,
            formats: true,
          });
          const t = q.transformers;
          // Quantization moves the logits far more than the tolerance, so the matches below are not vacuous.
          expect(t.logits_rel_err_vs_fp, c.name).toBeGreaterThan(1e-3);
          // Data-free recipes: llm-compressor's oneshot with llmq's saved recipe.yaml writes the same bytes.
          if (q.llmcompressor.skipped === undefined && c.lcGap === undefined)
            expect({ case: c.name, differing: q.llmcompressor.differing, config: q.llmcompressor.quantization_config_equal }).toEqual({
              case: c.name,
              differing: [],
              config: true,
            });
          if (c.gap !== undefined) continue;
          if (t.error !== undefined) {
            // transformers cannot load it for a reason llm-compressor's own checkpoints share: its forward on the
            // weights compressed-tensors decompressed must still match llmq.
            expect(t.upstream_issue, `${c.name}: ${t.error}`).toBeDefined();
            expect(t.fallback_dense_in_transformers!.logits_rel_err, c.name).toBeLessThan(1e-4);
          } else {
            expect({ case: c.name, missing: t.missing_keys, bad: t.decompressed_weights_mismatched_elements }).toEqual({ case: c.name, missing: [], bad: 0 });
            expect(t.logits_rel_err, c.name).toBeLessThan(1e-4);
          }
          expect(q.ok, c.name).toBe(true);
        }
        expect(summary.ok || CASES.some((c) => c.gap !== undefined), run.stderr ?? "").toBe(true);
        if (process.env.LLMQ_WRITE_EVIDENCE === "1") copyFileSync(summaryPath, new URL("../fixtures/interop/summary.json", import.meta.url).pathname);
      } finally {
        if (process.env.LLMQ_INTEROP_KEEP === "1") console.log(`kept ${tmp}`);
        else rmSync(tmp, { recursive: true, force: true });
      }
    },
    600_000,
  );
});

// Calibrated recipes against llm-compressor's oneshot on the same token windows, in the same order (LC's
// `shuffle_calibration_samples=False`; the script checks LC fed exactly these windows): every tensor and config.json.
// The two-stage recipe is RTN on the MLP then GPTQ on attention: LC runs them as two pipelines (data-free, then
// sequential with quantization disabled, so GPTQ calibrates on an fp MLP), which llmq's independent pipeline mirrors.
interface CompareSummary {
  readonly tensors: number;
  readonly differing: ReadonlyArray<string>;
  readonly config_equal: boolean;
  readonly config_text_equal: boolean;
  readonly config_diff: ReadonlyArray<string>;
  readonly lc_data: { readonly order_is_given: boolean };
}

const CALIBRATED: ReadonlyArray<{ readonly name: string; readonly recipe: string }> = [
  { name: "gptq-w4a16-g32", recipe: `${FX}recipes/stories260k-w4a16-g32-gptq.yaml` },
  { name: "two-stage-rtn-mlp-gptq-attn", recipe: `${RECIPES}two-stage-rtn-mlp-gptq-attn.yaml` },
];

/** stories260K converted, 16 × 128 WikiText-2 windows (sequential), and the windows as JSON for the Python side. */
const calibratedSetup = async (tmp: string) => {
  const fp = join(tmp, "fp");
  await right(convertCommand({ from: "llama2c", model: `${FX}stories260K/stories260K.bin`, tokenizer: `${FX}stories260K/tok512.bin`, output: fp, overwrite: false }));
  const tok = await right(optionalTokenizer(fp));
  const ds = await right(loadDataset(`${FX}wikitext-2/valid.txt`, tok, { numSamples: 16, seqLen: 128, sampling: "sequential", vocabSize: 512 }));
  writeFileSync(join(tmp, "windows.json"), JSON.stringify(ds.windows.map((w) => Array.from(w))));
  return { fp, ds };
};

/** llmq's oneshot with the recipe, then tools/oneshot_compare.py (llm-compressor on the same windows) → its summary. */
const compareWithLc = async <S,>(tmp: string, fp: string, ds: Dataset, c: { readonly name: string; readonly recipe: string }): Promise<S> => {
  const out = join(tmp, c.name);
  await right(oneshot({ model: fp, output: out, recipe: await right(async () => recipeFromYaml(readFileSync(c.recipe, "utf8"))), dataset: ds }));
  const summaryPath = join(tmp, `${c.name}.json`);
  const args = [`${ROOT}tools/oneshot_compare.py`, "--fp", fp, "--recipe", c.recipe, "--tokens", join(tmp, "windows.json"), "--llmq", out, "--out", summaryPath];
  await promisify(execFile)(PY!, args, { maxBuffer: 64 << 20, cwd: ROOT });
  return JSON.parse(readFileSync(summaryPath, "utf8")) as S;
};

describe("calibrated recipes: byte-identical to llm-compressor's oneshot on the same windows", () => {
  it.skipIf(PY === undefined)(
    "GPTQ and a two-stage RTN + GPTQ recipe give llm-compressor's tensors and config.json",
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), "llmq-lc-calibrated-"));
      try {
        const { fp, ds } = await calibratedSetup(tmp);
        for (const c of CALIBRATED) {
          const s = await compareWithLc<CompareSummary>(tmp, fp, ds, c);
          console.log(`${c.name}: ${s.tensors} tensors, ${s.differing.length} differing; config.json text equal: ${s.config_text_equal}`);
          expect(s.lc_data.order_is_given, c.name).toBe(true);
          expect({ case: c.name, differing: s.differing, config: s.config_equal, diff: s.config_diff }).toEqual({ case: c.name, differing: [], config: true, diff: [] });
          expect(s.tensors, c.name).toBeGreaterThan(80);
          expect(s.config_text_equal, c.name).toBe(true);
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    900_000,
  );
});

// Transforms before quantization (SmoothQuant + W8A8, AWQ + W4A16_ASYM): the smoothing scales come from float
// statistics and a grid search over losses that llmq's forward (f32 JS/native kernels) and torch compute with
// different summation orders, so the acceptance is on codes: ≥ 99.9 % of every quantized weight's integer codes equal,
// and any difference is a one-step rounding flip (|Δcode| ≤ 1) of a value that sits on a rounding boundary.
interface TransformSummary extends CompareSummary {
  readonly codes: { readonly total: number; readonly differing: number };
  readonly details: Readonly<Record<string, { readonly dtype?: string; readonly raw?: { readonly max_abs_diff: number }; readonly codes?: { readonly max_abs_diff: number } }>>;
}

const TRANSFORMED: ReadonlyArray<{ readonly name: string; readonly recipe: string }> = [
  { name: "smoothquant-w8a8", recipe: `${RECIPES}smoothquant-w8a8.yaml` },
  { name: "awq-w4a16-asym-g32", recipe: `${RECIPES}awq-w4a16-asym-g32.yaml` },
];

describe("transform recipes: llm-compressor's oneshot on the same windows", () => {
  it.skipIf(PY === undefined)(
    "SmoothQuant + W8A8 and AWQ + W4A16_ASYM give llm-compressor's codes",
    async () => {
      const tmp = mkdtempSync(join(tmpdir(), "llmq-lc-transforms-"));
      try {
        const { fp, ds } = await calibratedSetup(tmp);
        for (const c of TRANSFORMED) {
          const s = await compareWithLc<TransformSummary>(tmp, fp, ds, c);
          // Packed codes are compared unpacked; int8 codes (W8A8) are the stored `weight` itself.
          const maxCodeStep = Math.max(
            0,
            ...Object.entries(s.details).map(([k, d]) => d.codes?.max_abs_diff ?? (k.endsWith(".weight") && d.dtype === "torch.int8" ? (d.raw?.max_abs_diff ?? 0) : 0)),
          );
          console.log(
            `${c.name}: ${s.tensors} tensors, ${s.differing.length} differing; codes ${s.codes.total - s.codes.differing}/${s.codes.total} equal, max |Δcode| ${maxCodeStep}; config.json text equal: ${s.config_text_equal}`,
          );
          expect(s.lc_data.order_is_given, c.name).toBe(true);
          expect(s.codes.total, c.name).toBeGreaterThan(100_000);
          expect(s.codes.differing / s.codes.total, c.name).toBeLessThanOrEqual(0.001);
          expect(maxCodeStep, c.name).toBeLessThanOrEqual(1);
          expect(s.config_text_equal, c.name).toBe(true);
        }
        // transformers loads llmq's transformed checkpoints: compressed-tensors decompresses them to llmq's weights
        // bit for bit and the logits match llmq's within 1e-4.
        const windows = ds.windows.slice(0, 2).map((w) => Array.from(w));
        await dumpLlmq(fp, windows, join(tmp, "fp.llmq.safetensors"));
        for (const c of TRANSFORMED) await dumpLlmq(join(tmp, c.name), windows, join(tmp, `${c.name}.llmq.safetensors`));
        const summaryPath = join(tmp, "transformers.json");
        const args = [
          `${ROOT}tools/interop_check.py`,
          "--fp",
          fp,
          join(tmp, "fp.llmq.safetensors"),
          ...TRANSFORMED.flatMap((c) => ["--quantized", join(tmp, c.name), join(tmp, `${c.name}.llmq.safetensors`)]),
          "--out",
          summaryPath,
        ];
        await promisify(execFile)(PY!, args, { maxBuffer: 64 << 20, cwd: ROOT }).catch((e: unknown) => e);
        const summary = JSON.parse(readFileSync(summaryPath, "utf8")) as Summary;
        for (const [i, c] of TRANSFORMED.entries()) {
          const q = summary.quantized[i]!;
          const t = q.transformers;
          console.log(`${c.name}: transformers ${t.error ?? "loaded"}, logits rel err ${t.logits_rel_err ?? t.fallback_dense_in_transformers?.logits_rel_err}, weights max |Δ| ${q.weights.max_abs_diff}`);
          expect({ case: c.name, modules: q.weights.modules, diff: q.weights.max_abs_diff, bad: q.weights.mismatched_elements }).toEqual({ case: c.name, modules: 35, diff: 0, bad: 0 });
          expect(t.logits_rel_err_vs_fp, c.name).toBeGreaterThan(1e-3);
          if (t.error !== undefined) {
            // As for llm-compressor's own asymmetric W4A16 checkpoints (see the data-free cases above): an upstream
            // loading issue; transformers' forward on the weights compressed-tensors decompressed must match llmq.
            expect(t.upstream_issue, `${c.name}: ${t.error}`).toBeDefined();
            expect(t.fallback_dense_in_transformers!.logits_rel_err, c.name).toBeLessThan(1e-4);
          } else expect(t.logits_rel_err, c.name).toBeLessThan(1e-4);
        }
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
    },
    900_000,
  );
});
