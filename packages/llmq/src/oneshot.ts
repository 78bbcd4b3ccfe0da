import { copyFile, readdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type HessianState, accumulateHessianInPlace, emptyHessian, formatGptqError } from "@llmq/gptq";
import { type LayerWeights, type ModelHandle, decoderLayerForward, embed } from "@llmq/models";
import { needsCalibrationData } from "@llmq/schemes";
import {
  type SerializationError,
  type ShardedWriter,
  type StagedDirectory,
  createShardedWriter,
  formatSerializationError,
  stageDirectory,
} from "@llmq/serialization";
import { type Tensor, activeBackend, nativeAddon } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { concatMap, defer, lastValueFrom, range, reduce } from "rxjs";
import { type CompressedModule, compressModule, quantizationConfigJson } from "./checkpoint-format.js";
import { type InputQuantSpec, InputQuantError, inputQuantHooks } from "./activation-quant.js";
import type { Dataset } from "./dataset.js";
import { type LlmqError, aborted, internal, ioError, outputExists, quantizationError } from "./errors.js";
import { type LifecycleState, created, transition } from "./lifecycle.js";
import { openModelDir } from "./open-model.js";
import { type PlannedModule, planQuantization } from "./plan.js";
import { type ProgressSink, noProgress } from "./progress.js";
import { type QuantizedWeight, activationObservers, activationQParams, fusedGlobalScales, gptqModule, rtnModule } from "./quantize-module.js";
import type { Recipe } from "./recipe.js";

// The sequential pipeline of llm-compressor, layer by layer: capture the inputs of layer i on every calibration
// batch (Hessians for GPTQ), quantize its modules (sequential_epoch_end), push the batches through the quantized layer
// to produce the inputs of layer i+1, and stream the compressed layer to disk. Only one layer's f32 weights and the
// layer-boundary activations are alive at a time.

// ----- model -----

export interface OneshotOptions {
  readonly model: string;
  readonly output: string;
  readonly recipe: Recipe;
  /** Calibration windows; required by GPTQ, optional for RTN (data-free when absent). */
  readonly dataset?: Dataset | null;
  readonly overwrite?: boolean;
  readonly maxShardSize?: string | number;
  readonly signal?: AbortSignal;
  readonly progress?: ProgressSink;
}

export interface ModuleReport {
  readonly name: string;
  readonly method: "rtn" | "gptq";
  readonly loss: number;
  readonly seconds: number;
}

export interface LayerReport {
  readonly name: string;
  readonly layer: number;
  /** Sum of the module losses of this layer (GPTQ's objective, or ½‖W − Q‖² for RTN). */
  readonly loss: number;
  /**
   * ‖quantized layer output − fp layer output‖² / ‖fp layer output‖² on the first 8 calibration batches (same
   * inputs for both); null when data-free.
   */
  readonly output_rel_error: number | null;
  readonly modules: ReadonlyArray<ModuleReport>;
}

export interface OneshotResult {
  readonly output: string;
  readonly scheme: string;
  readonly format: string;
  readonly modules: number;
  readonly seconds: number;
  readonly peak_rss_mb: number;
  readonly backend: string;
  readonly calibration: { readonly samples: number; readonly tokens: number } | null;
  readonly layers: ReadonlyArray<LayerReport>;
  readonly warnings: ReadonlyArray<string>;
}

// ----- helpers -----

const run = <A>(te: TE.TaskEither<LlmqError, A>): Promise<A> =>
  te().then((r) => {
    if (E.isLeft(r)) throw new PipelineFailure(r.left);
    return r.right;
  });

/** Carries a typed error through the RxJS plumbing; unwrapped back into a Left at the edge. */
class PipelineFailure extends Error {
  constructor(readonly error: LlmqError) {
    super(error._tag);
  }
}

const unwrapE = <A>(e: E.Either<LlmqError, A>): A => {
  if (E.isLeft(e)) throw new PipelineFailure(e.left);
  return e.right;
};

