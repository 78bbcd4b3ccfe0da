// Pre-quantized HF checkpoints (GPTQ, AWQ) read back to dense f32 weights. The method comes from config.json's
// `quantization_config` exactly as transformers' AutoQuantizationConfig.from_dict picks it (load_in_4bit/8bit win over
// quant_method; a missing or unknown method is an error naming the supported ones).
import { type Tensor, Tensor as TensorClass, cast, roundToDType } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type SerializationError, compressorError, invalidConfig } from "./errors.js";
import { dequantizeBnb4bit, dequantizeBnbInt8, parseBnbQuantState } from "./bnb-dequantize.js";
import { dequantizeFp8Blocks, dequantizeFp8Rows } from "./fp8-dequantize.js";
import { type HqqFloat, type HqqFloatTensor, dequantizeHqq } from "./hqq-dequantize.js";
import { dequantizeAqlm } from "./aqlm-dequantize.js";
import { dequantizeEetq } from "./eetq.js";
import { type AwqOptions, type DenseWeight, type GptqOptions, type PackedTensor, GPTQ_BITS, dequantizeAwq, dequantizeGptq } from "./gptq-awq-dequantize.js";
import type { Checkpoint } from "./safetensors-reader.js";

/** Methods llmq reads back from a pre-quantized checkpoint ("compressed-tensors" through decompressModule). */
export const READABLE_QUANT_METHODS: ReadonlyArray<string> = ["gptq", "awq", "bitsandbytes_4bit", "bitsandbytes_8bit", "fp8", "fbgemm_fp8", "hqq", "aqlm", "eetq", "compressed-tensors"];
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

export type QuantizedFormat =
  | { readonly method: "gptq"; readonly options: GptqOptions }
  | { readonly method: "awq"; readonly options: AwqOptions }
  /** Everything else (quant type, block sizes, dtype, shape) is in each weight's quant_state. */
  | { readonly method: "bitsandbytes_4bit" }
  | { readonly method: "bitsandbytes_8bit" }
  /** FineGrainedFP8 (block size implied by each weight_scale_inv grid) and FBGEMM per-row FP8. */
  | { readonly method: "fp8" }
  | { readonly method: "fbgemm_fp8" }
  /** Per-module meta (nbits, group size, axis, packing, compute dtype) is stored beside each W_q. */
  | { readonly method: "hqq" }
  /** Group sizes and codebook counts are in each module's tensor shapes. */
  | { readonly method: "aqlm" }
  /** EETQ int8: `weight` [in, out] in EETQ's SM 75–89 layout + `weight_scales` per output. */
  | { readonly method: "eetq" };

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

/** The GPTQ / AWQ / bitsandbytes layout a config.json's quantization_config describes (compressed-tensors is read elsewhere). */
export const quantizedFormatOf = (file: string, qc: unknown): E.Either<SerializationError, QuantizedFormat> =>
  pipe(
    quantMethodOf(file, qc),
    E.chain((m) =>
      m === "gptq"
        ? gptqOptions(file, qc as Record<string, unknown>)
        : m === "awq"
          ? awqOptions(file, qc as Record<string, unknown>)
          : m === "bitsandbytes_4bit" || m === "bitsandbytes_8bit" || m === "fp8" || m === "fbgemm_fp8" || m === "hqq" || m === "aqlm" || m === "eetq"
            ? E.right({ method: m })
            : E.left(invalidConfig(file, "quantization_config.quant_method", `${m} checkpoints are opened with the compressed-tensors reader, not as GPTQ/AWQ`)),
    ),
  );

// ----- checkpoint -----

const PACKED_PARTS = ["qweight", "qzeros", "scales", "g_idx"] as const;
/** HQQLinear.state_dict_keys(): W_q, scale, zero and the meta hqq encodes as tensors. */
const HQQ_PARTS: ReadonlyArray<string> = [
  "W_q",
  "scale",
  "zero",
  "nbits",
  "group_size",
  "shape",
  "axis",
  "packing",
  "unpack_view_dtype",
  "view_as_float",
  "quant_scale",
  "quant_zero",
  "compute_dtype",
  "offload_meta",
  "encoded_state_dict",
  "stores_quant_config",
  "channel_wise",
  "optimize",
  "round_zero",
];
const BNB4_PARTS = /^(.*)\.weight\.(absmax|quant_map|nested_absmax|nested_quant_map|quant_state\.bitsandbytes__(?:nf4|fp4))$/;

