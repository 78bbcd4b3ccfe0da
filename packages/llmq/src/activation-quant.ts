import type { LayerHooks } from "@llmq/models";
import { type QuantizationArgs, computeDynamicQParams, fakeQuantize, formatSchemeError } from "@llmq/schemes";
import { Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";

// Input-activation quantization as a runtime applies it (vLLM's W8A8 / FP8 kernels, compressed-tensors' forward):
// dynamic args compute qparams per token (or per tensor / group) from the input itself; static args use the calibrated
// `input_scale` (+ zero point); NVFP4's "local" args use the calibrated global scale with dynamic group scales.
// `eval` and the sequential pipeline's propagation pass run linears on these fake-quantized inputs.

// ----- model -----

export interface InputQuantSpec {
  readonly args: QuantizationArgs;
  /** Static scale (dynamic false), else null. */
  readonly scale: Tensor | null;
  readonly zeroPoint: Tensor | null;
  /** tensor_group global scale ("local" NVFP4 inputs), else null. */
  readonly globalScale: Tensor | null;
  /**
   * A method's own fake quantization of an f32 [rows, cols] input (torchao's Int8Tensor activations: x · (1/s), not
   * compressed-tensors' x / s), used instead of compressed-tensors' with `args` (which then only describe it).
   */
  readonly own?: (x: Float32Array, rows: number, cols: number) => Float32Array;
}

// ----- functions -----

/**
 * Fake-quantizes one linear input [T, in] per its spec. compressed-tensors sees activations as [batch, seq, hidden],
 * so the per-token strategy reduces over the last axis of each token: the input is viewed as [1, T, in].
 */
export const fakeQuantizeInput = (module: string, spec: InputQuantSpec, x: Tensor<"f32">): E.Either<string, Tensor<"f32">> => {
  if (spec.own !== undefined) {
    const cols = x.shape[x.shape.length - 1]!;
    return E.right(new Tensor("f32", x.shape, spec.own(x.data, x.data.length / cols, cols)));
  }
  const x3 = new Tensor("f32", [1, ...x.shape], x.data);
  const view = spec.args.strategy === "token" ? x3 : x;
  const gs = spec.globalScale !== null ? { globalScale: spec.globalScale } : {};
  let scale = spec.scale;
  let zp = spec.zeroPoint;
  if (spec.args.dynamic === true || spec.args.dynamic === "local") {
    const qp = computeDynamicQParams(view, spec.args, gs);
    if (E.isLeft(qp)) return E.left(`${module}.input: ${formatSchemeError(qp.left)}`);
    scale = qp.right.scale;
    zp = qp.right.zeroPoint;
  }
  if (scale === null) return E.left(`${module}.input: static activation quantization without an input_scale`);
  const r = fakeQuantize(view, scale, spec.args.symmetric ? null : zp, spec.args, gs);
  if (E.isLeft(r)) return E.left(`${module}.input: ${formatSchemeError(r.left)}`);
  const out = toFloat32(r.right);
  return E.right(out.shape.length === x.shape.length ? out : new Tensor("f32", x.shape, out.data));
};

/**
 * Layer hooks that fake-quantize the inputs of the modules in `specs` (keyed by local name, e.g. "self_attn.q_proj").
 * A failure (NaN input, impossible shape) is a Left naming the module; the forward stops and returns it.
 */
export const inputQuantHooks = (prefix: string, specs: ReadonlyMap<string, InputQuantSpec>): LayerHooks | undefined =>
  specs.size === 0
    ? undefined
    : {
        transformLinearInput: (local, x) => {
          const s = specs.get(local);
          return s === undefined ? E.right(x) : fakeQuantizeInput(prefix + local, s, x);
        },
      };
