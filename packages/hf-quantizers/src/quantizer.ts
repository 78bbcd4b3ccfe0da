// transformers' HfQuantizer contract for llmq: the class flags, validate_environment as a typed answer,
// update_dtype, modules_to_not_convert (get_keys_to_not_convert + the method's skip list, matched as
// should_convert_module matches), and the per-linear quantize / dequantize steps a quantize-on-load writer runs.
import type { PyJsonObject, TorchFloat } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import type * as E from "fp-ts/lib/Either.js";
import type { HfQuantizerError } from "./errors.js";
import type { HfQuantizationConfig } from "./quantization-config.js";

// ----- model -----

/** What get_keys_to_not_convert reads off a model (llmq's model handle supplies it). */
export interface ModelFacts {
  /** nn.Linear module names, in checkpoint order. */
  readonly linears: ReadonlyArray<string>;
  /** all_tied_weights_keys, both sides ("lm_head.weight", "model.embed_tokens.weight"); empty when untied. */
  readonly tiedKeys: ReadonlyArray<string>;
  /** The last named parameter (tied parameters are listed once, so "model.norm.weight" for a tied Llama). */
  readonly lastParameter: string;
  /** The output embedding module ("lm_head"), null when the model has none. */
  readonly outputEmbedding: string | null;
  /** model.state_dict() keys in order, tied ones included (what torchao's safetensors metadata lists); optional. */
  readonly stateDict?: ReadonlyArray<string>;
}

/** Tensors one quantized linear stores, by name relative to the module ("weight", "weight.absmax", "SCB"…). */
export type QuantizedTensors = ReadonlyArray<readonly [string, Tensor]>;

export interface Quantizer {
  /** The registry key (AUTO_QUANTIZER_MAPPING's): "bitsandbytes_4bit", "gptq"… */
  readonly name: string;
  /** Cannot quantize on load: only reads pre-quantized checkpoints (or needs llmq's calibrated pipeline). */
  readonly requiresCalibration: boolean;
  /** transformers can save what it quantized; when false, `notSerializable` says what llmq offers instead. */
  readonly isSerializable: boolean;
  readonly notSerializable?: string;
  readonly isTrainable: boolean;
  /** The method's own skip list from the config; null when the config gives none. */
  readonly skipModules: (c: HfQuantizationConfig) => ReadonlyArray<string> | null;
  /** get_modules_to_not_convert(add_default_skips=…): the tied/output-head defaults are added even with a list. */
  readonly addDefaultSkips: boolean;
  /** should_convert_module sees the parameter name ("….q_proj.weight"), not the module's (TorchAoHfQuantizer). */
  readonly skipMatchesParameter?: boolean;
  /** validate_environment: refuse what llmq cannot run, with the reason; warnings otherwise. */
  readonly validateEnvironment: (c: HfQuantizationConfig) => E.Either<HfQuantizerError, ReadonlyArray<string>>;
  /** update_dtype: the dtype of the loaded (and saved) floating tensors when the user picks none. */
  readonly updateDtype: (c: HfQuantizationConfig, dtype: TorchFloat | null) => TorchFloat;
  /**
   * Why the method's quantize step hands this weight back unchanged although the linear is converted (torchao's int4
   * leaves one whose in_features is not a multiple of group_size dense), or null: such a weight is saved as a plain
   * weight in the load dtype, and the reason is a warning.
   */
  readonly keepsDense?: (c: HfQuantizationConfig, shape: ReadonlyArray<number>) => string | null;
  /** One linear's weight (f32 values already in `dtype`) → the tensors transformers saves for it. */
  readonly quantizeLinear?: (c: HfQuantizationConfig, weight: Tensor, dtype: TorchFloat) => E.Either<HfQuantizerError, QuantizedTensors>;
  /** The dense weight back (f32) from the tensors quantizeLinear wrote (by relative name). */
  readonly dequantizeLinear?: (c: HfQuantizationConfig, parts: ReadonlyMap<string, Tensor>) => E.Either<HfQuantizerError, Tensor>;
  /**
   * For methods llmq's built-in readers do not know (third-party ones): the tensors each quantized linear stores,
   * relative to the module (the first one marks a module), and the dense [out, in] shape from their shapes. With
   * dequantizeLinear, these let `llmq eval` / `inspect` / `convert` open such a directory.
   */
  readonly storedParts?: ReadonlyArray<string>;
  readonly denseShape?: (shapes: ReadonlyMap<string, ReadonlyArray<number>>, c: HfQuantizationConfig) => ReadonlyArray<number> | undefined;
  /**
   * The safetensors __metadata__ save_pretrained writes (get_state_dict_and_metadata + "format"), from the state dict's
   * names, the dense shapes of the converted weights (by parameter name) and the load dtype; absent: {"format": "pt"}.
   */
  readonly safetensorsMetadata?: (
    c: HfQuantizationConfig,
    stateDict: ReadonlyArray<string>,
    converted: ReadonlyMap<string, ReadonlyArray<number>>,
    dtype: TorchFloat,
  ) => E.Either<HfQuantizerError, Record<string, string>>;
  /**
   * Run-time quantization of each converted linear's input (torchao's dynamic int8 activations), as a fake-quantize
   * of an f32 [rows, cols] input; null when the method is weight-only. `llmq eval` applies it.
   */
  readonly inputQuantizer?: (c: HfQuantizationConfig) => E.Either<HfQuantizerError, ((x: Float32Array, rows: number, cols: number) => Float32Array) | null>;
  /** What config.json's quantization_config becomes (to_dict unless the method rewrites it). */
  readonly savedConfig?: (c: HfQuantizationConfig) => PyJsonObject;
}

