import * as E from "fp-ts/lib/Either.js";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { type SchemeError, unknownPreset } from "./errors.js";
import type { QuantizationArgs, QuantizationScheme } from "./quantization-args.js";

// ----- constants -----

/** The keyword arguments compressed-tensors passes to `QuantizationArgs(...)`; they also become `fields_set`. */
type ArgsKw = Readonly<Record<string, unknown>>;
interface PresetKw {
  readonly weights?: ArgsKw;
  readonly input_activations?: ArgsKw;
}

// compressed-tensors 0.20.0 quantization/quant_scheme.py `_int_wnam`: int w-bit group-128 symmetric static weights,
// plus int a-bit dynamic per-token activations when a < 16.
const intWnAm = (w: number, a = 16): PresetKw => ({
  weights: { num_bits: w, type: "int", strategy: "group", group_size: 128, symmetric: true, dynamic: false },
  ...(a < 16 ? { input_activations: { num_bits: a, type: "int", strategy: "token", symmetric: true, dynamic: true } } : {}),
});

const FP8E4M3 = "torch.float8_e4m3fn";
const nvfp4Weights: ArgsKw = {
  num_bits: 4,
  type: "float",
  strategy: "tensor_group",
  symmetric: true,
  dynamic: false,
  group_size: 16,
  scale_dtype: FP8E4M3,
  zp_dtype: FP8E4M3,
};
const mxWeights = (bits: number): ArgsKw => ({
  num_bits: bits,
  type: "float",
  strategy: "group",
  symmetric: true,
  dynamic: false,
  group_size: 32,
  scale_dtype: "torch.uint8",
  zp_dtype: "torch.uint8",
});
const mxInputs = (bits: number): ArgsKw => ({
  num_bits: bits,
  type: "float",
  strategy: "group",
  dynamic: true,
  symmetric: true,
  group_size: 32,
  scale_dtype: "torch.uint8",
  zp_dtype: "torch.uint8",
});
const int8W8A8: PresetKw = {
  weights: { num_bits: 8, type: "int", strategy: "channel", symmetric: true, dynamic: false },
  input_activations: { num_bits: 8, type: "int", strategy: "token", symmetric: true, dynamic: true },
};

/** `PRESET_SCHEMES` of compressed-tensors 0.20.0, in its order, as the keyword arguments CT uses. */
export const PRESET_SCHEME_KWARGS = {
  UNQUANTIZED: {},
  W4A16_ASYM: { weights: { num_bits: 4, type: "int", strategy: "group", group_size: 128, symmetric: false, dynamic: false } },
  W8A8: int8W8A8,
  INT8: int8W8A8,
  W4AFP8: {
    weights: { num_bits: 4, type: "int", strategy: "group", group_size: 128, symmetric: true, dynamic: false },
    input_activations: { num_bits: 8, type: "float", strategy: "token", symmetric: true, dynamic: true, observer: null },
  },
  FP8: {
    weights: { num_bits: 8, type: "float", strategy: "tensor", symmetric: true, dynamic: false },
    input_activations: { num_bits: 8, type: "float", strategy: "tensor", symmetric: true, dynamic: false, observer: "static_minmax" },
  },
  FP8_DYNAMIC: {
    weights: { num_bits: 8, type: "float", strategy: "channel", symmetric: true, dynamic: false },
    input_activations: { num_bits: 8, type: "float", strategy: "token", symmetric: true, dynamic: true },
  },
  FP8_BLOCK: {
    weights: { num_bits: 8, type: "float", strategy: "block", symmetric: true, dynamic: false, block_structure: [128, 128] },
    input_activations: { num_bits: 8, type: "float", strategy: "group", symmetric: true, dynamic: true, group_size: 128 },
  },
  NVFP4A16: { weights: nvfp4Weights },
  NVFP4: {
    weights: nvfp4Weights,
    input_activations: {
      num_bits: 4,
      type: "float",
      strategy: "tensor_group",
      symmetric: true,
      dynamic: "local",
      group_size: 16,
      observer: "static_minmax",
      scale_dtype: FP8E4M3,
      zp_dtype: FP8E4M3,
    },
  },
  MXFP4A16: { weights: mxWeights(4) },
  MXFP4: { weights: mxWeights(4), input_activations: mxInputs(4) },
  MXFP4XFP8: {
    weights: mxWeights(4),
    input_activations: { num_bits: 8, type: "float", strategy: "group", symmetric: true, dynamic: true, group_size: 128 },
  },
  MXFP6A16: { weights: mxWeights(6) },
  MXFP6A8: { weights: mxWeights(6), input_activations: mxInputs(8) },
  MXFP8A16: { weights: mxWeights(8) },
  MXFP8: { weights: mxWeights(8), input_activations: mxInputs(8) },
  W2A4: intWnAm(2, 4),
  W2A8: intWnAm(2, 8),
  W2A16: intWnAm(2),
  W3A4: intWnAm(3, 4),
  W3A8: intWnAm(3, 8),
  W3A16: intWnAm(3),
  W4A4: intWnAm(4, 4),
  W4A8: intWnAm(4, 8),
  W4A16: intWnAm(4),
  W5A8: intWnAm(5, 8),
  W5A16: intWnAm(5),
  W6A8: intWnAm(6, 8),
  W6A16: intWnAm(6),
  W7A8: intWnAm(7, 8),
  W7A16: intWnAm(7),
  W8A16: intWnAm(8),
} as const satisfies Readonly<Record<string, PresetKw>>;

export type PresetName = keyof typeof PRESET_SCHEME_KWARGS;
export const PRESET_NAMES = Object.keys(PRESET_SCHEME_KWARGS) as ReadonlyArray<PresetName>;

export interface PresetScheme {
  readonly weights: QuantizationArgs | null;
  readonly input_activations: QuantizationArgs | null;
}

const decodePreset = (name: string, kw: PresetKw): PresetScheme => {
  const dec = (k: ArgsKw | undefined, part: string): QuantizationArgs | null => {
    if (k === undefined) return null;
    const r = decodeQuantizationArgs(k, `${name}.${part}`);
    if (E.isLeft(r)) throw new Error(`preset ${name} is invalid: ${JSON.stringify(r.left)}`);
    return r.right;
  };
  return { weights: dec(kw.weights, "weights"), input_activations: dec(kw.input_activations, "input_activations") };
};

/** Every compressed-tensors 0.20.0 preset, validated (weights / input_activations; null when absent). */
export const PRESET_SCHEMES: Readonly<Record<PresetName, PresetScheme>> = Object.fromEntries(
  PRESET_NAMES.map((n) => [n, decodePreset(n, PRESET_SCHEME_KWARGS[n])]),
) as Record<PresetName, PresetScheme>;

/** `is_preset_scheme`: upper-cased lookup. */
export const isPresetScheme = (name: string): boolean => Object.hasOwn(PRESET_SCHEMES, name.toUpperCase());

/**
 * `preset_name_to_scheme(name, targets)`: the preset's scheme with these targets (name looked up upper-cased).
 * `path` names where the preset name came from, for the error.
 */
export const presetScheme = (name: string, targets: ReadonlyArray<string>, path = ""): E.Either<SchemeError, QuantizationScheme> => {
  const key = name.toUpperCase();
  if (!isPresetScheme(key)) return E.left(unknownPreset(path, name, PRESET_NAMES));
  const p = PRESET_SCHEMES[key as PresetName];
  return E.right({ targets: [...targets], weights: p.weights, input_activations: p.input_activations, output_activations: null, format: null });
};
