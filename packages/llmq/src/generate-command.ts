import { type ModelHandle, loadTokenizer, formatModelError } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { lastValueFrom, scan } from "rxjs";
import { type LlmqError, modelError } from "./errors.js";
import { type KvCacheOverride, kvCacheLabel, layerKvFormat } from "./evaluate.js";
import { type GeneratedToken, generate, loadForGeneration } from "./generate.js";
import { openModelDir } from "./open-model.js";
import type { ProgressSink } from "./progress.js";

// `llmq generate`: text from a prompt with the model's tokenizer, streamed as it is decoded, through the KV cache.

export interface GenerateCommandOptions {
  readonly model: string;
  readonly prompt: string;
  readonly maxTokens: number;
  readonly temperature: number;
  readonly topP: number;
  readonly seed: number;
  readonly kvCache?: KvCacheOverride | "none" | undefined;
  /** Keep generating past the tokenizer's EOS. */
  readonly ignoreEos: boolean;
  readonly signal?: AbortSignal;
  /** Loading the weights (the CLI's progress bar on stderr unless -q). */
  readonly progress?: ProgressSink;
  /** Each new piece of text, as soon as it is decoded (the CLI writes it to stdout unless --json). */
  readonly onText?: (piece: string) => void;
}

/** The stable `--json` shape of `llmq generate`. */
export interface GenerateCommandResult {
  readonly model: string;
  readonly prompt_tokens: number;
  readonly tokens: ReadonlyArray<number>;
  readonly text: string;
  readonly seconds: number;
  readonly tokens_per_second: number;
  readonly kv_cache: string;
  /** KV-cache bytes per cached position (all layers, keys and values), 0 without a cache. */
  readonly kv_bytes_per_token: number;
}

const kvLabel = (h: ModelHandle, o: GenerateCommandOptions): string =>
  o.kvCache === "none" ? "none (every step recomputes the sequence)" : kvCacheLabel(layerKvFormat(h, 0, o.kvCache) ?? { kind: "f32" });

export const generateCommand = (o: GenerateCommandOptions): TE.TaskEither<LlmqError, GenerateCommandResult> => async () => {
  const h = await openModelDir(o.model)();
  if (E.isLeft(h)) return h;
  try {
    const tok = await loadTokenizer(o.model)();
    if (E.isLeft(tok)) return E.left(modelError(`${formatModelError(tok.left)} (generate needs the model's tokenizer.json)`));
    const m = await loadForGeneration(h.right, o.progress)();
    if (E.isLeft(m)) return m;
    const prompt = Int32Array.from(tok.right.encode(o.prompt, { bos: true }));
    const t0 = performance.now();
    let printed = "";
    const out = await lastValueFrom(
      generate(m.right, prompt, { ...o, eosId: o.ignoreEos ? null : tok.right.eosId }).pipe(
        scan(
          (acc: { readonly ids: number[]; readonly last: GeneratedToken | null; readonly error: LlmqError | null }, r) => {
            if (E.isLeft(r)) return { ...acc, error: r.left };
            const ids = [...acc.ids, r.right.id];
            const text = tok.right.decode(ids);
            if (text.startsWith(printed) && text.length > printed.length) o.onText?.(text.slice(printed.length));
            printed = text;
            return { ids, last: r.right, error: null };
          },
          { ids: [], last: null, error: null },
        ),
      ),
      { defaultValue: { ids: [], last: null, error: null } },
    );
    if (out.error !== null) return E.left(out.error);
    const seconds = (performance.now() - t0) / 1000;
    const cached = prompt.length + out.ids.length - 1;
    return E.right({
      model: o.model,
      prompt_tokens: prompt.length,
      tokens: out.ids,
      text: tok.right.decode(out.ids),
      seconds,
      tokens_per_second: out.ids.length / seconds,
      kv_cache: kvLabel(h.right, o),
      kv_bytes_per_token: out.last === null || cached <= 0 ? 0 : Math.round(out.last.kvBytes / cached),
    });
  } finally {
    await h.right.close();
  }
};

export const formatGenerate = (r: GenerateCommandResult): string =>
  `\n— ${r.tokens.length} tokens in ${r.seconds.toFixed(2)} s (${r.tokens_per_second.toFixed(1)} tokens/s), prompt ${r.prompt_tokens} tokens, KV cache ${r.kv_cache}${r.kv_bytes_per_token > 0 ? `, ${r.kv_bytes_per_token} bytes/token` : ""}`;