const checkAbort = (signal: AbortSignal | undefined): void => {
  if (signal?.aborted) throw new PipelineFailure(aborted(String((signal.reason as Error)?.message ?? "interrupted")));
};

let peakRss = 0;
const sampleRss = (): void => {
  peakRss = Math.max(peakRss, process.memoryUsage.rss());
};

const relErr = (a: Tensor<"f32">, b: Tensor<"f32">): { num: number; den: number } => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    num += d * d;
    den += b.data[i]! * b.data[i]!;
  }
  return { num, den };
};

const lifecycleStep = (name: string, s: LifecycleState, a: Parameters<ReturnType<typeof transition>>[1]): LifecycleState =>
  unwrapE(
    pipe(
      transition(name)(s, a),
      E.mapLeft((e) => internal(`modifier ${e.modifier}: ${e.action} while ${e.state}`)),
    ),
  );

// ----- the pipeline -----

/** llm-compressor's `oneshot`: calibrate, quantize and save a compressed-tensors checkpoint. */
export const oneshot = (opts: OneshotOptions): TE.TaskEither<LlmqError, OneshotResult> => async () => {
  const t0 = performance.now();
  peakRss = 0;
  sampleRss();
  const progress = opts.progress ?? noProgress;
  const recipe = opts.recipe;
  let staged: StagedDirectory | null = null;
  let writer: ShardedWriter | null = null;
  let handle: ModelHandle | null = null;
  try {
    handle = await run(openModelDir(opts.model));
    const h = handle;
    const plan = unwrapE(planQuantization(recipe.config, h.linearModules()));
    const dataset = opts.dataset ?? null;
    if (recipe.method === "gptq" && dataset === null)
      throw new PipelineFailure(quantizationError("GPTQModifier", "GPTQ needs calibration data: pass --dataset (text, JSONL or token ids)"));
    if (needsCalibrationData(recipe.config) && dataset === null)
      throw new PipelineFailure(
        quantizationError(recipe.modifierName, "this scheme has static activation (or kv-cache) quantization, which needs calibration data: pass --dataset"),
      );
    checkAbort(opts.signal);
    // The whole directory is produced in a hidden sibling and renamed at the end: a failure leaves nothing behind.
    const outputFailure = (e: SerializationError): LlmqError =>
      e._tag === "OutputExists" ? outputExists(opts.output) : ioError(opts.output, formatSerializationError(e));
    staged = await run(pipe(stageDirectory(opts.output, { overwrite: opts.overwrite === true }), TE.mapLeft(outputFailure)));
    const stagedDir = staged;
    writer = await run(
      pipe(
        createShardedWriter(stagedDir.staging, { maxShardSize: opts.maxShardSize ?? "5GB" }),
        TE.mapLeft((e) => ioError(opts.output, formatSerializationError(e))),
      ),
    );
    const w = writer;
    const add = (name: string, t: Tensor): Promise<void> =>
      run(
        pipe(
          w.add(name, t),
          TE.mapLeft((e) => ioError(opts.output, formatSerializationError(e))),
        ),
      );
    const warnings: string[] = [];

    // Modifier lifecycle: initialize (plan resolved) → start → events per layer → end → finalize.
    let life = lifecycleStep(recipe.modifierName, created, "initialize");
    life = lifecycleStep(recipe.modifierName, life, "start");

    // Tensors outside the decoder layers are copied through in their stored dtype.
    const names = h.tensorNames();
    const layerOf = (n: string): number | null => {
      const m = /^model\.layers\.(\d+)\./.exec(n);
      return m ? Number(m[1]) : null;
    };
    const written = new Set<string>();
    const passThrough = async (name: string): Promise<void> => {
      const t = await run(
        pipe(
          h.readTensor(name),
          TE.mapLeft((e) => ioError(name, `cannot read: ${e._tag}`)),
        ),
      );
      await add(name, t);
      written.add(name);
    };

    // Layer-boundary activations, one [T, hidden] tensor per calibration window.
    let hidden: Tensor<"f32">[] | null = null;
    if (dataset !== null) {
      const emb = await run(pipe(h.loadEmbedding(), TE.mapLeft((e) => ioError(h.dir, `embedding: ${e._tag}`))));
      hidden = dataset.windows.map((tokens) => embed(emb, tokens));
    }
    for (const n of names) if (layerOf(n) === null && !isHeadTensor(n)) await passThrough(n);
    sampleRss();

    const L = h.numLayers;
    const N = dataset?.windows.length ?? 0;
    progress({ kind: "stage", stage: "quantize", total: L });

    const layerReports = await lastValueFrom(
      range(0, L).pipe(
        concatMap((i) =>
          defer(async (): Promise<LayerReport> => {
            checkAbort(opts.signal);
            const weights = await run(pipe(h.loadLayer(i), TE.mapLeft((e) => ioError(h.dir, `layer ${i}: ${e._tag}`))));
            const prefix = `model.layers.${i}.`;
            const planned = [...plan.modules.values()].filter((p) => p.module.layer === i);

            // Calibration pass (quantization disabled, as in llm-compressor ≥ 0.11): Hessians + fp outputs.
            // Modules fed the same input (q/k/v, gate/up) share one Hessian sum: llm-compressor accumulates an
            // identical copy per module; one copy gives the same bits at a fraction of the XᵀX work and memory.
            const hess = new Map<string, HessianState>();
            const hessKey = (local: string): string => SHARED_INPUT[local] ?? local;
            if (recipe.method === "gptq")
              for (const p of planned) hess.set(hessKey(p.module.name.slice(prefix.length)), emptyHessian(p.module.inFeatures));
            const acts = unwrapE(activationObservers(planned, prefix));
            const fpOut: Tensor<"f32">[] = [];
            // Nothing to observe (weight-only RTN): the fp pass only measures the layer's output error, on a few batches.
            // (ERROR_BATCHES also bounds how many fp outputs are kept when the pass runs for Hessians/observers.)
            const observed = hess.size > 0 || acts.size > 0;
            const calibN = observed ? N : Math.min(N, ERROR_BATCHES);
            if (hidden !== null) {
              for (let b = 0; b < calibN; b++) {
                checkAbort(opts.signal);
                const hooks =
                  hess.size > 0 || acts.size > 0
                    ? {
                        onLinearInput: (local: string, x: Tensor<"f32">) => {
                          const a = acts.get(local);
                          if (a !== undefined) a.state = a.observer.step(a.state, x);
                          // q/k/v (gate/up) see the same x: accumulate the shared sum once, at its first module.
                          if (SHARED_INPUT[local] !== undefined && !SHARED_FIRST.has(local)) return;
                          const key = hessKey(local);
                          const st = hess.get(key);
                          if (st === undefined) return;
                          const r = accumulateHessianInPlace(st.h, st.nSamples, x, prefix + local);
                          if (E.isLeft(r)) throw new PipelineFailure(quantizationError(prefix + local, formatGptqError(r.left)));
                          hess.set(key, { h: st.h, nSamples: r.right });
                        },
                      }
                    : undefined;
                const out = decoderLayerForward(h.config, weights, hidden[b]!, undefined, hooks);
                // Only the first batches' fp outputs are kept, for the layer-error metric (memory: one layer output).
                if (b < ERROR_BATCHES) fpOut.push(out);
                progress({ kind: "tick", stage: "quantize", done: i + (b + 1) / (2 * calibN), total: L, label: `layer ${i} · calibrating ${b + 1}/${calibN}` });
              }
            }
            sampleRss();

            // sequential_epoch_end: quantize every planned module of this layer.
            life = lifecycleStep(recipe.modifierName, life, "event");
            const results: Array<{ planned: PlannedModule; q: QuantizedWeight; seconds: number; extra: ReadonlyArray<readonly [string, Tensor]> }> = [];
            // Fused NVFP4 global scales from the f32 layer weights (exact copies of the stored ones).
            const fused = unwrapE(
              fusedGlobalScales(
                planned.map((p) => {
                  const local = p.module.name.slice(prefix.length);
                  return { name: p.module.name, local, weight: weights.get(`${local}.weight`)!, args: p.scheme.weights };
                }),
              ),
            );
            for (const p of planned) {
              checkAbort(opts.signal);
              const local = p.module.name.slice(prefix.length);
              const args = p.scheme.weights;
              if (args === null) continue;
              // The stored tensor (its dtype decides the scale dtype), read per module so one copy is alive at a time.
              const raw = await run(pipe(h.readTensor(`${p.module.name}.weight`), TE.mapLeft((e) => ioError(p.module.name, `weight: ${e._tag}`))));
              const extra = unwrapE(activationQParams(acts.get(local), raw.dtype));
              const ts = performance.now();
              const globalScale = fused.get(p.module.name);
              const q = unwrapE(
                recipe.method === "gptq"
                  ? gptqModule(p.module.name, raw, hess.get(hessKey(local))!, args, recipe.gptq, { globalScale })
                  : rtnModule(p.module.name, raw, args, { globalScale }),
              );
              warnings.push(...q.warnings);
              results.push({ planned: p, q, seconds: (performance.now() - ts) / 1000, extra });
              progress({ kind: "tick", stage: "quantize", done: i + 0.5, total: L, label: `layer ${i} · ${local} loss ${q.loss.toExponential(2)}` });
            }
            hess.clear();
            sampleRss();

            // Propagation pass: the quantized layer produces the next layer's inputs.
            let relNum = 0;
            let relDen = 0;
            if (hidden !== null) {
              const qWeights: LayerWeights = new Map([
                ...weights,
                ...results.map(({ planned, q }) => [`${planned.module.name.slice(prefix.length)}.weight`, q.fakeQuantized] as const),
              ]);
              // As in llm-compressor, the propagation pass runs with quantization enabled: inputs of quantized
              // activations are fake-quantized too (dynamic per token, or with the calibrated static scales).
              const specs = new Map<string, InputQuantSpec>();
              for (const { planned, extra } of results) {
                const ia = planned.scheme.input_activations;
                if (ia === null) continue;
                const get = (k: string): Tensor | null => extra.find(([n]) => n === k)?.[1] ?? null;
                specs.set(planned.module.name.slice(prefix.length), { args: ia, scale: get("input_scale"), zeroPoint: get("input_zero_point"), globalScale: get("input_global_scale") });
              }
              const qHooks = inputQuantHooks(prefix, specs);
              for (let b = 0; b < N; b++) {
                checkAbort(opts.signal);
                const out = decoderLayerForward(h.config, qWeights, hidden[b]!, undefined, qHooks);
                if (b < fpOut.length) {
                  const r = relErr(out, fpOut[b]!);
                  relNum += r.num;
                  relDen += r.den;
                }
                hidden[b] = out;
                progress({ kind: "tick", stage: "quantize", done: i + 0.5 + (b + 1) / (2 * N), total: L, label: `layer ${i} · propagating ${b + 1}/${N}` });
              }
            }

            // Stream the layer to disk: compressed modules, everything else of the layer as stored.
            const quantizedNames = new Set(results.map((r) => `${r.planned.module.name}.weight`));
            for (const n of names) {
              if (layerOf(n) !== i || quantizedNames.has(n)) continue;
              await passThrough(n);
            }
            for (const { planned, q, extra } of results) {
              const c: CompressedModule = unwrapE(compressModule(planned, q, extra));
              for (const [n, t] of c.tensors) {
                await add(n, t);
                written.add(n);
              }
            }
            sampleRss();
            progress({ kind: "tick", stage: "quantize", done: i + 1, total: L, label: `layer ${i} done` });
            const loss = results.reduce((a, r) => a + r.q.loss, 0);
            return {
              name: `model.layers.${i}`,
              layer: i,
              loss,
              output_rel_error: hidden !== null && relDen > 0 ? relNum / relDen : null,
              modules: results.map((r) => ({ name: r.planned.module.name, method: r.q.method, loss: r.q.loss, seconds: r.seconds })),
            };
          }),
        ),
        reduce((acc: LayerReport[], r) => [...acc, r], []),
      ),
    );

    // Head: lm_head is written as stored unless a config group targets it (then quantized like any Linear).
    const headPlan = plan.modules.get("lm_head");
    for (const n of names) {
      if (!isHeadTensor(n)) continue;
      if (headPlan && n === "lm_head.weight" && headPlan.scheme.weights) {
        const raw = await run(pipe(h.readTensor(n), TE.mapLeft((e) => ioError(n, e._tag))));
        const q = unwrapE(rtnModule("lm_head", raw, headPlan.scheme.weights));
        for (const [cn, t] of unwrapE(compressModule(headPlan, q)).tensors) await add(cn, t);
      } else await passThrough(n);
    }
    life = lifecycleStep(recipe.modifierName, life, "end");

    const saved = await run(pipe(w.close(), TE.mapLeft((e) => ioError(opts.output, formatSerializationError(e)))));
    writer = null;
    void saved;
    const cfgJson = unwrapE(quantizationConfigJson(h.rawConfig, plan));
    await writeFile(join(stagedDir.staging, "config.json"), cfgJson.text);
    await writeFile(join(stagedDir.staging, "recipe.yaml"), recipe.yaml);
    await copyModelExtras(h.dir, stagedDir.staging);
    life = lifecycleStep(recipe.modifierName, life, "finalize");
    checkAbort(opts.signal);
    const outDir = await run(pipe(stagedDir.commit(), TE.mapLeft(outputFailure)));
    staged = null;
    sampleRss();
    return E.right({
      output: outDir,
      scheme: recipe.schemeName,
      format: cfgJson.format,
      modules: plan.modules.size,
      seconds: (performance.now() - t0) / 1000,
      peak_rss_mb: Math.round(peakRss / 2 ** 20),
      backend: activeBackend() === "native" ? `native (${nativeAddon()?.isa ?? "?"})` : "js",
      calibration: dataset ? { samples: dataset.windows.length, tokens: dataset.tokens } : null,
      layers: layerReports,
      warnings,
    });
  } catch (e) {
    if (e instanceof PipelineFailure) return E.left(e.error);
    if (e instanceof InputQuantError) return E.left(quantizationError("input activations", e.message));
    return E.left(internal((e as Error)?.stack ?? String(e)));
  } finally {
    if (writer) await writer.abort();
    if (staged) await staged.discard();
    if (handle) await handle.close();
  }
};

