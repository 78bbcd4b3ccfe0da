import * as E from "fp-ts/lib/Either.js";
import { models, openModelDir, serialization, tensor } from "../index.js";

const right = async <A>(t: () => Promise<E.Either<unknown, A>>): Promise<A> => {
  const r = await t();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
  return r.right;
};

/**
 * llmq's view of a model directory, for the Python side: every float tensor as llmq reads it (compressed modules
 * decompressed by openModelDir) and the f32 logits of each window.
 */
export const dumpLlmq = async (dir: string, windows: ReadonlyArray<ReadonlyArray<number>>, out: string): Promise<ReadonlyArray<Float32Array>> => {
  const h = await right(openModelDir(dir));
  const entries = new Map<string, tensor.Tensor>();
  for (const name of h.tensorNames()) {
    const t = await right(h.readTensor(name));
    if (t.dtype === "f32" || t.dtype === "f16" || t.dtype === "bf16" || t.dtype === "f64") entries.set(name, tensor.toFloat32(t));
  }
  const logits: Float32Array[] = [];
  for (const [i, w] of windows.entries()) {
    const l = await right(models.forwardLogits(h, Int32Array.from(w)));
    logits.push(l.data);
    entries.set(`llmq.logits.${i}`, l);
    entries.set(`llmq.tokens.${i}`, await right(async () => tensor.fromStorage("i32", [w.length], Int32Array.from(w))));
  }
  await h.close();
  await right(serialization.writeSafetensors(out, entries));
  return logits;
};