/**
 * Which stored tensors belong to a quantized linear, as [module prefix, part]: GPTQ/AWQ `<m>.qweight|qzeros|scales|
 * g_idx`; bitsandbytes 4-bit `<m>.weight` + `<m>.weight.absmax|quant_map|nested_*|quant_state.bitsandbytes__<t>`;
 * LLM.int8 `<m>.weight` + `<m>.SCB` (+ `<m>.weight_format`); FP8 `<m>.weight` + `<m>.weight_scale_inv` (fine-grained) or
 * `<m>.weight_scale` (FBGEMM). Other tensors (activation scales too) are not listed and are kept as stored.
 */
export const quantizedPartsOf = (fmt: QuantizedFormat, names: ReadonlyArray<string>): Map<string, readonly [string, string]> => {
  const all = new Set(names);
  const out = new Map<string, readonly [string, string]>();
  for (const name of names) {
    if (fmt.method === "gptq" || fmt.method === "awq") {
      const p = PACKED_PARTS.find((s) => name.endsWith(`.${s}`));
      if (p !== undefined) out.set(name, [name.slice(0, -p.length - 1), p]);
    } else if (fmt.method === "bitsandbytes_4bit") {
      const m = BNB4_PARTS.exec(name);
      if (m !== null) out.set(name, [m[1]!, m[2]!.startsWith("quant_state") ? "quant_state" : m[2]!]);
      else if (name.endsWith(".weight") && all.has(`${name}.absmax`)) out.set(name, [name.slice(0, -7), "weight"]);
    } else if (fmt.method === "aqlm") {
      const m = /^(.*)\.(codes|codebooks|scales)$/.exec(name);
      if (m !== null && all.has(`${m[1]}.codes`) && all.has(`${m[1]}.codebooks`)) out.set(name, [m[1]!, m[2]!]);
    } else if (fmt.method === "hqq") {
      const i = name.lastIndexOf(".");
      if (i > 0 && HQQ_PARTS.includes(name.slice(i + 1)) && all.has(`${name.slice(0, i)}.W_q`)) out.set(name, [name.slice(0, i), name.slice(i + 1)]);
    } else {
      const aux = fmt.method === "bitsandbytes_8bit" ? "SCB" : fmt.method === "fp8" ? "weight_scale_inv" : fmt.method === "eetq" ? "weight_scales" : "weight_scale";
      const m = new RegExp(`^(.*)\\.(${aux}|weight_format)$`).exec(name);
      if (m !== null) out.set(name, [m[1]!, m[2]!]);
      else if (name.endsWith(".weight") && all.has(`${name.slice(0, -7)}.${aux}`)) out.set(name, [name.slice(0, -7), "weight"]);
    }
  }
  return out;
};

const packed = <A>(t: Tensor, f: (t: Tensor) => A): PackedTensor<A> => ({ data: f(t), shape: t.shape });
const i32 = (t: Tensor): Int32Array => (t.dtype === "i32" ? (t.data as Int32Array) : Int32Array.from(cast(t, "i32").data as Int32Array));
const f32 = (t: Tensor): Float32Array => cast(t, "f32").data as Float32Array;

const u8 = (t: Tensor): Uint8Array => (t.dtype === "u8" ? (t.data as Uint8Array) : Uint8Array.from(cast(t, "i32").data as Int32Array));

const bnb4 = (parts: ReadonlyMap<string, Tensor>): E.Either<string, DenseWeight> => {
  const miss = ["weight", "absmax", "quant_map", "quant_state"].filter((p) => !parts.has(p));
  if (miss.length > 0) return E.left(`missing ${miss.join(", ")}`);
  if (parts.get("weight")!.dtype !== "u8" || parts.get("quant_state")!.dtype !== "u8") return E.left("weight and quant_state must be uint8");
  const am = parts.get("absmax")!;
  return pipe(
    parseBnbQuantState(u8(parts.get("quant_state")!)),
    E.chain((state) =>
      dequantizeBnb4bit({
        weight: u8(parts.get("weight")!),
        absmax: am.dtype === "u8" ? u8(am) : f32(am),
        quantMap: f32(parts.get("quant_map")!),
        nestedAbsmax: parts.has("nested_absmax") ? f32(parts.get("nested_absmax")!) : undefined,
        nestedQuantMap: parts.has("nested_quant_map") ? f32(parts.get("nested_quant_map")!) : undefined,
        state,
      }),
    ),
  );
};

