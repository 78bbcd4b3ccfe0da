import { kvScaleNames } from "@llmq/kv-cache";
import { autoQuantizationConfig, autoQuantizer, formatHfQuantizerError, quantizerNameOf, toDiffDict } from "@llmq/hf-quantizers";
import { type Checkpoint, type PyJsonObject, dumpPythonJson, formatSerializationError, openCheckpoint, openGguf, parsePythonJson } from "@llmq/serialization";
import { nodeBuiltin, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type LlmqError, ioError, ioErrorFrom, modelError } from "./errors.js";
import { isGgufPath } from "./open-model.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

/** The stable `--json` shape of `llmq inspect` (DESIGN.md §5). */
export interface InspectResult {
  readonly dir: string;
  readonly format: string;
  readonly quantization_config: Record<string, unknown> | null;
  readonly tensors: ReadonlyArray<{ readonly name: string; readonly dtype: string; readonly shape: ReadonlyArray<number>; readonly bytes: number }>;
  readonly total_bytes: number;
  readonly files: number;
  /** Bytes of the tensors that replace quantized weights vs the f32/bf16 weights they stand for (null when dense). */
  readonly compression_ratio: number | null;
  /** GGUF files only: every scalar metadata value (64-bit integers as strings) and each array's length. */
  readonly gguf_metadata?: Readonly<Record<string, unknown>>;
  /** The calibrated KV cache: config.json's kv_cache_scheme and each attention module's k / v scales (null when none). */
  readonly kv_cache: {
    readonly scheme: Record<string, unknown> | null;
    readonly layers: ReadonlyArray<{ readonly attention: string; readonly k_scale: ReadonlyArray<number>; readonly v_scale: ReadonlyArray<number>; readonly legacy_names: boolean }>;
  } | null;
  /** transformers' reading of quantization_config: its quantizer, the class flags and the non-default keys (null when none). */
  readonly hf_quantizer?: HfQuantizerInfo | null;
}

export type HfQuantizerInfo =
  | {
      readonly method: string;
      readonly config_class: string;
      readonly requires_calibration: boolean;
      readonly is_serializable: boolean;
      readonly is_trainable: boolean;
      /** to_diff_dict(): the keys that differ from the class's defaults. */
      readonly flags: unknown;
    }
  | { readonly method: string | null; readonly error: string };

/** AutoQuantizationConfig.from_dict + AutoHfQuantizer.from_config on config.json's quantization_config. */
export const hfQuantizerInfo = (configText: string): HfQuantizerInfo | null => {
  const raw = parsePythonJson(configText);
  const qc = E.isRight(raw) ? (raw.right as PyJsonObject | null)?.quantization_config : undefined;
  if (typeof qc !== "object" || qc === null || Array.isArray(qc)) return null;
  const c = autoQuantizationConfig(qc as PyJsonObject);
  if (E.isLeft(c)) return { method: typeof (qc as PyJsonObject).quant_method === "string" ? ((qc as PyJsonObject).quant_method as string) : null, error: formatHfQuantizerError(c.left) };
  const q = autoQuantizer(c.right);
  if (E.isLeft(q)) return { method: quantizerNameOf(c.right), error: formatHfQuantizerError(q.left) };
  return {
    method: q.right.name,
    config_class: c.right.className,
    requires_calibration: q.right.requiresCalibration,
    is_serializable: q.right.isSerializable,
    is_trainable: q.right.isTrainable,
    flags: JSON.parse(dumpPythonJson(toDiffDict(c.right))),
  };
};

/** The k / v scales a checkpoint stores (compressed-tensors' or the legacy names), read: they are a few numbers each. */
const kvCacheOf = async (ck: Checkpoint, qc: Record<string, unknown> | null): Promise<InspectResult["kv_cache"]> => {
  const names = kvScaleNames(ck.names);
  const scheme = qc !== null && typeof qc.kv_cache_scheme === "object" && qc.kv_cache_scheme !== null ? (qc.kv_cache_scheme as Record<string, unknown>) : null;
  if (names.size === 0 && scheme === null) return null;
  const values = async (n: string): Promise<number[]> => {
    const t = await ck.read(n)();
    return E.isRight(t) ? Array.from(toFloat32(t.right).data) : [];
  };
  const layers = [];
  for (const n of names.values()) layers.push({ attention: n.attention, k_scale: await values(n.k), v_scale: await values(n.v), legacy_names: n.legacy });
  return { scheme, layers };
};

