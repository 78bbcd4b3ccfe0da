import { forwardLogits } from "@llmq/models";
import { writeSafetensors } from "@llmq/serialization";
import { Tensor } from "@llmq/tensor";
import { openModelDir } from "../open-model.js";
import { must } from "./stories260k.js";

/**
 * Two token windows of 48 stories260K tokens and llmq's logits on them for the model directory, written beside it as
 * `<model>.llmq.safetensors` (llmq.tokens.i / llmq.logits.i) for the Python checks that run the same directory.
 */
export const logitsFile = async (model: string): Promise<string> => {
  const h = must(await openModelDir(model)());
  const tensors = new Map<string, Tensor>();
  for (let w = 0; w < 2; w++) {
    const tokens = Int32Array.from({ length: 48 }, (_, i) => (i === 0 ? 1 : (i * 37 + w * 101) % 512));
    tensors.set(`llmq.tokens.${w}`, new Tensor("i32", [tokens.length], tokens));
    tensors.set(`llmq.logits.${w}`, must(await forwardLogits(h, tokens)()));
  }
  await h.close();
  const path = `${model}.llmq.safetensors`;
  must(await writeSafetensors(path, tensors, null)());
  return path;
};
