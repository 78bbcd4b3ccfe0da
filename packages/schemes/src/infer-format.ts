import type { CompressionFormat, QuantizationScheme } from "./quantization-args.js";

// Format inference of compressed-tensors 0.20.0 (compressors/format.py COMPRESSION_FORMAT_PRIORITY and each
// compressor's can_compress), for a Linear/Embedding module: the first format in priority order that accepts.

type Pred = (s: Pick<QuantizationScheme, "weights" | "input_activations">) => boolean;

/** `can_compress` of each compressor, scheme side (the module-type check is the caller's: Linear or Embedding). */
export const FORMAT_PREDICATES: ReadonlyArray<readonly [CompressionFormat, Pred]> = [
  ["mxfp4-pack-quantized", ({ weights: w }) => w !== null && w.num_bits === 4 && w.type === "float" && w.group_size === 32],
  ["mxfp6-pack-quantized", ({ weights: w }) => w !== null && w.num_bits === 6 && w.type === "float" && w.group_size === 32],
  [
    "mxfp8-quantized",
    ({ weights: w }) => w !== null && w.num_bits === 8 && w.type === "float" && w.group_size === 32 && w.scale_dtype === "torch.uint8",
  ],
  ["nvfp4-pack-quantized", ({ weights: w }) => w !== null && w.num_bits === 4 && w.type === "float" && w.group_size === 16],
  ["int-quantized", ({ weights: w, input_activations: i }) => i !== null && w !== null && w.type === "int"],
  [
    "pack-quantized",
    ({ weights: w, input_activations: i }) => (i === null || i.type !== "float") && w !== null && w.num_bits >= 1 && w.num_bits <= 8 && w.type === "int",
  ],
  ["float-quantized", ({ weights: w, input_activations: i }) => i !== null && w !== null && w.type === "float"],
  ["naive-quantized", ({ weights: w }) => w !== null],
  ["dense", () => true],
];

/** `infer_module_format` for a quantized Linear/Embedding module with this scheme. */
export const inferModuleFormat = (scheme: Pick<QuantizationScheme, "weights" | "input_activations">): CompressionFormat =>
  FORMAT_PREDICATES.find(([, p]) => p(scheme))![0];

/** `_flatten_formats`: "dense" when none, the single format, or "mixed-precision" (dense modules are not counted). */
export const modelFormat = (formats: Iterable<CompressionFormat>): CompressionFormat => {
  const set = new Set([...formats].filter((f) => f !== "dense"));
  return set.size === 0 ? "dense" : set.size === 1 ? [...set][0]! : "mixed-precision";
};
