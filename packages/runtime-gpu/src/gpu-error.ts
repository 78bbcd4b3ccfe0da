// Errors are values: every failure of the runtime is one of these, formatted once where it is shown.

export type GpuError =
  | { readonly _tag: "NoAdapter"; readonly detail: string }
  | { readonly _tag: "DeviceFailed"; readonly detail: string }
  | { readonly _tag: "UnsupportedCheckpoint"; readonly file: string; readonly detail: string }
  | { readonly _tag: "InvalidCheckpoint"; readonly file: string; readonly detail: string }
  | { readonly _tag: "GpuFailed"; readonly kernel: string; readonly detail: string };

export const noAdapter = (detail: string): GpuError => ({ _tag: "NoAdapter", detail });
export const deviceFailed = (detail: string): GpuError => ({ _tag: "DeviceFailed", detail });
export const unsupportedCheckpoint = (file: string, detail: string): GpuError => ({ _tag: "UnsupportedCheckpoint", file, detail });
export const invalidCheckpoint = (file: string, detail: string): GpuError => ({ _tag: "InvalidCheckpoint", file, detail });
export const gpuFailed = (kernel: string, detail: string): GpuError => ({ _tag: "GpuFailed", kernel, detail });

export const formatGpuError = (e: GpuError): string => {
  switch (e._tag) {
    case "NoAdapter":
      return `no WebGPU adapter: ${e.detail}`;
    case "DeviceFailed":
      return `WebGPU device: ${e.detail}`;
    case "UnsupportedCheckpoint":
      return `${e.file}: not supported by @llmq/runtime-gpu yet: ${e.detail}`;
    case "InvalidCheckpoint":
      return `${e.file}: ${e.detail}`;
    case "GpuFailed":
      return `GPU kernel ${e.kernel}: ${e.detail}`;
  }
};