/** Llama modules whose inputs are the same tensor (they may share a Hessian). */
const SHARED_INPUT: Readonly<Record<string, string>> = {
  "self_attn.q_proj": "attn_input",
  "self_attn.k_proj": "attn_input",
  "self_attn.v_proj": "attn_input",
  "mlp.gate_proj": "mlp_input",
  "mlp.up_proj": "mlp_input",
};
/** The module whose input hook accumulates each shared Hessian (the first one the forward calls). */
const SHARED_FIRST = new Set(["self_attn.q_proj", "mlp.gate_proj"]);
/** Batches used for the per-layer output error when nothing else needs the fp pass. */
const ERROR_BATCHES = 8;

const isHeadTensor = (n: string): boolean => n === "model.norm.weight" || n.startsWith("lm_head.");

/** Copies tokenizer and generation files, as llm-compressor's save does (weights and config are written anew). */
const copyModelExtras = async (from: string, to: string): Promise<void> => {
  const keep = /^(tokenizer.*|special_tokens_map\.json|generation_config\.json|.*\.tiktoken|vocab\.json|merges\.txt|chat_template\.(jinja|json)|README\.md|LICENSE.*)$/;
  for (const f of await readdir(from)) if (keep.test(f)) await copyFile(join(from, f), join(to, f));
};
