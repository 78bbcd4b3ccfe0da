export { type Buf, type Tape, type Var, alloc, backward, constant, gemm, gradOf, newTape, param, record, runBackward } from "./tape.js";
export { add, embedding, linear, rmsNorm, siluMul } from "./ops.js";
export { type AttentionShape, type RopeTables, causalAttention, rope } from "./attention.js";
export { crossEntropy, klDistillation, weightedSum } from "./losses.js";
export { type FakeQuantParams, fakeQuantInputSTE, fakeQuantSTE, steMask } from "./fake-quant-ste.js";
export {
  type FakeQuantPlan,
  type TrainWeights,
  LAYER_LINEARS,
  LAYER_NORMS,
  fakeQuantizeWeights,
  llamaTrainLogits,
  trainForwardSupport,
  trainTensorNames,
} from "./llama-train-forward.js";
export { trainWeights, weightTensors } from "./train-weights.js";
export {
  type AdamWOptions,
  type AdamWState,
  type Schedule,
  type ScheduleName,
  ADAMW_DEFAULTS,
  SCHEDULE_NAMES,
  adamWInit,
  adamWStep,
  clipGradNorm,
  scheduleFactor,
} from "./adamw.js";
export type { Teacher, TrainState } from "./train-state.js";
export { type QatPhase, type TrainModifier, qatModifier } from "./train-modifier.js";
export { type Batch, type TrainError, type TrainEvent, type TrainOptions, epochBatches, train$ } from "./train-loop.js";
export { frozenQuantizedWeight, trainedQuantizationModifier } from "./trained-quantization-modifier.js";
