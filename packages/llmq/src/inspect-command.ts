import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { formatSerializationError, openCheckpoint, openGguf } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type LlmqError, ioError, ioErrorFrom, modelError } from "./errors.js";
import { isGgufPath } from "./open-model.js";

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
}

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
    gguf_metadata: meta,
  });
};

const DTYPE_BYTES: Readonly<Record<string, number>> = { F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1, F8_E4M3: 1, F8_E5M2: 1 };

/** `llmq inspect <dir | file.gguf>`: scheme, format and every tensor's dtype/shape/bytes, read from headers only. */
export const inspectCommand = (dir: string): TE.TaskEither<LlmqError, InspectResult> => async () => {
  if (await isGgufPath(dir)) return inspectGguf(dir);
  let raw: Record<string, unknown>;
  const cfgPath = join(dir, "config.json");
  try {
    raw = JSON.parse(await readFile(cfgPath, "utf8")) as Record<string, unknown>;
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
    let ratio: number | null = null;
    if (qc !== null) {
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
          const v = await ck.right.read(shapeT.name)();
          if (E.isRight(v)) elems = Array.from(v.right.data as BigInt64Array, Number).reduce((a, b) => a * b, 1);
        } else {
          const w = byName.get(`${base}.weight`);
          if (w !== undefined) elems = w.shape.reduce((a, b) => a * b, 1);
        }
        if (elems === null) continue;
        original += elems * elemBytes;
        for (const [n, u] of byName) if (n === `${base}.weight` || n.startsWith(`${base}.weight_`)) compressed += u.bytes;
      }
      ratio = compressed > 0 ? original / compressed : null;
    }
    return E.right({
      dir,
      format: qc !== null && typeof qc.format === "string" ? qc.format : "dense",
      quantization_config: qc,
      tensors,
      total_bytes: total,
      files: ck.right.files.length,
      compression_ratio: ratio,
    });
  } finally {
    await ck.right.close();
  }
};

const human = (b: number): string => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(2)} MiB` : `${(b / 1024).toFixed(1)} KiB`);

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
  if (r.quantization_config && Array.isArray(r.quantization_config.ignore)) lines.push(`  ignore: ${JSON.stringify(r.quantization_config.ignore)}`);
  for (const [k, v] of Object.entries(r.gguf_metadata ?? {})) if (!k.startsWith("tokenizer.chat_template")) lines.push(`  ${k}: ${String(v)}`);
  const w = Math.max(...r.tensors.map((t) => t.name.length));
  for (const t of r.tensors) lines.push(`  ${t.name.padEnd(w)}  ${t.dtype.padEnd(7)} [${t.shape.join(", ")}]  ${t.bytes}`);
  return lines.join("\n");
};