const bnb8 = (parts: ReadonlyMap<string, Tensor>): E.Either<string, DenseWeight> => {
  const w = parts.get("weight");
  const scb = parts.get("SCB");
  if (w === undefined || scb === undefined) return E.left(`missing ${w === undefined ? "weight" : "SCB"}`);
  if (w.dtype !== "i8") return E.left(`weight must be int8, got ${w.dtype}`);
  return dequantizeBnbInt8(w.data as Int8Array, w.shape, f32(scb));
};

const packedLinear = (parts: ReadonlyMap<string, Tensor>, fmt: QuantizedFormat & { method: "gptq" | "awq" }): E.Either<string, DenseWeight> => {
  const missing = ["qweight", "qzeros", "scales"].filter((p) => !parts.has(p));
  if (missing.length > 0) return E.left(`missing ${missing.join(", ")}`);
  const bad = (["qweight", "qzeros", "g_idx"] as const).find((p) => parts.has(p) && !["i32", "i64"].includes(parts.get(p)!.dtype));
  if (bad !== undefined) return E.left(`${bad} must be an integer tensor, got ${parts.get(bad)!.dtype}`);
  const scales = parts.get("scales")!;
  const common = { qweight: packed(parts.get("qweight")!, i32), qzeros: packed(parts.get("qzeros")!, i32), scales: packed(scales, f32) };
  const w =
    fmt.method === "gptq"
      ? dequantizeGptq({ ...common, gIdx: parts.has("g_idx") ? packed(parts.get("g_idx")!, i32) : undefined }, fmt.options)
      : dequantizeAwq(common, fmt.options);
  // What runs the checkpoint (GPTQModel's QuantLinear under transformers, AutoAWQ, vLLM) multiplies in the scales'
  // dtype: scales · (q − z) is the exact product rounded once to f16 / bf16, so that is the weight llmq evaluates.
  const dt = scales.dtype;
  return dt === "f16" || dt === "bf16" ? E.map((d: DenseWeight) => ({ ...d, data: d.data.map((x) => roundToDType(dt, x)) }))(w) : w;
};

const fp8 = (parts: ReadonlyMap<string, Tensor>, perRow: boolean): E.Either<string, DenseWeight> => {
  const w = parts.get("weight");
  const sc = parts.get(perRow ? "weight_scale" : "weight_scale_inv");
  if (w === undefined || sc === undefined) return E.left(`missing ${w === undefined ? "weight" : perRow ? "weight_scale" : "weight_scale_inv"}`);
  if (w.dtype !== "f8_e4m3fn") return E.left(`weight must be float8_e4m3fn, got ${w.dtype}`);
  const q = f32(w);
  return perRow ? dequantizeFp8Rows(q, w.shape, f32(sc)) : dequantizeFp8Blocks(q, w.shape, sc.dtype === "u8" ? u8(sc) : f32(sc), sc.shape);
};

const HQQ_FLOATS: Readonly<Record<string, HqqFloat>> = { f32: "float32", f16: "float16", bf16: "bfloat16", "torch.float32": "float32", "torch.float16": "float16", "torch.bfloat16": "bfloat16" };
const chars = (t: Tensor | undefined): string => (t === undefined ? "" : String.fromCharCode(...u8(t)));
const int = (t: Tensor | undefined): number => (t === undefined || t.size !== 1 ? Number.NaN : Number((t.data as ArrayLike<number | bigint>)[0]));
const bytesOf = (t: Tensor): Uint8Array => {
  const d = t.data as unknown as ArrayBufferView;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
};

