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
} from "@llmq/hf-quantizers";
import { type ModelHandle, formatModelError } from "@llmq/models";
import { type PyJson, type PyJsonObject, type TorchFloat, dumpPythonJson, parsePythonJson, stageDirectory, writeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type LlmqError, ioErrorFrom, modelError, outputFailure, usageError } from "./errors.js";
import { openModelDir } from "./open-model.js";
const { copyFile, readFile, readdir, stat, writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

export interface HfQuantizeOptions {
  readonly model: string;
  readonly output: string;
  /** Inline JSON ("{…}") or the path of a JSON file. */
  readonly hfConfig: string;
  readonly dtype?: TorchFloat | undefined;
  readonly overwrite: boolean;
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

/** The config and its quantizer, with every refusal made before any tensor is read. */
export const resolveHfQuantizer = async (arg: string): Promise<E.Either<LlmqError, { readonly config: HfQuantizationConfig; readonly quantizer: Quantizer }>> => {
  const d = await readHfConfig(arg);
  if (E.isLeft(d)) return d;
  const c = configFromUserDict(d.right);
  if (E.isLeft(c)) return E.left(hfConfigError(formatHfQuantizerError(c.left)));
  const q = autoQuantizer(c.right);
  if (E.isLeft(q)) return E.left(hfConfigError(formatHfQuantizerError(q.left)));
  const ok = checkQuantizeOnLoad(q.right, c.right);
  return E.isLeft(ok) ? E.left(hfConfigError(formatHfQuantizerError(ok.left))) : E.right({ config: c.right, quantizer: q.right });
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
  };
};

const readAll = async (h: ModelHandle): Promise<E.Either<LlmqError, Map<string, Tensor>>> => {
  const out = new Map<string, Tensor>();
  for (const n of h.tensorNames()) {
    const t = await h.readTensor(n)();
    if (E.isLeft(t)) return E.left(modelError(formatModelError(t.left)));
    out.set(n, t.right);
  }
  return E.right(out);
};

const isModelDirectory = async (dir: string): Promise<boolean> => {
  try {
    return (await stat(join(dir, "config.json"))).isFile();
  } catch {
    return false;
  }
};

/** Files save_pretrained would carry beside the weights (tokenizer, generation config). */
const CARRIED = /^(generation_config\.json|tokenizer.*|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt|chat_template.*)$/;

const configText = async (model: string, qc: PyJsonObject, dtype: TorchFloat): Promise<E.Either<LlmqError, string>> => {
  const raw = parsePythonJson(await readFile(join(model, "config.json"), "utf8"));
  if (E.isLeft(raw)) return E.left(usageError("--model", `config.json is not JSON: ${raw.left}`, "check the model directory"));
  const cfg: Record<string, PyJson> = { ...(raw.right as PyJsonObject), quantization_config: qc };
  if ("torch_dtype" in cfg || !("dtype" in cfg)) cfg.torch_dtype = dtype;
  if ("dtype" in cfg) cfg.dtype = dtype;
  return E.right(`${dumpPythonJson(cfg, { indent: 2, sortKeys: true })}\n`);
};

/** Writes the quantized model into a staged sibling of the output, then moves it into place. */
const writeOutput = async (o: HfQuantizeOptions, tensors: ReadonlyMap<string, Tensor>, config: string): Promise<E.Either<LlmqError, void>> => {
  const stage = await stageDirectory(o.output, { overwrite: o.overwrite, protect: [o.model] })();
  if (E.isLeft(stage)) return E.left(outputFailure(o.output, stage.left));
  const s = stage.right;
  try {
    const w = await writeSafetensors(join(s.staging, "model.safetensors"), tensors, { format: "pt" })();
    if (E.isLeft(w)) return E.left(outputFailure(o.output, w.left));
    await writeFile(join(s.staging, "config.json"), config);
    for (const f of (await readdir(o.model)).filter((n) => CARRIED.test(n))) await copyFile(join(o.model, f), join(s.staging, f));
    const c = await s.commit()();
    return E.isLeft(c) ? E.left(outputFailure(o.output, c.left)) : E.right(undefined);
  } catch (e) {
    return E.left(ioErrorFrom(o.output, "cannot write the quantized model", e));
  } finally {
    await s.discard();
  }
};

export const hfQuantizeCommand = (o: HfQuantizeOptions): TE.TaskEither<LlmqError, HfQuantizeResult> => async () => {
  const t0 = performance.now();
  const resolved = await resolveHfQuantizer(o.hfConfig);
  if (E.isLeft(resolved)) return resolved;
  const { config, quantizer } = resolved.right;
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
  const written = await writeOutput(o, r.right.tensors, text.right);
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
    `time ${r.seconds.toFixed(2)} s`,
    ...r.warnings.map((w) => `warning: ${w}`),
  ].join("\n");
