import { nodeBuiltin } from "@llmq/tensor";
import { Tokenizer } from "@huggingface/tokenizers";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { type ModelError, fileNotFound, invalidJson, ioError, tokenizerError } from "./errors.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

/** A tokenizer loaded from a model directory's tokenizer.json (+ tokenizer_config.json when present). */
export interface TextTokenizer {
  /** Token ids of `text`; `bos` prepends the BOS id (no other special tokens are added). */
  readonly encode: (text: string, opts?: { readonly bos?: boolean }) => number[];
  /** Text of `ids`, special tokens skipped. */
  readonly decode: (ids: ReadonlyArray<number>) => string;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly vocabSize: number;
}

const readJson = (path: string, optional: boolean): TE.TaskEither<ModelError, Record<string, unknown> | undefined> =>
  pipe(
    TE.tryCatch(
      () => readFile(path, "utf8"),
      (e) => ((e as NodeJS.ErrnoException).code === "ENOENT" ? fileNotFound(path, "tokenizer file") : ioError(path, (e as Error).message)),
    ),
    TE.map((s): string | undefined => s),
    TE.orElse((e) => (optional && e._tag === "FileNotFound" ? TE.right(undefined) : TE.left(e))),
    TE.chain((s) =>
      s === undefined
        ? TE.right(undefined)
        : TE.fromEither(
            (() => {
              try {
                const v: unknown = JSON.parse(s);
                return typeof v === "object" && v !== null && !Array.isArray(v)
                  ? { _tag: "Right" as const, right: v as Record<string, unknown> }
                  : { _tag: "Left" as const, left: invalidJson(path, "the top level must be an object") };
              } catch (e) {
                return { _tag: "Left" as const, left: invalidJson(path, (e as Error).message) };
              }
            })(),
          ),
    ),
  );

const tokenId = (tok: Tokenizer, v: unknown): number | null => {
  const s = typeof v === "string" ? v : typeof v === "object" && v !== null && "content" in v ? String((v as { content: unknown }).content) : null;
  return s === null ? null : (tok.token_to_id(s) ?? null);
};

/** A TextTokenizer from tokenizer.json / tokenizer_config.json contents (`where` names them in errors). */
export const tokenizerFromJson = (where: string, tj: Record<string, unknown>, tc: Record<string, unknown> | undefined): E.Either<ModelError, TextTokenizer> => {
  try {
    const tok = new Tokenizer(tj as object, (tc ?? {}) as object);
    const bosId = tokenId(tok, tc?.bos_token ?? "<s>");
    const eosId = tokenId(tok, tc?.eos_token ?? "</s>");
    const model = (tj as { model?: { vocab?: Record<string, number> | unknown[] } }).model;
    const base = model?.vocab === undefined ? 0 : Array.isArray(model.vocab) ? model.vocab.length : Object.keys(model.vocab).length;
    return E.right({
      encode: (text, opts) => {
        const ids = tok.encode(text, { add_special_tokens: false }).ids;
        return opts?.bos === true && bosId !== null ? [bosId, ...ids] : ids;
      },
      decode: (ids) => tok.decode([...ids], { skip_special_tokens: true }),
      bosId,
      eosId,
      vocabSize: base,
    });
  } catch (e) {
    return E.left(tokenizerError(where, (e as Error).message));
  }
};

/** Loads `dir/tokenizer.json` with @huggingface/tokenizers; BOS/EOS come from tokenizer_config.json or "<s>"/"</s>". */
export const loadTokenizer = (dir: string): TE.TaskEither<ModelError, TextTokenizer> =>
  pipe(
    TE.Do,
    TE.apS("tj", readJson(join(dir, "tokenizer.json"), false)),
    TE.apS("tc", readJson(join(dir, "tokenizer_config.json"), true)),
    TE.chainEitherK(({ tj, tc }) => tokenizerFromJson(join(dir, "tokenizer.json"), tj as Record<string, unknown>, tc)),
  );
