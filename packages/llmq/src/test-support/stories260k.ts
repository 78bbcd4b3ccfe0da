import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { convertCommand } from "../convert-command.js";

// Shared by the end-to-end tests: the repository root, a Right-or-throw for test setup, and the bundled stories260K
// converted into a Hugging Face directory.

export const ROOT = new URL("../../../../", import.meta.url).pathname;

/** The Right of an Either, or a thrown Error with the Left as JSON (test setup only). */
export const must = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

/** llama2.c stories260K (+ tok512) → an HF directory at `output` (tensors in `dtype`, default f32 as stored). */
export const convertStories = async (output: string, dtype?: "f32" | "bf16" | "f16"): Promise<void> => {
  must(
    await convertCommand({
      from: "llama2c",
      model: join(ROOT, "fixtures/stories260K/stories260K.bin"),
      tokenizer: join(ROOT, "fixtures/stories260K/tok512.bin"),
      output,
      overwrite: false,
      ...(dtype === undefined ? {} : { dtype }),
    })(),
  );
};
