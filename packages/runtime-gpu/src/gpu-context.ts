import type * as TE from "fp-ts/lib/TaskEither.js";
import { type GpuError, deviceFailed, noAdapter } from "./gpu-error.js";

/** A WebGPU device with the pipelines compiled so far (one per kernel source). */
export interface GpuContext {
  /** The implementation the device came from, kept reachable as long as the device is used. */
  readonly gpu: GPU;
  readonly device: GPUDevice;
  /** The adapter as "vendor architecture description", e.g. "google swiftshader SwiftShader driver 5.0.0". */
  readonly adapter: string;
  readonly isFallbackAdapter: boolean;
  readonly pipelines: Map<string, GPUComputePipeline>;
}

/** A device from `gpu` (navigator.gpu in a browser, nodeGpu() from "@llmq/runtime-gpu/node" in Node). */
export const requestGpuContext = (gpu: GPU | null | undefined): TE.TaskEither<GpuError, GpuContext> =>
  async () => {
    if (gpu === null || gpu === undefined) return { _tag: "Left", left: noAdapter("WebGPU is not available here (no navigator.gpu, no webgpu package)") };
    const adapter = await gpu.requestAdapter().catch(() => null);
    if (adapter === null) return { _tag: "Left", left: noAdapter("requestAdapter() returned null (no Vulkan/Metal/D3D driver, e.g. libvulkan1 missing)") };
    try {
      const limits = adapter.limits;
      const device = await adapter.requestDevice({
        requiredLimits: { maxStorageBufferBindingSize: limits.maxStorageBufferBindingSize, maxBufferSize: limits.maxBufferSize },
      });
      const i = adapter.info;
      return {
        _tag: "Right",
        right: {
          gpu,
          device,
          adapter: [i.vendor, i.architecture, i.description || i.device].filter((s) => s !== "").join(" "),
          isFallbackAdapter: (i as { isFallbackAdapter?: boolean }).isFallbackAdapter ?? false,
          pipelines: new Map(),
        },
      };
    } catch (e) {
      return { _tag: "Left", left: deviceFailed(String((e as Error)?.message ?? e)) };
    }
  };

const STORAGE = 0x80 | 0x4 | 0x8; // STORAGE | COPY_SRC | COPY_DST (GPUBufferUsage, not a global in every host)

/** A storage buffer holding `data` (or `bytes` zeroed bytes), padded to 4 bytes and at least 4 bytes. */
export const storageBuffer = (ctx: GpuContext, data: ArrayBufferView | number): GPUBuffer => {
  const bytes = typeof data === "number" ? data : data.byteLength;
  const buf = ctx.device.createBuffer({ size: Math.max(4, Math.ceil(bytes / 4) * 4), usage: STORAGE, mappedAtCreation: typeof data !== "number" });
  if (typeof data !== "number") {
    new Uint8Array(buf.getMappedRange()).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
    buf.unmap();
  }
  return buf;
};

/** The first `bytes` bytes of a storage buffer, copied back to the CPU. */
export const readBuffer = async (ctx: GpuContext, buf: GPUBuffer, bytes: number, offset = 0): Promise<ArrayBuffer> => {
  const staging = ctx.device.createBuffer({ size: Math.ceil(bytes / 4) * 4, usage: 0x1 | 0x8 }); // MAP_READ | COPY_DST
  const enc = ctx.device.createCommandEncoder();
  enc.copyBufferToBuffer(buf, offset, staging, 0, Math.ceil(bytes / 4) * 4);
  ctx.device.queue.submit([enc.finish()]);
  await staging.mapAsync(0x1);
  const out = staging.getMappedRange().slice(0, bytes);
  staging.unmap();
  staging.destroy();
  return out;
};

const pipeline = (ctx: GpuContext, code: string): GPUComputePipeline => {
  let p = ctx.pipelines.get(code);
  if (p === undefined) {
    p = ctx.device.createComputePipeline({ layout: "auto", compute: { module: ctx.device.createShaderModule({ code }), entryPoint: "main" } });
    ctx.pipelines.set(code, p);
  }
  return p;
};

const f32Bits = new Float32Array(1);
/** An f32 as the u32 of its bits (kernels read it back with bitcast). */
export const bitsOf = (v: number): number => {
  f32Bits[0] = v;
  return new Uint32Array(f32Bits.buffer)[0]!;
};

/**
 * Records one dispatch of `code` on `enc`: the buffers at bindings 0.., the params (≤ 8 u32) at the next binding,
 * `x` invocations along x (workgroups of 64, or 1 for a single-invocation kernel) and `y` along y.
 */
export const dispatch = (ctx: GpuContext, enc: GPUCommandEncoder, code: string, buffers: ReadonlyArray<GPUBuffer>, params: ReadonlyArray<number>, x: number, y = 1): void => {
  const pipe = pipeline(ctx, code);
  const u = ctx.device.createBuffer({ size: 32, usage: 0x40 | 0x8, mappedAtCreation: true }); // UNIFORM | COPY_DST
  new Uint32Array(u.getMappedRange()).set(params);
  u.unmap();
  const entries = [...buffers, u].map((buffer, binding) => ({ binding, resource: { buffer } }));
  const pass = enc.beginComputePass();
  pass.setPipeline(pipe);
  pass.setBindGroup(0, ctx.device.createBindGroup({ layout: pipe.getBindGroupLayout(0), entries }));
  const wg = code.includes("@workgroup_size(1)") ? 1 : 64;
  const groups = Math.ceil(x / wg);
  // more than 65535 workgroups along x spill into y (the elementwise kernels fold y back into the index: wgsl.ts FLAT_ID)
  if (y === 1 && groups > 65535) pass.dispatchWorkgroups(65535, Math.ceil(groups / 65535));
  else pass.dispatchWorkgroups(Math.max(1, groups), Math.max(1, y));
  pass.end();
};