// ----- modules_to_not_convert -----

/** get_keys_to_not_convert: tied keys, the last parameter's module and the output embedding, ".weight" stripped. */
export const defaultKeysToNotConvert = (m: ModelFacts): ReadonlyArray<string> => {
  const keys = new Set<string>([...m.tiedKeys, m.lastParameter, ...(m.outputEmbedding === null ? [] : [m.outputEmbedding])]);
  return [...new Set([...keys].map((k) => (k.endsWith(".weight") ? k.slice(0, -".weight".length) : k)))].sort();
};

/** get_modules_to_not_convert(model, skip_modules, keep_in_fp32_modules=None, add_default_skips). */
export const modulesToNotConvert = (q: Quantizer, c: HfQuantizationConfig, m: ModelFacts): ReadonlyArray<string> => {
  const skip = q.skipModules(c);
  const base = skip === null || q.addDefaultSkips ? defaultKeysToNotConvert(m) : [];
  return [...new Set([...base, ...(skip ?? [])])].sort();
};

const escapeless = (key: string): RegExp | null => {
  try {
    return new RegExp(`^(?:${key})(?:(?<=\\.)|(?=\\.|$))`);
  } catch {
    return null;
  }
};

/** should_convert_module: a pattern skips a module when it matches from the start up to a module boundary (as a regex) or is a suffix. */
export const shouldConvertModule = (fullName: string, patterns: ReadonlyArray<string> | null): boolean =>
  patterns === null || !patterns.some((k) => escapeless(k)?.test(fullName) === true || fullName.endsWith(k));

/** The linears a quantizer converts and the ones it leaves dense (preprocess_model's split). */
export const preprocessModel = (q: Quantizer, c: HfQuantizationConfig, m: ModelFacts): { readonly convert: ReadonlyArray<string>; readonly keep: ReadonlyArray<string> } => {
  const skip = modulesToNotConvert(q, c, m);
  const converts = (l: string) => shouldConvertModule(q.skipMatchesParameter === true ? `${l}.weight` : l, skip);
  return { convert: m.linears.filter(converts), keep: m.linears.filter((l) => !converts(l)) };
};

/**
 * Skip patterns that would leave a module dense by its module name but match none of the parameter names a
 * skipMatchesParameter quantizer tests (TorchAoHfQuantizer: "mlp.down_proj" is neither a prefix nor a suffix of
 * "….mlp.down_proj.weight"): transformers converts those modules anyway, and so does llmq — with a warning.
 */
export const parameterOnlySkipWarnings = (q: Quantizer, c: HfQuantizationConfig, m: ModelFacts): ReadonlyArray<string> =>
  q.skipMatchesParameter !== true
    ? []
    : (q.skipModules(c) ?? [])
        .filter((p) => m.linears.some((l) => !shouldConvertModule(l, [p])) && m.linears.every((l) => shouldConvertModule(`${l}.weight`, [p])))
        .map((p) => `modules_to_not_convert entry ${JSON.stringify(p)} skips nothing: ${q.name} matches parameter names (as transformers does), so write ${JSON.stringify(`${p}.weight`)} or a module prefix`);
