import { type ModelHandle, memoryWeightSource, modelFromSource, readMsModelSlimFiles } from "@llmq/models";
import { type QuantizationScheme, decodeQuantizationScheme, formatSchemeError } from "@llmq/schemes";
import {
  compressModule,
  createShardedWriter,
  formatSerializationError,
  msWeightCodes,
  parsePythonJson,
  stageDirectory,
} from "@llmq/serialization";
import { type DType, type Tensor, Tensor as TensorClass, cast, nodeBuiltin, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { groupFormat, quantizationConfigJson } from "./checkpoint-format.js";
import { type LlmqError, ioErrorFrom, modelError } from "./errors.js";
const { copyFile, readFile, readdir, writeFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// msModelSlim's layout → a compressed-tensors checkpoint, for the types both have: W8A8 (static per-tensor asymmetric
// int8 inputs), W8A8_DYNAMIC (per-token dynamic inputs), W8A16 / W4A16 per channel or per group, symmetric or not.
// Each quantized linear's codes, scales and offsets are compressed-tensors' codes, scales and zero points (the same
// numbers: the offset convention x/s + offset is CT's); the scheme is rebuilt from the tensors — bits from the type,
// symmetric when every offset is 0, per tensor when every scale (and offset) of a linear is the same, per group when
// the scale has several columns — and written through llmq's own compressed-tensors writer (compressModule,
// quantizationConfigJson), so a checkpoint that went CT → msModelSlim → CT comes back byte for byte. What the layout
// does not hold: the observers (those llm-compressor's QuantizationModifier attaches when a recipe names none are
// written: memoryless_minmax for weights, minmax for static inputs, none for dynamic ones), recipe.yaml, and C8 KV parameters (msModelSlim's per-channel
// k/v projection ranges have no compressed-tensors kv_cache_scheme form; they are left out with a warning).

/** The compressed-tensors counterpart of each msModelSlim type: weight bits and input-activation args. */
export const MS_CT_TYPES: Readonly<Record<string, { readonly bits: number; readonly input: Readonly<Record<string, unknown>> | null }>> = {
  W8A8: { bits: 8, input: { num_bits: 8, type: "int", symmetric: false, strategy: "tensor", dynamic: false, observer: "minmax" } },
  W8A8_DYNAMIC: { bits: 8, input: { num_bits: 8, type: "int", symmetric: false, strategy: "token", dynamic: true, observer: null } },
  W8A16: { bits: 8, input: null },
  W4A16: { bits: 4, input: null },
};
const DTYPE_OF: Readonly<Record<string, DType>> = { float32: "f32", bfloat16: "bf16", float16: "f16" };
const OWN = ["weight", "weight_scale", "weight_offset", "input_scale", "input_offset", "deq_scale", "quant_bias"];
const isKv = (n: string): boolean => n.endsWith(".kv_cache_scale") || n.endsWith(".kv_cache_offset");
const CARRIED = /^(tokenizer.*|special_tokens_map\.json|generation_config\.json)$/;

export interface MsToCompressedTensorsResult {
  readonly output: string;
  readonly type: string;
  readonly format: string;
  readonly quantized: number;
  /** Stored tensors, and the dense parameter count (n·k per quantized linear). */
  readonly tensors: number;
  readonly parameters: number;
  readonly dtype: DType;
  readonly tokenizer: boolean;
  readonly files: ReadonlyArray<string>;
  readonly warnings: ReadonlyArray<string>;
}

const allEqual = (a: Float32Array): boolean => a.every((v) => v === a[0]);

interface CtModule {
  readonly scheme: QuantizationScheme;
  readonly parameters: number;
  readonly tensors: ReadonlyArray<readonly [string, Tensor]>;
}

/** One quantized linear of the layout as compressed-tensors' scheme and compressed tensors. */
const ctModule = (type: string, description: Record<string, unknown>, tensors: ReadonlyMap<string, Tensor>, l: string, dtype: DType): E.Either<string, CtModule> => {
  const codes = msWeightCodes(description, tensors, l);
  if (E.isLeft(codes)) return codes;
  const { q, n, k } = codes.right;
  const s = toFloat32(tensors.get(`${l}.weight_scale`)!).data;
  const o = tensors.has(`${l}.weight_offset`) ? toFloat32(tensors.get(`${l}.weight_offset`)!).data : new Float32Array(s.length);
  const cols = s.length / n;
  const symmetric = o.every((v) => v === 0);
  const perTensor = cols === 1 && n > 1 && allEqual(s) && allEqual(o);
  const strategy = cols > 1 ? { strategy: "group", group_size: k / cols } : { strategy: perTensor ? "tensor" : "channel" };
  const spec = MS_CT_TYPES[type]!;
  const scheme = decodeQuantizationScheme({ targets: ["Linear"], weights: { num_bits: spec.bits, type: "int", symmetric, ...strategy, observer: "memoryless_minmax" }, input_activations: spec.input });
  if (E.isLeft(scheme)) return E.left(formatSchemeError(scheme.left));
  const shape = perTensor ? [1] : [n, cols];
  const pick = (a: Float32Array) => (perTensor ? a.subarray(0, 1) : a);
  const state = new Map<string, Tensor>([
    ["weight", new TensorClass("i8", [n, k], q)],
    ["weight_scale", cast(new TensorClass("f32", shape, Float32Array.from(pick(s))), dtype)],
  ]);
  if (!symmetric) state.set("weight_zero_point", new TensorClass("i8", shape, Int8Array.from(pick(o))));
  if (type === "W8A8") {
    state.set("input_scale", cast(toFloat32(tensors.get(`${l}.input_scale`)!), dtype));
    state.set("input_zero_point", new TensorClass("i8", [1], Int8Array.from(toFloat32(tensors.get(`${l}.input_offset`)!).data)));
  }
  const c = compressModule(groupFormat(scheme.right), scheme.right, state, { module: l });
  if (E.isLeft(c)) return E.left(formatSerializationError(c.left));
  return E.right({ scheme: scheme.right, parameters: n * k, tensors: [...c.right].map(([p, t]) => [`${l}.${p}`, t] as const) });
};

/** Every tensor of the compressed-tensors checkpoint, the quantized modules' schemes and the Linears left float. */
const ctTensors = (
  h: ModelHandle,
  type: string,
  description: Record<string, unknown>,
  tensors: ReadonlyMap<string, Tensor>,
  dtype: DType,
): E.Either<string, { out: Array<readonly [string, Tensor]>; modules: CtModule[]; unquantized: string[]; kv: number }> => {
  const modules: CtModule[] = [];
  const unquantized: string[] = [];
  const owned = new Set<string>();
  const out: Array<readonly [string, Tensor]> = [];
  for (const m of h.linearModules()) {
    if (description[`${m.name}.weight`] !== type || !tensors.has(`${m.name}.weight_scale`)) {
      unquantized.push(m.name);
      continue;
    }
    const c = ctModule(type, description, tensors, m.name, dtype);
    if (E.isLeft(c)) return c;
    modules.push(c.right);
    out.push(...c.right.tensors);
    for (const p of OWN) owned.add(`${m.name}.${p}`);
  }
  let kv = 0;
  for (const [n, t] of tensors) {
    if (isKv(n)) kv++;
    else if (!owned.has(n)) out.push([n, t]);
  }
  return E.right({ out, modules, unquantized, kv });
};

/** Writes the staged checkpoint's files; returns the format and warnings. */
const writeCt = async (msDir: string, staging: string): Promise<Omit<MsToCompressedTensorsResult, "output" | "files">> => {
  const raw = await readMsModelSlimFiles(msDir)();
  if (E.isLeft(raw)) throw new Error(JSON.stringify(raw.left));
  const { description, tensors } = raw.right;
  const type = String(description.model_quant_type);
  if (MS_CT_TYPES[type] === undefined) throw new Error(`model_quant_type ${type} has no compressed-tensors counterpart llmq writes (${Object.keys(MS_CT_TYPES).join(", ")})`);
  const config = parsePythonJson(await readFile(join(msDir, "config.json"), "utf8"));
  if (E.isLeft(config)) throw new Error(`${msDir}/config.json: ${config.left}`);
  const rawConfig = config.right as Record<string, unknown>;
  const h = modelFromSource(msDir, JSON.parse(await readFile(join(msDir, "config.json"), "utf8")), memoryWeightSource(new Map()));
  if (E.isLeft(h)) throw new Error(JSON.stringify(h.left));
  const dtype = DTYPE_OF[String(rawConfig.torch_dtype)] ?? "f32";
  const built = ctTensors(h.right, type, description, tensors, dtype);
  if (E.isLeft(built)) throw new Error(built.left);
  const writer = await createShardedWriter(staging, { maxShardSize: "5GB" })();
  if (E.isLeft(writer)) throw new Error(formatSerializationError(writer.left));
  for (const [n, t] of built.right.out) {
    const r = await writer.right.add(n, t)();
    if (E.isLeft(r)) throw new Error(formatSerializationError(r.left));
  }
  const closed = await writer.right.close()();
  if (E.isLeft(closed)) throw new Error(formatSerializationError(closed.left));
  const cfg = quantizationConfigJson(rawConfig, built.right.modules, built.right.unquantized);
  if (E.isLeft(cfg)) throw new Error(JSON.stringify(cfg.left));
  await writeFile(join(staging, "config.json"), cfg.right.text);
  const carried = (await readdir(msDir)).filter((f) => CARRIED.test(f));
  for (const f of carried) await copyFile(join(msDir, f), join(staging, f));
  const { out, modules } = built.right;
  const quantizedNames = new Set(modules.flatMap((m) => m.tensors.map(([n]) => n)));
  const parameters = modules.reduce((a, m) => a + m.parameters, 0) + out.reduce((a, [n, t]) => a + (quantizedNames.has(n) ? 0 : t.size), 0);
  const warnings = built.right.kv > 0 ? [`${built.right.kv} C8 KV-cache tensors (msModelSlim kv_cache_scale / kv_cache_offset) have no compressed-tensors form and were left out`] : [];
  return { format: cfg.right.format, type, quantized: modules.length, tensors: out.length, parameters, dtype, tokenizer: carried.some((f) => f === "tokenizer.json"), warnings };
};

/** `llmq convert --from msmodelslim <dir> --to compressed-tensors`: the layout as a compressed-tensors checkpoint (staged, then renamed). */
export const msModelSlimToCompressedTensors =
  (msDir: string, output: string, overwrite = false): TE.TaskEither<LlmqError, MsToCompressedTensorsResult> =>
  async () => {
    const staged = await stageDirectory(output, { overwrite, protect: [msDir] })();
    if (E.isLeft(staged)) return E.left(ioErrorFrom(output, "cannot stage the output", staged.left));
    try {
      const r = await writeCt(msDir, staged.right.staging);
      const files = (await readdir(staged.right.staging)).sort();
      const done = await staged.right.commit()();
      return E.isLeft(done) ? E.left(ioErrorFrom(output, "cannot move the output into place", done.left)) : E.right({ output, ...r, files });
    } catch (e) {
      return E.left(modelError(`converting ${msDir} from msModelSlim's layout to compressed-tensors failed: ${(e as Error).message}`));
    } finally {
      await staged.right.discard();
    }
  };
