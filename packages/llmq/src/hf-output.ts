import { nodeBuiltin } from "@llmq/tensor";
// What `llmq quantize --hf-config` writes, as save_pretrained does: model.safetensors, config.json with the
// quantization_config (Python's JSON, 6.0 stays 6.0) and the tokenizer / generation files carried over.
import { type ModelHandle, formatModelError } from "@llmq/models";
import { type PyJson, type PyJsonObject, type TorchFloat, dumpPythonJson, parsePythonJson, stageDirectory, writeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, ioErrorFrom, modelError, outputFailure, usageError } from "./errors.js";
const { copyFile, readFile, readdir, stat, writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

export interface HfOutput {
  readonly model: string;
  readonly output: string;
  readonly overwrite: boolean;
}

export const readAll = async (h: ModelHandle): Promise<E.Either<LlmqError, Map<string, Tensor>>> => {
  const out = new Map<string, Tensor>();
  for (const n of h.tensorNames()) {
    const t = await h.readTensor(n)();
    if (E.isLeft(t)) return E.left(modelError(formatModelError(t.left)));
    out.set(n, t.right);
  }
  return E.right(out);
};

export const isModelDirectory = async (dir: string): Promise<boolean> => {
  try {
    return (await stat(join(dir, "config.json"))).isFile();
  } catch {
    return false;
  }
};

/** Files save_pretrained would carry beside the weights (tokenizer, generation config). */
export const CARRIED = /^(generation_config\.json|tokenizer.*|special_tokens_map\.json|added_tokens\.json|vocab\.json|merges\.txt|chat_template.*)$/;

/** The model's config.json with the quantization_config (none: removed) and the dtype the weights are saved in. */
export const configText = async (model: string, qc: PyJsonObject | null, dtype: TorchFloat): Promise<E.Either<LlmqError, string>> => {
  const raw = parsePythonJson(await readFile(join(model, "config.json"), "utf8"));
  if (E.isLeft(raw)) return E.left(usageError("--model", `config.json is not JSON: ${raw.left}`, "check the model directory"));
  const { quantization_config: _, ...rest } = raw.right as PyJsonObject;
  const cfg: Record<string, PyJson> = qc === null ? rest : { ...rest, quantization_config: qc };
  if ("torch_dtype" in cfg || !("dtype" in cfg)) cfg.torch_dtype = dtype;
  if ("dtype" in cfg) cfg.dtype = dtype;
  return E.right(`${dumpPythonJson(cfg, { indent: 2, sortKeys: true })}\n`);
};

/** Writes the quantized model into a staged sibling of the output, then moves it into place. */
export const writeOutput = async (
  o: HfOutput,
  tensors: ReadonlyMap<string, Tensor>,
  config: string,
  metadata: Readonly<Record<string, string>> = { format: "pt" },
): Promise<E.Either<LlmqError, void>> => {
  const stage = await stageDirectory(o.output, { overwrite: o.overwrite, protect: [o.model] })();
  if (E.isLeft(stage)) return E.left(outputFailure(o.output, stage.left));
  const s = stage.right;
  try {
    const w = await writeSafetensors(join(s.staging, "model.safetensors"), tensors, metadata)();
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

