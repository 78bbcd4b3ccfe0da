import type { Tensor } from "@llmq/tensor";
import { openSafetensors } from "@llmq/serialization";
import { must } from "./stories260k.js";

/** Every tensor of one safetensors file, by name (test fixtures: small files). */
export const readTensors = async (path: string): Promise<ReadonlyMap<string, Tensor>> => {
  const f = must(await openSafetensors(path)());
  try {
    const out = new Map<string, Tensor>();
    for (const n of f.names) out.set(n, must(await f.read(n)()));
    return out;
  } finally {
    await f.close();
  }
};
