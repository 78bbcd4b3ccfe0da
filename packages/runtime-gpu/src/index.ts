export { type GpuError, deviceFailed, formatGpuError, gpuFailed, invalidCheckpoint, noAdapter, unsupportedCheckpoint } from "./gpu-error.js";
export { type GpuContext, bitsOf, dispatch, readBuffer, requestGpuContext, storageBuffer } from "./gpu-context.js";
export {
  type AttentionShape,
  type DenseLinear,
  type Fp8Linear,
  type GpuKernelName,
  type GpuLinear,
  type Nvfp4Linear,
  type PackedLinear,
  type ScaleDType,
  GPU_KERNELS,
  encodeAdd,
  encodeArgmax,
  encodeCausalAttention,
  encodeLinear,
  encodeQuantizeInputFp8,
  encodeQuantizeInputInt8,
  encodeQuantizeInputNvfp4,
  encodeRmsNorm,
  encodeRope,
  encodeSiluMul,
} from "./gpu-kernels.js";
export { type GpuLayer, type GpuModel, type QuantizedFiles, LAYER_LINEARS, loadQuantized } from "./load-quantized.js";
export { type GpuGenerateOptions, type GpuToken, type StepResult, generate, gpuStep } from "./gpu-generate.js";
export {
  type GpuKvCache,
  type GpuKvFormat,
  type GpuKvOverride,
  type GpuKvQuant,
  createGpuKvCache,
  destroyGpuKvCache,
  encodeCachedAttention,
  encodeKvAppend,
  encodeKvDequantize,
  encodeKvQuantize,
  gpuKvDynamic,
  gpuKvQuant,
  readGpuKvCache,
} from "./gpu-kv-cache.js";
