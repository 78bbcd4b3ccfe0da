// Pre-quantized HF checkpoints (GPTQ, AWQ) read back to dense f32 weights. The method comes from config.json's
// `quantization_config` exactly as transformers' AutoQuantizationConfig.from_dict picks it (load_in_4bit/8bit win over
// quant_method; a missing or unknown method is an error naming the supported ones).
import { type Tensor, Tensor as TensorClass, cast } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type SerializationError, compressorError, invalidConfig } from "./errors.js";
import { type AwqOptions, type GptqOptions, type PackedTensor, GPTQ_BITS, dequantizeAwq, dequantizeGptq } from "./gptq-awq-dequantize.js";
import type { Checkpoint } from "./safetensors-reader.js";

/** Methods llmq reads back from a pre-quantized checkpoint ("compressed-tensors" through decompressModule). */
export const READABLE_QUANT_METHODS: ReadonlyArray<string> = ["gptq", "awq", "compressed-tensors"];
/** Methods transformers knows (HF ~4.56 AUTO_QUANTIZER_MAPPING), for the message when one is not readable yet. */
const TRANSFORMERS_METHODS: ReadonlyArray<string> = [
  "awq",
  "bitsandbytes_4bit",
  "bitsandbytes_8bit",
  "gptq",
  "aqlm",
  "quanto",
  "quark",
  "fp_quant",
  "eetq",
  "higgs",
  "hqq",
  "compressed-tensors",
  "fbgemm_fp8",
  "torchao",
  "bitnet",
  "vptq",
  "spqr",
  "fp8",
  "auto-round",
  "mxfp4",
];

export type QuantizedFormat = { readonly method: "gptq"; readonly options: GptqOptions } | { readonly method: "awq"; readonly options: AwqOptions };

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/** AutoQuantizationConfig.from_dict's choice of method: bitsandbytes flags first, then `quant_method`. */
export const quantMethodOf = (file: string, qc: unknown): E.Either<SerializationError, string> => {
  if (!isRecord(qc)) return E.left(invalidConfig(file, "quantization_config", "must be an object"));
  const m = qc.load_in_4bit === true ? "bitsandbytes_4bit" : qc.load_in_8bit === true ? "bitsandbytes_8bit" : qc.quant_method;
  if (typeof m !== "string") return E.left(invalidConfig(file, "quantization_config.quant_method", `is missing (llmq reads ${READABLE_QUANT_METHODS.join(", ")})`));
  if (READABLE_QUANT_METHODS.includes(m)) return E.right(m);
  const known = TRANSFORMERS_METHODS.includes(m) ? " (transformers knows it; llmq does not read it yet)" : "";
  return E.left(invalidConfig(file, "quantization_config.quant_method", `${JSON.stringify(m)} is not supported${known}; llmq reads ${READABLE_QUANT_METHODS.join(", ")}`));
};

const GPTQ_FORMATS: Readonly<Record<string, boolean>> = { gptq: true, gptq_v2: false };

const gptqOptions = (file: string, qc: Record<string, unknown>): E.Either<SerializationError, QuantizedFormat> => {
  const bits = qc.bits;
  if (typeof bits !== "number" || !GPTQ_BITS.includes(bits)) return E.left(invalidConfig(file, "quantization_config.bits", `must be one of ${GPTQ_BITS.join(", ")}, got ${JSON.stringify(bits)}`));
  const gs = qc.group_size ?? 128;
  if (typeof gs !== "number" || !(gs === -1 || (Number.isSafeInteger(gs) && gs > 0))) return E.left(invalidConfig(file, "quantization_config.group_size", `must be -1 or a positive integer, got ${JSON.stringify(gs)}`));
  // HF5.18 renamed checkpoint_format to `format`; both are read, the legacy key first as GPTQConfig does.
  const fmt = qc.checkpoint_format ?? qc.format ?? "gptq";
  if (typeof fmt !== "string" || !Object.hasOwn(GPTQ_FORMATS, fmt))
    return E.left(invalidConfig(file, "quantization_config.checkpoint_format", `${JSON.stringify(fmt)} is not read (llmq reads ${Object.keys(GPTQ_FORMATS).join(", ")})`));
  return E.right({ method: "gptq", options: { bits: bits as GptqOptions["bits"], groupSize: gs, v1: GPTQ_FORMATS[fmt]! } });
};

