import type { LayerState, Tap } from "@llmq/observers";
import { type Architecture, type LayerHooks, type LlamaConfig, type ModelError, decoderLayerForward, decoderLayerTaps, rmsNorm } from "@llmq/models";
import { type Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type InputQuantSpec, inputQuantHooks } from "./activation-quant.js";
import { mergeHooks } from "./online-transforms.js";
import { splitRows } from "./window-batches.js";

// The forward passes the generic pipeline runs over one in-memory layer: the calibration pass (taps for the active
// modifiers), the propagation pass (the layer as modifiers left it, quantization disabled as in llm-compressor's
// sequential pipeline), and the quantized view used by the per-layer error report (every quantized weight
// dequantized, inputs quantized as a runtime does).

// ----- model -----

/** Which taps a calibration pass must emit (the union of the active modifiers' needs). */
export interface TapRequest {
  readonly linearInputs: ReadonlySet<string>;
  readonly attentionKV: boolean;
}

export interface TappedOutput {
  readonly out: Tensor<"f32"> | null;
  readonly taps: ReadonlyArray<Tap>;
}

// ----- views -----

const f32Views = new WeakMap<Tensor, Tensor<"f32">>();

/** The f32 view of a stored tensor, converted once per tensor object. */
const asF32 = (t: Tensor): Tensor<"f32"> => {
  if (t.dtype === "f32") return t as Tensor<"f32">;
  const hit = f32Views.get(t);
  if (hit !== undefined) return hit;
  const v = toFloat32(t);
  f32Views.set(t, v);
  return v;
};

/** The layer's tensors in f32, as the forward reads them. */
export const pipelineView = (layer: LayerState): ReadonlyMap<string, Tensor<"f32">> => new Map([...layer.tensors].map(([k, t]) => [k, asF32(t)] as const));

/** The layer as a loader of the saved checkpoint computes it: quantized weights dequantized. */
export const quantizedView = (layer: LayerState): ReadonlyMap<string, Tensor<"f32">> =>
  new Map([...pipelineView(layer), ...[...layer.quantized].flatMap(([local, q]) => (q.weight === null ? [] : [[`${local}.weight`, q.weight.fakeQuantized] as const]))]);

/** Runtime input quantization of the layer's quantized modules (dynamic per token, static input_scale, NVFP4 local). */
export const inputQuantization = (layer: LayerState): LayerHooks | undefined => {
  const specs = new Map<string, InputQuantSpec>();
  for (const [local, q] of layer.quantized) {
    const ia = q.scheme.input_activations;
    if (ia === null) continue;
    const get = (k: string): Tensor | null => q.activationParams.find(([n]) => n === k)?.[1] ?? null;
    specs.set(local, { args: ia, scale: get("input_scale"), zeroPoint: get("input_zero_point"), globalScale: get("input_global_scale") });
  }
  return inputQuantHooks(layer.prefix, specs);
};

/** Whether the quantized view computes exactly what the pipeline view does (then one forward serves both). */
export const viewsAgree = (layer: LayerState): boolean =>
  [...layer.quantized].every(([local, q]) => q.scheme.input_activations === null && (q.weight === null || layer.tensors.get(`${local}.weight`) === q.weight.fakeQuantized));

// ----- forwards -----

/** Taps per window: a forward over `count` stacked windows hands out each window's rows as its own tap. */
const tapHooks = (request: TapRequest, taps: Tap[], count: number): LayerHooks => ({
  onLinearInput: (modules, x) => {
    if (modules.some((m) => request.linearInputs.has(m))) for (const xw of splitRows(x, count)) taps.push({ _tag: "LinearInput", modules, x: xw });
  },
  ...(request.attentionKV
    ? {
        onAttentionKV: (k: Tensor<"f32">, v: Tensor<"f32">) => {
          const vs = splitRows(v, count);
          for (const [i, kw] of splitRows(k, count).entries()) taps.push({ _tag: "AttentionKV", k: kw, v: vs[i]! });
        },
      }
    : {}),
});

/**
 * A decoder layer's forward on `count` stacked windows, emitting the requested taps per window; without `output` it
 * stops after the last tap (out is null).
 */
export const decoderTapped = (
  cfg: LlamaConfig,
  weights: ReadonlyMap<string, Tensor<"f32">>,
  request: TapRequest,
  x: Tensor<"f32">,
  online: LayerHooks | undefined,
  output: boolean,
  count = 1,
): E.Either<ModelError, TappedOutput> => {
  const taps: Tap[] = [];
  const hooks = mergeHooks(online, tapHooks(request, taps, count));
  return output
    ? E.map((out: Tensor<"f32">) => ({ out, taps }))(decoderLayerForward(cfg, weights, x, undefined, hooks, count))
    : E.map(() => ({ out: null, taps }))(decoderLayerTaps(cfg, weights, x, undefined, hooks, count));
};

/** The head's calibration forward: the final norm's output is the input of the output projection (no logits needed). */
export const headTapped = (cfg: LlamaConfig, arch: Architecture, weights: ReadonlyMap<string, Tensor<"f32">>, request: TapRequest, x: Tensor<"f32">): TappedOutput => {
  const norm = weights.get(arch.finalNorm);
  if (norm === undefined || !request.linearInputs.has(arch.head)) return { out: null, taps: [] };
  return { out: null, taps: [{ _tag: "LinearInput", modules: [arch.head], x: rmsNorm(x, norm, cfg.rms_norm_eps) }] };
};

/** A plain forward of a decoder layer (propagation or report) on `count` stacked windows. */
export const decoderOut = (
  cfg: LlamaConfig,
  weights: ReadonlyMap<string, Tensor<"f32">>,
  x: Tensor<"f32">,
  hooks?: LayerHooks,
  count = 1,
): E.Either<ModelError, Tensor<"f32">> => decoderLayerForward(cfg, weights, x, undefined, hooks, count);

/** Σ (a − b)² and Σ b² (the layer-error metric's parts). */
export const relErrParts = (a: Tensor<"f32">, b: Tensor<"f32">): { readonly num: number; readonly den: number } => {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    num += d * d;
    den += b.data[i]! * b.data[i]!;
  }
  return { num, den };
};
