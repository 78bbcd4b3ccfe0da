import { nodeBuiltin } from "@llmq/tensor";
// `llmq quantize --hf-config`: a transformers quantization_config dict (inline JSON or a file) quantizes a dense model
// on load as from_pretrained(quantization_config=…) would, and the result is saved as save_pretrained writes it
// (config.json with quantization_config = to_dict(), the method's tensors, tokenizer and generation files copied).
import {
  type HfQuantizationConfig,
  type ModelFacts,
  type Quantizer,
  autoQuantizer,
  checkQuantizeOnLoad,
  configFromUserDict,
  formatHfQuantizerError,
  quantizeOnLoad,
  quantizerNameOf,
  toDict,
} from "@llmq/hf-quantizers";
import type { ModelHandle } from "@llmq/models";
import { type PyJsonObject, type TorchFloat, dumpPythonJson, parsePythonJson } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { checkOutputPath } from "./check-output-path.js";
import { type LlmqError, ioErrorFrom, outputExists, usageError } from "./errors.js";
import { runAwqConfig } from "./hf-awq-command.js";
import { runGptqConfig } from "./hf-gptq-command.js";
import type { ProgressSink } from "./progress.js";
import { configText, isModelDirectory, readAll, writeOutput } from "./hf-output.js";
import { openModelDir } from "./open-model.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");

export interface HfQuantizeOptions {
  readonly model: string;
  readonly output: string;
  /** Inline JSON ("{…}") or the path of a JSON file. */
  readonly hfConfig: string;
  readonly dtype?: TorchFloat | undefined;
  readonly overwrite: boolean;
  /**
   * Calibration for the calibrated methods (GPTQConfig, AwqConfig): llmq's --dataset / --num-samples / --seq-len / --seed.
   * `given` lists the flags the user set, which a data-free method refuses.
   */
  readonly calibration?: { readonly dataset?: string | undefined; readonly numSamples: number; readonly seqLen: number; readonly seed: number; readonly given: ReadonlyArray<string> } | undefined;
  /** Calibrated methods: also keep the compressed-tensors checkpoint of the same run in this directory. */
  readonly keepCompressedTensors?: string | undefined;
  readonly signal?: AbortSignal | undefined;
  readonly progress?: ProgressSink | undefined;
}

export interface HfQuantizeResult {
  readonly output: string;
  readonly quantizer: string;
  readonly config_class: string;
  readonly dtype: TorchFloat;
  readonly converted: number;
  readonly kept_dense: ReadonlyArray<string>;
  readonly quantization_config: unknown;
  readonly seconds: number;
  /** Calibrated methods: the windows llmq's GPTQ / AWQ ran on. */
  readonly calibration?: { readonly samples: number; readonly tokens: number };
  readonly warnings: ReadonlyArray<string>;
}

const hfConfigError = (detail: string): LlmqError => usageError("--hf-config", detail, "give a transformers quantization_config dict, e.g. '{\"load_in_4bit\": true, \"bnb_4bit_quant_type\": \"nf4\"}'");

/** The --hf-config text: inline JSON when it starts with "{", else a file to read. */
const readHfConfig = async (arg: string): Promise<E.Either<LlmqError, PyJsonObject>> => {
  let text = arg;
  if (!arg.trimStart().startsWith("{")) {
    try {
      text = await readFile(arg, "utf8");
    } catch (e) {
      return E.left(ioErrorFrom(arg, "cannot read the --hf-config file", e));
    }
  }
  const v = parsePythonJson(text);
  if (E.isLeft(v)) return E.left(hfConfigError(`is not JSON (${v.left})`));
  const d = v.right;
  if (typeof d !== "object" || d === null || Array.isArray(d)) return E.left(hfConfigError("must be a JSON object"));
  return E.right(d as PyJsonObject);
};

/** transformers methods llmq runs with calibration (its own GPTQ / AWQ) instead of quantizing on load. */
export const CALIBRATED_HF_METHODS: ReadonlyArray<string> = ["gptq", "awq"];

/** The config and its quantizer, with every refusal made before any tensor is read. */
export const resolveHfQuantizer = async (arg: string): Promise<E.Either<LlmqError, { readonly config: HfQuantizationConfig; readonly quantizer: Quantizer }>> => {
  const d = await readHfConfig(arg);
  if (E.isLeft(d)) return d;
  const c = configFromUserDict(d.right);
  if (E.isLeft(c)) return E.left(hfConfigError(formatHfQuantizerError(c.left)));
  const q = autoQuantizer(c.right);
  if (E.isLeft(q)) return E.left(hfConfigError(formatHfQuantizerError(q.left)));
  if (CALIBRATED_HF_METHODS.includes(quantizerNameOf(c.right))) return E.right({ config: c.right, quantizer: q.right });
  const ok = checkQuantizeOnLoad(q.right, c.right);
  return E.isLeft(ok) ? E.left(hfConfigError(formatHfQuantizerError(ok.left))) : E.right({ config: c.right, quantizer: q.right });
};

/** A decoder layer's parameters in the order LlamaDecoderLayer registers them (self_attn, mlp, the two norms). */
const LAYER_ORDER = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj", "input_layernorm", "post_attention_layernorm"].flatMap((m) => [`${m}.weight`, `${m}.bias`]);

