import { writeSafetensors } from "@llmq/serialization";
import { Tensor } from "@llmq/tensor";
import type * as E from "fp-ts/lib/Either.js";
import type { ModelHandle } from "@llmq/models";
import { openModelDir } from "../index.js";
import { must } from "./stories260k.js";

/**
 * Two 48-token windows and llmq's logits on them, written beside `model` as `<model>.llmq.safetensors` for the Python
 * side (llmq.tokens.i / llmq.logits.i). `logits` picks the forward (with or without the run-time input quantization).
 */
export const logitsFile = async (model: string, logits: (h: ModelHandle, tokens: Int32Array) => () => Promise<E.Either<unknown, Tensor>>): Promise<string> => {
  const h = must(await openModelDir(model)());
  const tensors = new Map<string, Tensor>();
  for (let w = 0; w < 2; w++) {
    const tokens = Int32Array.from({ length: 48 }, (_, i) => (i === 0 ? 1 : (i * 37 + w * 101) % 512));
    tensors.set(`llmq.tokens.${w}`, new Tensor("i32", [tokens.length], tokens));
    tensors.set(`llmq.logits.${w}`, must(await logits(h, tokens)()));
  }
  await h.close();
  const path = `${model}.llmq.safetensors`;
  must(await writeSafetensors(path, tensors, null)());
  return path;
};
