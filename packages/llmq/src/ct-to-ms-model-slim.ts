import { type MsLayoutType, openSafetensors, formatSerializationError } from "@llmq/serialization";
import { nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type LlmqError, modelError } from "./errors.js";
import { compressedTensorsToMsModelSlim } from "./ms-model-slim.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// `llmq convert --from compressed-tensors <dir> --to msmodelslim`: an existing compressed-tensors checkpoint written in
// msModelSlim's safe_tensor layout (compressedTensorsToMsModelSlim, the writer quantizeWithMsModelSlim uses). The
// msModelSlim type follows from the one config group: int weights of 8 or 4 bits, no inputs → W8A16 / W4A16; static
// per-tensor int8 inputs → W8A8; dynamic per-token int8 inputs → W8A8_DYNAMIC. Anything else has no msModelSlim type.

interface Args {
  readonly num_bits?: number;
  readonly type?: string;
  readonly strategy?: string;
  readonly dynamic?: boolean | string;
  readonly actorder?: string | null;
}

/** The msModelSlim type of a compressed-tensors quantization_config, or why there is none. */
export const msTypeOfCompressedTensors = (qc: unknown): E.Either<string, MsLayoutType> => {
  const groups = Object.values((qc as { config_groups?: Record<string, { weights?: Args | null; input_activations?: Args | null; output_activations?: Args | null }> } | null)?.config_groups ?? {});
  if (groups.length !== 1) return E.left(`msModelSlim's layout holds one scheme; this checkpoint has ${groups.length} config groups`);
  const { weights: w, input_activations: i, output_activations: out } = groups[0]!;
  if (w == null || w.type !== "int" || (w.num_bits !== 8 && w.num_bits !== 4)) return E.left("msModelSlim's types have int8 or int4 weights");
  if (out != null) return E.left("msModelSlim has no output-activation quantization");
  if (w.actorder === "group") return E.left("GPTQ actorder group (weight_g_idx) has no msModelSlim form");
  if (w.strategy === "tensor_group" || w.strategy === "block") return E.left(`weight strategy ${w.strategy} has no msModelSlim form (tensor, channel or group)`);
  if (i == null) return E.right(w.num_bits === 8 ? "W8A16" : "W4A16");
  if (w.num_bits !== 8 || i.type !== "int" || i.num_bits !== 8) return E.left("msModelSlim's activation types are W8A8 / W8A8_DYNAMIC (int8 weights and inputs)");
  if (i.dynamic === false && i.strategy === "tensor") return E.right("W8A8");
  if (i.dynamic === true && i.strategy === "token") return E.right("W8A8_DYNAMIC");
  return E.left(`input activations ${i.dynamic === true ? "dynamic" : "static"} per ${i.strategy} have no msModelSlim type (static per tensor, or dynamic per token)`);
};

export interface CtToMsResult {
  readonly type: MsLayoutType;
  readonly files: ReadonlyArray<string>;
  readonly tensors: number;
  readonly parameters: number;
  /** The model's torch_dtype as llmq names it (f32 / bf16 / f16). */
  readonly dtype: "f32" | "bf16" | "f16";
  readonly tokenizer: boolean;
  readonly warnings: ReadonlyArray<string>;
}

/** Tensor and element counts of the written weight files (headers only). */
const counts = async (dir: string, files: ReadonlyArray<string>): Promise<{ tensors: number; parameters: number }> => {
  let [tensors, parameters] = [0, 0];
  for (const f of files.filter((x) => x.endsWith(".safetensors"))) {
    const st = await openSafetensors(join(dir, f))();
    if (E.isLeft(st)) throw new Error(formatSerializationError(st.left));
    for (const n of st.right.names) parameters += st.right.info(n)!.shape.reduce((a, d) => a * d, 1);
    tensors += st.right.names.length;
    await st.right.close();
  }
  return { tensors, parameters };
};

export const compressedTensorsDirToMsModelSlim =
  (ctDir: string, output: string, overwrite: boolean): TE.TaskEither<LlmqError, CtToMsResult> =>
  async () => {
    let config: Record<string, unknown>;
    try {
      config = JSON.parse(await readFile(join(ctDir, "config.json"), "utf8")) as Record<string, unknown>;
    } catch (e) {
      return E.left(modelError(`${join(ctDir, "config.json")}: ${(e as Error).message}`));
    }
    const qc = config.quantization_config as Record<string, unknown> | undefined;
    if (qc === undefined || qc.quant_method !== "compressed-tensors") return E.left(modelError(`${ctDir} is not a compressed-tensors checkpoint (config.json has no compressed-tensors quantization_config)`));
    const type = msTypeOfCompressedTensors(qc);
    if (E.isLeft(type)) return E.left(modelError(`${ctDir}: ${type.left}`));
    const files = await compressedTensorsToMsModelSlim(ctDir, output, type.right, overwrite)();
    if (E.isLeft(files)) return files;
    const warnings = qc.kv_cache_scheme != null ? ["the kv_cache_scheme (k_scale / v_scale on the attention) has no msModelSlim C8 form and was left out"] : [];
    const dtype = ({ bfloat16: "bf16", float16: "f16" } as const)[String(config.torch_dtype) as "bfloat16" | "float16"] ?? "f32";
    const tokenizer = await readFile(join(output, "tokenizer.json")).then(() => true, () => false);
    return E.right({ type: type.right, files: files.right, ...(await counts(output, files.right)), dtype, tokenizer, warnings });
  };
