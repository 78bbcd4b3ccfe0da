import type { Tensor } from "@llmq/tensor";

// ----- model -----

/** compressed-tensors 0.20.0 `CompressionFormat` values that have a compressor (the legacy sparse ones do not). */
export type CompressionFormat =
  | "dense"
  | "naive-quantized"
  | "int-quantized"
  | "float-quantized"
  | "pack-quantized"
  | "nvfp4-pack-quantized"
  | "mxfp4-pack-quantized"
  | "mxfp6-pack-quantized"
  | "mxfp8-quantized";

/** The model-level format: the single format of the quantized modules, or mixed-precision. */
export type ModelFormat = CompressionFormat | "mixed-precision";

/**
 * The QuantizationArgs fields the compressors read (wire names). @llmq/schemes' QuantizationArgs fits this shape;
 * fields the compressed-tensors dump leaves out may be missing.
 */
export interface CompressorArgs {
  readonly num_bits: number;
  readonly type: "int" | "float" | string;
  readonly symmetric: boolean;
  readonly strategy: string;
  readonly group_size?: number | null;
  readonly block_structure?: ReadonlyArray<number> | null;
  readonly scale_dtype?: string | null;
  readonly dynamic?: boolean | string;
}

export interface CompressorScheme {
  readonly weights?: CompressorArgs | null;
  readonly input_activations?: CompressorArgs | null;
  readonly output_activations?: CompressorArgs | null;
}

/** A module's tensors under local names (`weight`, `weight_scale`, `weight_zero_point`, `input_scale`, …). */
export type ModuleState = ReadonlyMap<string, Tensor>;

export interface CompressorContext {
  /** Module name (prefix) used in error messages, e.g. "model.layers.0.self_attn.q_proj". */
  readonly module?: string;
  /** File the module belongs to, for error messages. */
  readonly file?: string;
}

// ----- constants -----

/** compressed-tensors 0.20.0 COMPRESSION_FORMAT_PRIORITY: the first format whose can_compress holds wins. */
export const FORMAT_PRIORITY: ReadonlyArray<CompressionFormat> = [
  "mxfp4-pack-quantized",
  "mxfp6-pack-quantized",
  "mxfp8-quantized",
  "nvfp4-pack-quantized",
  "int-quantized",
  "pack-quantized",
  "float-quantized",
  "naive-quantized",
  "dense",
];

/** COMPRESSIBLE_MODULE_TYPES = (torch.nn.Linear, torch.nn.Embedding). */
export const COMPRESSIBLE_MODULE_TYPES: ReadonlyArray<string> = ["Linear", "Embedding"];

// ----- format inference -----

/** "torch.uint8" → "uint8" (config files spell torch dtypes with the module prefix). */
export const torchName = (d: string | null | undefined): string | null => (d === null || d === undefined ? null : d.replace(/^torch\./, ""));

/** `can_compress` of each compressor (module type = the class name, or a name in its MRO such as "Linear"). */
export const canCompress = (format: CompressionFormat, scheme: CompressorScheme, moduleType = "Linear"): boolean => {
  if (format === "dense") return true;
  const w = scheme.weights ?? null;
  if (!COMPRESSIBLE_MODULE_TYPES.includes(moduleType) || w === null) return false;
  const ia = scheme.input_activations ?? null;
  switch (format) {
    case "mxfp4-pack-quantized":
      return w.num_bits === 4 && w.type === "float" && w.group_size === 32;
    case "mxfp6-pack-quantized":
      return w.num_bits === 6 && w.type === "float" && w.group_size === 32;
    case "mxfp8-quantized":
      return w.num_bits === 8 && w.type === "float" && w.group_size === 32 && torchName(w.scale_dtype) === "uint8";
    case "nvfp4-pack-quantized":
      return w.num_bits === 4 && w.type === "float" && w.group_size === 16;
    case "int-quantized":
      return ia !== null && w.type === "int";
    case "pack-quantized":
      return (ia === null || ia.type !== "float") && w.num_bits >= 1 && w.num_bits <= 8 && w.type === "int";
    case "float-quantized":
      return ia !== null && w.type === "float";
    case "naive-quantized":
      return true;
  }
};

/** compressed-tensors' infer_module_format: the first format in FORMAT_PRIORITY that can compress the module. */
export const inferFormat = (scheme: CompressorScheme, moduleType = "Linear"): CompressionFormat =>
  FORMAT_PRIORITY.find((f) => canCompress(f, scheme, moduleType)) ?? "dense";

/** The model format from the module formats: dense if none, the one format, or mixed-precision. */
export const inferModelFormat = (formats: Iterable<CompressionFormat>): ModelFormat => {
  const s = new Set([...formats].filter((f) => f !== "dense"));
  if (s.size === 0) return "dense";
  if (s.size === 1) return [...s][0]!;
  return "mixed-precision";
};