const hqq = (parts: ReadonlyMap<string, Tensor>): E.Either<string, DenseWeight> => {
  const miss = ["W_q", "scale", "zero", "nbits", "shape", "packing"].filter((p) => !parts.has(p));
  if (miss.length > 0) return E.left(`missing ${miss.join(", ")}`);
  if (int(parts.get("quant_scale")) === 1 || int(parts.get("quant_zero")) === 1) return E.left("quantized scale/zero meta (hqq quant_scale / quant_zero, deprecated upstream) is not read");
  const floatOf = (key: string, t: Tensor): E.Either<string, HqqFloatTensor> => {
    const dtype = HQQ_FLOATS[t.dtype];
    return dtype === undefined ? E.left(`${key} must be a float tensor, got ${t.dtype}`) : E.right({ data: f32(t), shape: t.shape, dtype });
  };
  const wq = parts.get("W_q")!;
  // view_as_float stores W_q as the compute dtype; its bytes are the unpack_view_dtype words.
  const view = int(parts.get("view_as_float")) === 1 ? chars(parts.get("unpack_view_dtype")) : wq.dtype === "i32" ? "torch.int32" : "torch.uint8";
  const wordBytes = view === "torch.int32" ? 4 : view === "torch.uint8" ? 1 : 0;
  if (wordBytes === 0) return E.left(`W_q view dtype ${view} (hqq unpacks torch.uint8 or torch.int32)`);
  const raw = bytesOf(wq);
  const wqShape = wq.shape.length === 2 ? [wq.shape[0]!, (wq.shape[1]! * raw.length) / (wq.size * wordBytes)] : wq.shape;
  const compute = HQQ_FLOATS[chars(parts.get("compute_dtype")) || "torch.float16"];
  if (compute === undefined) return E.left(`compute_dtype ${JSON.stringify(chars(parts.get("compute_dtype")))}`);
  const shapeT = parts.get("shape")!;
  return pipe(
    E.Do,
    E.apS("zero", floatOf("zero", parts.get("zero")!)),
    E.apS("scale", floatOf("scale", parts.get("scale")!)),
    E.chain(({ zero, scale }) =>
      dequantizeHqq({
        wq: raw,
        wqShape,
        packing: chars(parts.get("packing")),
        nbits: int(parts.get("nbits")),
        axis: parts.has("axis") ? int(parts.get("axis")) : 1,
        groupSize: int(parts.get("group_size")),
        shape: Array.from(shapeT.data as ArrayLike<number | bigint>, Number),
        zero,
        scale,
        computeDtype: compute,
      }),
    ),
  );
};

const aqlm = (parts: ReadonlyMap<string, Tensor>): E.Either<string, DenseWeight> => {
  const [codes, codebooks, scales] = [parts.get("codes"), parts.get("codebooks"), parts.get("scales")];
  if (codes === undefined || codebooks === undefined || scales === undefined) return E.left("missing codes, codebooks or scales");
  if (!["i8", "i16", "i32", "i64"].includes(codes.dtype)) return E.left(`codes must be integers, got ${codes.dtype}`);
  const dtype = HQQ_FLOATS[codebooks.dtype];
  if (dtype === undefined) return E.left(`codebooks must be float, got ${codebooks.dtype}`);
  return dequantizeAqlm({ codes: i32(codes), codesShape: codes.shape, codebooks: f32(codebooks), codebooksShape: codebooks.shape, scales: f32(scales), dtype });
};

const eetq = (parts: ReadonlyMap<string, Tensor>): E.Either<string, DenseWeight> => {
  const [w, s] = [parts.get("weight"), parts.get("weight_scales")];
  if (w === undefined || s === undefined) return E.left("missing weight or weight_scales");
  if (w.dtype !== "i8") return E.left(`weight must be int8, got ${w.dtype}`);
  return dequantizeEetq(w.data as Int8Array, w.shape, f32(s));
};

/** One quantized linear (its tensors already read, keyed by part) → its dense f32 weight. */
export const dequantizeModule = (file: string, prefix: string, parts: ReadonlyMap<string, Tensor>, fmt: QuantizedFormat): E.Either<SerializationError, Tensor<"f32">> => {
  const r =
    fmt.method === "bitsandbytes_4bit"
      ? bnb4(parts)
      : fmt.method === "bitsandbytes_8bit"
        ? bnb8(parts)
        : fmt.method === "fp8" || fmt.method === "fbgemm_fp8"
          ? fp8(parts, fmt.method === "fbgemm_fp8")
          : fmt.method === "hqq"
            ? hqq(parts)
            : fmt.method === "aqlm"
              ? aqlm(parts)
              : fmt.method === "eetq"
                ? eetq(parts)
                : packedLinear(parts, fmt);
  return E.isLeft(r) ? E.left(compressorError(file, `${prefix}.weight`, fmt.method, r.left)) : E.right(new TensorClass("f32", r.right.shape, r.right.data));
};

/**
 * Every tensor of a GPTQ / AWQ / bitsandbytes checkpoint, quantized linears replaced by their dense f32 `<prefix>.weight` (in the
 * position of their qweight); all other tensors as stored.
 */
export const dequantizeCheckpoint = (
  ckpt: Checkpoint,
  fmt: QuantizedFormat,
): TE.TaskEither<SerializationError, { readonly tensors: Map<string, Tensor>; readonly dequantized: ReadonlyArray<string> }> => async () => {
  const modules = new Map<string, Map<string, Tensor>>();
  const out = new Map<string, Tensor>();
  const parts = quantizedPartsOf(fmt, ckpt.names);
  for (const name of ckpt.names) {
    const r = await ckpt.read(name)();
    if (E.isLeft(r)) return r;
    const part = parts.get(name);
    if (part === undefined) out.set(name, r.right);
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
