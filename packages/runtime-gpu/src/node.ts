import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { create, globals } from "webgpu";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import type { GpuContext } from "./gpu-context.js";
import { type GpuError, invalidCheckpoint } from "./gpu-error.js";
import { type GpuModel, loadQuantized } from "./load-quantized.js";

// The Node side: a WebGPU implementation from the webgpu package (Dawn) and checkpoints read from a directory.

/** Debian chromium's SwiftShader Vulkan driver: a software adapter where there is no GPU. */
export const SWIFTSHADER_ICD = "/usr/lib/chromium/vk_swiftshader_icd.json";

/**
 * navigator.gpu's Node twin (Dawn). Without a Vulkan driver configured (VK_ICD_FILENAMES unset) and with Debian
 * chromium's SwiftShader installed, that software driver is used.
 */
export const nodeGpu = (): GPU => {
  if (instance === null) {
    if (process.env.VK_ICD_FILENAMES === undefined && existsSync(SWIFTSHADER_ICD)) process.env.VK_ICD_FILENAMES = SWIFTSHADER_ICD;
    Object.assign(globalThis, globals);
    instance = create([]) as unknown as GPU;
  }
  return instance;
};

// One Dawn instance per process, held for its lifetime: once the GPU object is collected, Dawn's event processing for
// devices made from it reads freed memory (a segfault in InstanceBase::ProcessEvents).
let instance: GPU | null = null;

/** loadQuantized from a directory holding config.json and model.safetensors. */
export const loadQuantizedDir = (ctx: GpuContext, dir: string): TE.TaskEither<GpuError, GpuModel> => async () => {
  const read = async (name: string): Promise<E.Either<GpuError, Buffer>> =>
    readFile(join(dir, name)).then(E.right, (e: Error) => E.left(invalidCheckpoint(join(dir, name), e.message)));
  const config = await read("config.json");
  if (E.isLeft(config)) return config;
  if (!existsSync(join(dir, "model.safetensors")) && existsSync(join(dir, "model.safetensors.index.json")))
    return E.left(invalidCheckpoint(dir, "sharded checkpoints (model.safetensors.index.json) are not supported by @llmq/runtime-gpu yet"));
  const weights = await read("model.safetensors");
  if (E.isLeft(weights)) return weights;
  return loadQuantized(ctx, { config: config.right.toString("utf8"), weights: new Uint8Array(weights.right.buffer, weights.right.byteOffset, weights.right.byteLength) });
};
