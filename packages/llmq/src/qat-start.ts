import type { ModelHandle } from "@llmq/models";
import { formatModifierError, initializeQuantizationMixin, rtnModule } from "@llmq/observers";
import {
  type QuantizationArgs,
  type QuantizationModifierConfig,
  decodeQuantizationConfig,
  resolveSchemeForModule,
} from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import { type FakeQuantParams, trainTensorNames } from "@llmq/train";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, modelError, recipeError } from "./errors.js";
import { modelInfo } from "./model-info.js";

// Where QAT starts: every tensor of the model read as f32 (a compressed start checkpoint, e.g. GPTQ's, decompressed),
// and for each module the recipe quantizes the qparams it trains under — the checkpoint's own weight_scale /
// weight_zero_point / weight_g_idx when it was saved with the same weight args (QAT continues from GPTQ's grid), else
// the qparams QuantizationModifier's RTN gives the start weights (the recipe's weight observer).

/** Every tensor the training forward reads, as stored (floats; compressed modules decompressed). */
export const readModelTensors = async (h: ModelHandle): Promise<E.Either<LlmqError, ReadonlyMap<string, Tensor>>> => {
  const out = new Map<string, Tensor>();
  for (const name of trainTensorNames(h.config)) {
    const t = await h.readTensor(name)();
    if (E.isLeft(t)) return E.left(modelError(`${h.dir}: ${name}: ${t.left._tag}`));
    out.set(name, t.right);
  }
  return E.right(out);
};

const sameGrid = (a: QuantizationArgs, b: QuantizationArgs): boolean =>
  a.num_bits === b.num_bits && a.type === b.type && a.symmetric === b.symmetric && a.strategy === b.strategy && a.group_size === b.group_size;

/** The weight args a compressed start checkpoint saved module `name` with (null when dense or not quantized). */
const storedArgs = (h: ModelHandle, name: string): QuantizationArgs | null => {
  const qc = h.rawConfig.quantization_config;
  if (qc === undefined || qc === null) return null;
  const cfg = decodeQuantizationConfig(qc, "quantization_config");
  if (E.isLeft(cfg)) return null;
  const r = resolveSchemeForModule(cfg.right, name, ["Linear"]);
  return E.isRight(r) && r.right !== null ? r.right.scheme.weights : null;
};

const readOptional = async (h: ModelHandle, name: string): Promise<Tensor | null> => {
  const t = await h.readTensor(name)();
  return E.isRight(t) ? t.right : null;
};

/** The stored qparams of one module when the checkpoint has them for the same grid. */
const storedParams = async (h: ModelHandle, name: string, args: QuantizationArgs): Promise<FakeQuantParams | null> => {
  const stored = storedArgs(h, name);
  if (stored === null || !sameGrid(stored, args)) return null;
  const scale = await readOptional(h, `${name}.weight_scale`);
  if (scale === null) return null;
  const zp = args.symmetric ? null : await readOptional(h, `${name}.weight_zero_point`);
  const g = await readOptional(h, `${name}.weight_g_idx`);
  return { args, scale, zeroPoint: zp, gIdx: g === null ? null : Int32Array.from(g.data as ArrayLike<number>) };
};

export interface QatPlan {
  readonly qparams: ReadonlyMap<string, FakeQuantParams>;
  /** Modules whose inputs are dynamically fake-quantized too (W8A8-style schemes), with their input args. */
  readonly inputs: ReadonlyMap<string, QuantizationArgs>;
  /** How many modules continue from the checkpoint's qparams; the rest start from QuantizationModifier's RTN qparams. */
  readonly fromCheckpoint: number;
}

/** The qparams of every module the QuantizationModifier plans; dynamic input activations train fake-quantized too. */
export const qatPlan = async (h: ModelHandle, cfg: QuantizationModifierConfig, tensors: ReadonlyMap<string, Tensor>): Promise<E.Either<LlmqError, QatPlan>> => {
  const mixin = initializeQuantizationMixin("QuantizationModifier", cfg, modelInfo(h));
  if (E.isLeft(mixin)) return E.left(recipeError(formatModifierError(mixin.left)));
  const out = new Map<string, FakeQuantParams>();
  const inputs = new Map<string, QuantizationArgs>();
  let fromCheckpoint = 0;
  for (const [name, p] of mixin.right.plan.modules) {
    const ia = p.scheme.input_activations;
    if (ia !== null && (ia.dynamic !== true || ia.type !== "int"))
      return E.left(recipeError(`${name}: QAT of static or non-int input activations is not supported by llmq yet; use dynamic int activations (W8A8) or a weight-only scheme`));
    if (ia !== null) inputs.set(name, ia);
    const args = p.scheme.weights!;
    if (args.type !== "int" || !["channel", "group", "tensor"].includes(args.strategy))
      return E.left(recipeError(`${name}: QAT supports int weights with tensor / channel / group strategies, got ${args.type} ${args.strategy}`));
    const stored = await storedParams(h, name, args);
    if (stored !== null) {
      out.set(name, stored);
      fromCheckpoint++;
      continue;
    }
    // The recipe's weight observer (memoryless min-max by default, or mse…) picks them, as QuantizationModifier would.
    const q = rtnModule(name, tensors.get(`${name}.weight`)!, args);
    if (E.isLeft(q)) return E.left(recipeError(formatModifierError(q.left)));
    out.set(name, { args, scale: q.right.scale, zeroPoint: q.right.zeroPoint, gIdx: null });
  }
  return E.right({ qparams: out, inputs, fromCheckpoint });
};