/** model.state_dict()'s key order for a LlamaForCausalLM: embeddings, layers in order, the final norm, lm_head (tied too). */
export const llamaStateDict = (names: ReadonlyArray<string>, tied: boolean): ReadonlyArray<string> => {
  const key = (n: string): readonly [number, number, number, string] => {
    const m = /^model\.layers\.(\d+)\.(.+)$/.exec(n);
    if (m !== null) {
      const i = LAYER_ORDER.indexOf(m[2]!);
      return [1, Number(m[1]), i < 0 ? LAYER_ORDER.length : i, n];
    }
    return [n === "model.embed_tokens.weight" ? 0 : n === "model.norm.weight" ? 2 : n.startsWith("lm_head.") ? 3 : 4, 0, 0, n];
  };
  const all = tied && !names.includes("lm_head.weight") ? [...names, "lm_head.weight"] : [...names];
  return all.map((n) => [key(n), n] as const).sort(([a], [b]) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2] || (a[3] < b[3] ? -1 : a[3] > b[3] ? 1 : 0)).map(([, n]) => n);
};

/** get_keys_to_not_convert's view of an llmq model: a tied Llama lists lm_head once (as model.norm comes last). */
const factsOf = (h: ModelHandle): ModelFacts => {
  const names = new Set(h.tensorNames());
  const tied = h.config.tie_word_embeddings;
  return {
    linears: h.linearModules().map((l) => l.name).filter((n) => names.has(`${n}.weight`)),
    tiedKeys: tied ? ["lm_head.weight", "model.embed_tokens.weight"] : [],
    lastParameter: tied || !names.has("lm_head.weight") ? "model.norm.weight" : "lm_head.weight",
    outputEmbedding: "lm_head",
    stateDict: llamaStateDict([...names], tied),
  };
};

/** GPTQConfig / AwqConfig: llmq's GPTQ / AWQ on the calibration data, written in the method's layout. */
const calibratedCommand = async (o: HfQuantizeOptions, config: HfQuantizationConfig, t0: number): Promise<E.Either<LlmqError, HfQuantizeResult>> => {
  const paths = await checkOutputPath(o.output, [o.model, ...(o.calibration?.dataset !== undefined ? [o.calibration.dataset] : [])]);
  if (E.isLeft(paths)) return paths;
  if (!o.overwrite && paths.right === "non-empty") return E.left(outputExists(o.output));
  const cal = o.calibration ?? { numSamples: 64, seqLen: 512, seed: 42, given: [] };
  const r = await (quantizerNameOf(config) === "awq" ? runAwqConfig : runGptqConfig)(config, { model: o.model, output: o.output, overwrite: o.overwrite, dtype: o.dtype, dataset: cal.dataset, numSamples: cal.numSamples, seqLen: cal.seqLen, seqLenGiven: cal.given.includes("--seq-len"), seed: cal.seed, keepCompressedTensors: o.keepCompressedTensors, signal: o.signal, progress: o.progress });
  if (E.isLeft(r)) return r;
  return E.right({
    output: o.output,
    quantizer: quantizerNameOf(config),
    config_class: config.className,
    dtype: "float16",
    converted: r.right.converted.length,
    kept_dense: r.right.kept,
    quantization_config: JSON.parse(dumpPythonJson(toDict(config))),
    seconds: (performance.now() - t0) / 1000,
    calibration: r.right.calibration,
    warnings: r.right.warnings,
  });
};

export const hfQuantizeCommand = (o: HfQuantizeOptions): TE.TaskEither<LlmqError, HfQuantizeResult> => async () => {
  const t0 = performance.now();
  const resolved = await resolveHfQuantizer(o.hfConfig);
  if (E.isLeft(resolved)) return resolved;
  const { config, quantizer } = resolved.right;
  if (CALIBRATED_HF_METHODS.includes(quantizerNameOf(config))) return calibratedCommand(o, config, t0);
  const given = o.calibration?.given ?? [];
  if (given.length > 0) return E.left(usageError(given[0]!, `does not apply to ${config.className}: it quantizes on load without calibration data`, `drop ${given[0]}`));
  if (!(await isModelDirectory(o.model)))
    return E.left(usageError("--model", `${o.model} is not a model directory with a config.json`, "give a Hugging Face directory (convert a GGUF file first with llmq convert --from gguf)"));
  const h = await openModelDir(o.model)();
  if (E.isLeft(h)) return h;
  const facts = factsOf(h.right);
  const tensors = await readAll(h.right);
  await h.right.close();
  if (E.isLeft(tensors)) return tensors;
  const r = quantizeOnLoad(quantizer, config, tensors.right, facts, o.dtype ?? null);
  if (E.isLeft(r)) return E.left(hfConfigError(formatHfQuantizerError(r.left)));
  const text = await configText(o.model, r.right.quantizationConfig, r.right.dtype);
  if (E.isLeft(text)) return text;
  const written = await writeOutput(o, r.right.tensors, text.right, r.right.metadata);
  if (E.isLeft(written)) return written;
  return E.right({
    output: o.output,
    quantizer: quantizerNameOf(config),
    config_class: config.className,
    dtype: r.right.dtype,
    converted: r.right.converted.length,
    kept_dense: r.right.kept,
    quantization_config: JSON.parse(dumpPythonJson(r.right.quantizationConfig)),
    seconds: (performance.now() - t0) / 1000,
    warnings: r.right.warnings,
  });
};

export const formatHfQuantize = (r: HfQuantizeResult): string =>
  [
    `quantized ${r.converted} linears with ${r.config_class} (${r.quantizer}, ${r.dtype}) → ${r.output}`,
    ...(r.kept_dense.length > 0 ? [`kept dense: ${r.kept_dense.join(", ")}`] : []),
    ...(r.calibration !== undefined ? [`calibrated on ${r.calibration.samples} samples (${r.calibration.tokens} tokens)`] : []),
    `time ${r.seconds.toFixed(2)} s`,
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