/** `llmq inspect file.gguf`: metadata, and per tensor its ggml type, torch-order shape and bytes. */
const inspectGguf = async (path: string): Promise<E.Either<LlmqError, InspectResult>> => {
  const g = await openGguf(path)();
  if (E.isLeft(g)) return E.left(modelError(formatSerializationError(g.left)));
  await g.right.close();
  const meta: Record<string, unknown> = {};
  for (const [k, v] of g.right.metadata)
    meta[k] = v.type === "ARRAY" ? `[${v.itemType} × ${v.value.length}]` : typeof v.value === "bigint" ? v.value.toString() : v.value;
  const tensors = g.right.header.tensors.map((t) => ({ name: t.name, dtype: t.type.name, shape: t.shape, bytes: t.byteLength }));
  const quantized = g.right.header.tensors.filter((t) => !["F32", "F16", "BF16"].includes(t.type.name));
  const q = quantized.reduce((a, t) => a + t.byteLength, 0);
  return E.right({
    dir: path,
    format: "gguf",
    quantization_config: null,
    tensors,
    total_bytes: tensors.reduce((a, t) => a + t.bytes, 0),
    files: 1,
    // quantized tensors vs the bf16 tensors they stand for
    compression_ratio: q > 0 ? quantized.reduce((a, t) => a + 2 * t.elements, 0) / q : null,
    kv_cache: null,
    gguf_metadata: meta,
  });
};

const DTYPE_BYTES: Readonly<Record<string, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

/** Bytes of the tensors that replace quantized weights vs the dense weights they stand for (null: nothing compressed). */
const compressionRatio = async (ck: Checkpoint, tensors: InspectResult["tensors"]): Promise<number | null> => {
  // Each compressed module's tensors vs its dense weight at the dtype of the model's unquantized float tensors.
  const dense = tensors.find((t) => t.name.endsWith("norm.weight"));
  const elemBytes = dense ? (DTYPE_BYTES[dense.dtype] ?? 4) : 4;
  const byName = new Map(tensors.map((t) => [t.name, t]));
  let compressed = 0;
  let original = 0;
  for (const t of tensors) {
    if (!t.name.endsWith(".weight_scale")) continue;
    const base = t.name.slice(0, -".weight_scale".length);
    let elems: number | null = null;
    const shapeT = byName.get(`${base}.weight_shape`);
    if (shapeT !== undefined) {
      const v = await ck.read(shapeT.name)();
      if (E.isRight(v)) elems = Array.from(v.right.data as BigInt64Array, Number).reduce((a, b) => a * b, 1);
    } else {
      const w = byName.get(`${base}.weight`);
      if (w !== undefined) elems = w.shape.reduce((a, b) => a * b, 1);
    }
    if (elems === null) continue;
    original += elems * elemBytes;
    for (const [n, u] of byName) if (n === `${base}.weight` || n.startsWith(`${base}.weight_`)) compressed += u.bytes;
  }
  return compressed > 0 ? original / compressed : null;
};

/** `llmq inspect <dir | file.gguf>`: scheme, format and every tensor's dtype/shape/bytes, read from headers only. */
export const inspectCommand = (dir: string): TE.TaskEither<LlmqError, InspectResult> => async () => {
  if (await isGgufPath(dir)) return inspectGguf(dir);
  let raw: Record<string, unknown>;
  let text: string;
  const cfgPath = join(dir, "config.json");
  try {
    text = await readFile(cfgPath, "utf8");
    raw = JSON.parse(text) as Record<string, unknown>;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === "ENOENT") return E.left(ioError(cfgPath, "not found (is this a model directory?)", code));
    return E.left(code === undefined ? modelError(`${cfgPath}: not valid JSON: ${(e as Error).message}`) : ioErrorFrom(cfgPath, "cannot read", e));
  }
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return E.left(modelError(`${cfgPath}: the top level must be a JSON object`));
  const ck = await openCheckpoint(dir)();
  if (E.isLeft(ck)) return E.left(modelError(formatSerializationError(ck.left)));
  try {
    const tensors = ck.right.names.map((name) => {
      const i = ck.right.info(name)!.info;
      return { name, dtype: i.dtype, shape: i.shape, bytes: i.dataOffsets[1] - i.dataOffsets[0] };
    });
    const qc = typeof raw.quantization_config === "object" && raw.quantization_config !== null ? (raw.quantization_config as Record<string, unknown>) : null;
    const total = tensors.reduce((a, t) => a + t.bytes, 0);
    const ratio = qc === null ? null : await compressionRatio(ck.right, tensors);
    return E.right({
      dir,
      format: qc !== null && typeof qc.format === "string" ? qc.format : "dense",
      quantization_config: qc,
      tensors,
      total_bytes: total,
      files: ck.right.files.length,
      compression_ratio: ratio,
      kv_cache: await kvCacheOf(ck.right, qc),
      hf_quantizer: hfQuantizerInfo(text),
    });
  } finally {
    await ck.right.close();
  }
};

