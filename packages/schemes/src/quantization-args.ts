// Wire types keep compressed-tensors' snake_case field names (num_bits, group_size, …) so encode/decode of
// config.json and recipes is identity plus validation. (Contract fixed early so that serialization, gptq and the
// pipeline can build against it; the decoders live in decode-*.ts, the encoders in encode-quantization.ts.)
// Semantics follow compressed-tensors 0.20.0 (quantization/quant_args.py, quant_scheme.py, quant_config.py).

// ----- model -----

export type QuantizationType = "int" | "float";
export type QuantizationStrategy = "tensor" | "channel" | "group" | "block" | "token" | "tensor_group" | "attn_head";
/**
 * "group" ≡ the deprecated "dynamic", "weight" ≡ "static" (compressed-tensors alias equality).
 * compressed-tensors 0.20.0 rejects "group"/"dynamic" (and `true`) on input — group act-order was removed — so
 * decoded args only ever carry "weight" or "static"; the members stay for values built by older code.
 */
export type ActivationOrdering = "group" | "weight" | "static" | "dynamic";
export type DynamicType = boolean | "local";
/** torch dtype strings as written in config.json, e.g. "torch.int8", "torch.float8_e4m3fn", "torch.uint8". */
export type TorchDTypeName = string;

/** compressed-tensors `QuantizationArgs` after validation: every field present, strategy resolved. */
export interface QuantizationArgs {
  readonly num_bits: number;
  readonly type: QuantizationType;
  readonly symmetric: boolean;
  readonly group_size: number | null;
  readonly strategy: QuantizationStrategy;
  readonly block_structure: readonly [number, number] | null;
  readonly dynamic: DynamicType;
  readonly actorder: ActivationOrdering | null;
  readonly scale_dtype: TorchDTypeName | null;
  readonly zp_dtype: TorchDTypeName | null;
  readonly observer: string | null;
  readonly observer_kwargs: Readonly<Record<string, unknown>>;
  /**
   * pydantic's `model_fields_set`: the wire keys the input named explicitly. compressed-tensors 0.20.0 dumps
   * `zp_dtype` only when it was set explicitly (its validator fills in a default otherwise), so the encoder needs
   * this to write CT's JSON. Absent (hand-built values): zp_dtype counts as explicit iff it differs from the default.
   */
  readonly fields_set?: ReadonlyArray<QuantizationArgsField>;
}

/** The wire keys of QuantizationArgs, in compressed-tensors' declaration (and `model_dump`) order. */
export const QUANTIZATION_ARGS_FIELDS = [
  "num_bits",
  "type",
  "symmetric",
  "group_size",
  "strategy",
  "block_structure",
  "dynamic",
  "actorder",
  "scale_dtype",
  "zp_dtype",
  "observer",
  "observer_kwargs",
] as const;
export type QuantizationArgsField = (typeof QUANTIZATION_ARGS_FIELDS)[number];

export const QUANTIZATION_SCHEME_FIELDS = ["targets", "weights", "input_activations", "output_activations", "format"] as const;

/** compressed-tensors `CompressionFormat` values (config/base.py, 0.20.0). */
export const COMPRESSION_FORMATS = [
  "dense",
  "sparse-bitmask",
  "sparse-24-bitmask",
  "int-quantized",
  "float-quantized",
  "naive-quantized",
  "pack-quantized",
  "marlin-24",
  "mixed-precision",
  "nvfp4-pack-quantized",
  "mxfp4-pack-quantized",
  "mxfp6-pack-quantized",
  "mxfp8-quantized",
] as const;
export type CompressionFormat = (typeof COMPRESSION_FORMATS)[number];

export const QUANTIZATION_STRATEGIES: ReadonlyArray<QuantizationStrategy> = [
  "tensor",
  "channel",
  "group",
  "block",
  "token",
  "tensor_group",
  "attn_head",
];

/** compressed-tensors `QuantizationScheme` (one config group). */
export interface QuantizationScheme {
  readonly targets: ReadonlyArray<string>;
  readonly weights: QuantizationArgs | null;
  readonly input_activations: QuantizationArgs | null;
  readonly output_activations: QuantizationArgs | null;
  readonly format: string | null;
}

export type QuantizationStatus = "initialized" | "calibration" | "frozen" | "compressed" | "decompressed";
export const QUANTIZATION_STATUSES: ReadonlyArray<QuantizationStatus> = ["initialized", "calibration", "frozen", "compressed", "decompressed"];

/** compressed-tensors `QuantizationConfig` (config.json `quantization_config`, minus the writer-added keys). */
export interface QuantizationConfig {
  readonly config_groups: Readonly<Record<string, QuantizationScheme>>;
  readonly quant_method: "compressed-tensors";
  readonly kv_cache_scheme: QuantizationArgs | null;
  readonly format: string;
  readonly quantization_status: QuantizationStatus;
  readonly global_compression_ratio: number | null;
  readonly ignore: ReadonlyArray<string>;
  /** CT 0.20.0 `ExpertSparsityConfig` (MoE expert pruning), kept as the raw JSON object; absent ≡ null. */
  readonly moe_sparsity_config?: Readonly<Record<string, unknown>> | null;
}
