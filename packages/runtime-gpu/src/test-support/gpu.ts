import * as E from "fp-ts/lib/Either.js";
import type { GpuContext } from "../gpu-context.js";
import { requestGpuContext } from "../gpu-context.js";
import { formatGpuError } from "../gpu-error.js";
import { nodeGpu } from "../node.js";

/**
 * The test device, or null when this machine has no WebGPU adapter (then the GPU tests skip and say why: CI installs
 * libvulkan1 and chromium, whose SwiftShader driver gives a software adapter).
 */
export const testGpu = async (): Promise<GpuContext | null> => {
  process.env.XDG_RUNTIME_DIR ??= "/tmp";
  const ctx = await requestGpuContext(nodeGpu())();
  if (E.isLeft(ctx)) {
    console.warn(`@llmq/runtime-gpu tests SKIPPED: ${formatGpuError(ctx.left)}`);
    return null;
  }
  return ctx.right;
};

/** Seeded uniform values in [lo, hi) (a fixed LCG: reproducible cases without a dependency). */
export const seeded = (n: number, seed: number, lo = -1, hi = 1): Float32Array => {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return lo + ((hi - lo) * s) / 2 ** 32;
  });
};

/** Largest |a − b| relative to the largest |b| (one scale for the whole tensor, as matmul errors are). */
export const relErr = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let err = 0;
  let mag = 0;
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i]! - b[i]!));
    mag = Math.max(mag, Math.abs(b[i]!));
  }
  return mag === 0 ? err : err / mag;
};