const awqOptions = (file: string, qc: Record<string, unknown>): E.Either<SerializationError, QuantizedFormat> => {
  if ((qc.bits ?? 4) !== 4) return E.left(invalidConfig(file, "quantization_config.bits", `AWQ packs 4 bits, got ${JSON.stringify(qc.bits)}`));
  if ((qc.zero_point ?? true) !== true) return E.left(invalidConfig(file, "quantization_config.zero_point", "false (symmetric AWQ) is not read yet"));
  const gs = qc.group_size ?? 128;
  if (typeof gs !== "number" || !Number.isSafeInteger(gs) || gs <= 0) return E.left(invalidConfig(file, "quantization_config.group_size", `must be a positive integer, got ${JSON.stringify(gs)}`));
  const v = String(qc.version ?? qc.format ?? "gemm").toLowerCase();
  if (v !== "gemm" && v !== "gemv") return E.left(invalidConfig(file, "quantization_config.version", `${JSON.stringify(v)} is not read (llmq reads gemm, gemv)`));
  return E.right({ method: "awq", options: { groupSize: gs, version: v } });
};

/** The GPTQ / AWQ layout a config.json's quantization_config describes (compressed-tensors is read elsewhere). */
export const quantizedFormatOf = (file: string, qc: unknown): E.Either<SerializationError, QuantizedFormat> =>
  pipe(
    quantMethodOf(file, qc),
    E.chain((m) =>
      m === "gptq"
        ? gptqOptions(file, qc as Record<string, unknown>)
        : m === "awq"
          ? awqOptions(file, qc as Record<string, unknown>)
          : E.left(invalidConfig(file, "quantization_config.quant_method", `${m} checkpoints are opened with the compressed-tensors reader, not as GPTQ/AWQ`)),
    ),
  );

// ----- checkpoint -----

const PARTS = ["qweight", "qzeros", "scales", "g_idx"] as const;

const packed = <A>(t: Tensor, f: (t: Tensor) => A): PackedTensor<A> => ({ data: f(t), shape: t.shape });
const i32 = (t: Tensor): Int32Array => (t.dtype === "i32" ? (t.data as Int32Array) : Int32Array.from(cast(t, "i32").data as Int32Array));
const f32 = (t: Tensor): Float32Array => cast(t, "f32").data as Float32Array;

/** One packed linear (its tensors already read) → its dense f32 weight. */
export const dequantizeModule = (file: string, prefix: string, parts: ReadonlyMap<string, Tensor>, fmt: QuantizedFormat): E.Either<SerializationError, Tensor<"f32">> => {
  const missing = ["qweight", "qzeros", "scales"].filter((p) => !parts.has(p));
  if (missing.length > 0) return E.left(compressorError(file, `${prefix}.weight`, fmt.method, `missing ${missing.map((m) => `${prefix}.${m}`).join(", ")}`));
  const bad = (["qweight", "qzeros", "g_idx"] as const).find((p) => parts.has(p) && !["i32", "i64"].includes(parts.get(p)!.dtype));
  if (bad !== undefined) return E.left(compressorError(file, `${prefix}.${bad}`, fmt.method, `must be an integer tensor, got ${parts.get(bad)!.dtype}`));
  const common = { qweight: packed(parts.get("qweight")!, i32), qzeros: packed(parts.get("qzeros")!, i32), scales: packed(parts.get("scales")!, f32) };
  const r =
    fmt.method === "gptq"
      ? dequantizeGptq({ ...common, gIdx: parts.has("g_idx") ? packed(parts.get("g_idx")!, i32) : undefined }, fmt.options)
      : dequantizeAwq(common, fmt.options);
  return E.isLeft(r) ? E.left(compressorError(file, `${prefix}.weight`, fmt.method, r.left)) : E.right(new TensorClass("f32", r.right.shape, r.right.data));
};

/**
 * Every tensor of a GPTQ / AWQ checkpoint, packed linears replaced by their dense f32 `<prefix>.weight` (in the
 * position of their qweight); all other tensors as stored.
 */
export const dequantizeCheckpoint = (
  ckpt: Checkpoint,
  fmt: QuantizedFormat,
): TE.TaskEither<SerializationError, { readonly tensors: Map<string, Tensor>; readonly dequantized: ReadonlyArray<string> }> => async () => {
  const modules = new Map<string, Map<string, Tensor>>();
  const out = new Map<string, Tensor>();
  const partOf = (name: string): readonly [string, string] | null => {
    const p = PARTS.find((s) => name.endsWith(`.${s}`));
    return p === undefined ? null : [name.slice(0, -p.length - 1), p];
  };
  for (const name of ckpt.names) {
    const r = await ckpt.read(name)();
    if (E.isLeft(r)) return r;
    const part = partOf(name);
    if (part === null) out.set(name, r.right);
    else {
      if (!modules.has(part[0])) out.set(`${part[0]}.weight`, r.right); // placeholder keeps the order
      modules.set(part[0], (modules.get(part[0]) ?? new Map()).set(part[1], r.right));
    }
  }
  for (const [prefix, parts] of modules) {
    const w = dequantizeModule(ckpt.dir, prefix, parts, fmt);
    if (E.isLeft(w)) return w;
    out.set(`${prefix}.weight`, w.right);
  }
  return E.right({ tensors: out, dequantized: [...modules.keys()] });
};
