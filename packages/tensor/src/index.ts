export * from "./dtype.js";
export * from "./errors.js";
export * from "./tensor.js";
export type { KernelSignatures, KernelName, BackendName, Kernels, Side, Uplo } from "./kernels.js";
export { jsKernels } from "./backend-js.js";
export { activeBackend, kernels, kernelsFor, nativeAddon, nativeError, setBackend } from "./backend.js";
export type { NativeAddon } from "./backend.js";