const kvLine = (kv: NonNullable<InspectResult["kv_cache"]>): string => {
  const s = kv.scheme;
  const range = (key: "k_scale" | "v_scale"): string => {
    const all = kv.layers.flatMap((l) => l[key]);
    return all.length === 0 ? "none" : `${Math.min(...all).toPrecision(4)}…${Math.max(...all).toPrecision(4)}`;
  };
  const what = s === null ? "scales without a kv_cache_scheme in config.json" : `${s.type}${s.num_bits} ${s.strategy}${s.symmetric === false ? " asym" : ""}${s.observer ? ` ${s.observer}` : ""}`;
  return `  kv cache: ${what}; ${kv.layers.length} attention modules, k_scale ${range("k_scale")}, v_scale ${range("v_scale")}${kv.layers.some((l) => l.legacy_names) ? " (legacy k_proj/v_proj.output_scale names)" : ""}`;
};

const human = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

/** One line per transform scheme of a compressed-tensors transform_config (SpinQuant R1…, QuIP u / v). */
const transformLines = (tc: unknown): ReadonlyArray<string> => {
  const groups = (tc as { config_groups?: Record<string, { type?: string; head_dim?: number | null; apply?: Array<{ location?: string; inverse?: boolean }> }> } | undefined)?.config_groups;
  return Object.entries(groups ?? {}).map(
    ([g, s]) =>
      `  transform ${g}: ${s.type}${s.head_dim ? ` block ${s.head_dim}` : ""} at ${(s.apply ?? []).map((a) => `${a.location}${a.inverse ? " (inverse)" : ""}`).join(", ")}`,
  );
};

export const formatInspect = (r: InspectResult): string => {
  const groups = r.quantization_config?.config_groups as Record<string, { targets?: string[]; weights?: Record<string, unknown> | null }> | undefined;
  const lines = [
    `${r.dir}: format ${r.format}, ${r.tensors.length} tensors in ${r.files} file(s), ${human(r.total_bytes)}` +
      (r.compression_ratio !== null ? `, quantized weights ${r.compression_ratio.toFixed(2)}× smaller` : ""),
  ];
  for (const [g, s] of Object.entries(groups ?? {})) {
    const w = s.weights;
    lines.push(
      `  ${g}: targets ${JSON.stringify(s.targets ?? [])}` +
        (w ? ` weights ${w.type}${w.num_bits} ${w.strategy}${w.group_size ? ` ${w.group_size}` : ""}${w.symmetric ? " sym" : " asym"}${w.actorder ? ` actorder=${w.actorder}` : ""}` : ""),
    );
  }
  const hq = r.hf_quantizer;
  if (hq)
    lines.push(
      "error" in hq
        ? `  transformers quantizer ${hq.method ?? "?"}: ${hq.error}`
        : `  transformers quantizer ${hq.method} (${hq.config_class}): requires_calibration ${hq.requires_calibration}, serializable ${hq.is_serializable}, trainable ${hq.is_trainable}; flags ${JSON.stringify(hq.flags)}`,
    );
  if (r.quantization_config && Array.isArray(r.quantization_config.ignore)) lines.push(`  ignore: ${JSON.stringify(r.quantization_config.ignore)}`);
  if (r.kv_cache !== null) lines.push(kvLine(r.kv_cache));
  lines.push(...transformLines(r.quantization_config?.transform_config));
  for (const [k, v] of Object.entries(r.gguf_metadata ?? {})) if (!k.startsWith("tokenizer.chat_template")) lines.push(`  ${k}: ${String(v)}`);
  const w = Math.max(...r.tensors.map((t) => t.name.length));
  for (const t of r.tensors) lines.push(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(7)} [${t.shape.join(", ")}]  ${t.bytes}`);
  return lines.join("\n");
};
