import { nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import { type Observable, from } from "rxjs";
import { describeErrno } from "@llmq/serialization";
import { type LlmqError, datasetError } from "./errors.js";
const { readFile, stat } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");

// ----- model -----

/** What a dataset needs from a tokenizer (structurally satisfied by @llmq/models' tokenizer). */
export interface DatasetTokenizer {
  readonly encode: (text: string, opts: { readonly bos: boolean }) => ReadonlyArray<number>;
  readonly bosId: number | null;
}

/** One calibration / evaluation sequence. */
export interface Batch {
  readonly index: number;
  readonly tokens: Int32Array;
}

export interface DatasetOptions {
  /** Max number of windows (all when undefined). */
  readonly numSamples?: number | undefined;
  /** Window length in tokens (text: BOS + seqLen−1 text tokens; token arrays: truncation). */
  readonly seqLen?: number | undefined;
  /** Seed for the window order ("shuffle" sampling). */
  readonly seed?: number | undefined;
  /**
   * "sequential" keeps document order (evaluation); "shuffle" draws windows in a seeded random order (calibration,
   * like llm-compressor's `shuffle(seed)` of the calibration split).
   */
  readonly sampling?: "sequential" | "shuffle" | undefined;
  /** JSONL: the field holding the text (default "text"). */
  readonly textField?: string | undefined;
  readonly vocabSize?: number | undefined;
}

export type DatasetKind = "tokens" | "text" | "jsonl";

export interface Dataset {
  readonly path: string;
  readonly kind: DatasetKind;
  readonly windows: ReadonlyArray<Int32Array>;
  /** Total tokens in the windows. */
  readonly tokens: number;
}

// ----- constructors -----

/** Seeded, platform-independent shuffle (splitmix32 + Fisher–Yates): same seed → same order everywhere. */
export const seededPermutation = (n: number, seed: number): number[] => {
  let s = seed >>> 0;
  const next = (): number => {
    s = (s + 0x9e3779b9) >>> 0;
    let z = s;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
    return ((z ^ (z >>> 16)) >>> 0) / 2 ** 32;
  };
  const p = Array.from({ length: n }, (_, i) => i);
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
};

/** The kind a file's extension names; the content is sniffed only for other extensions (a .txt is text even when it starts with "[["). */
export const detectKind = (path: string, text: string): DatasetKind => {
  if (/\.jsonl$/i.test(path)) return "jsonl";
  if (/\.json$/i.test(path)) return "tokens";
  if (/\.(txt|text|md)$/i.test(path)) return "text";
  return /^\s*\[\s*\[/.test(text.slice(0, 64)) ? "tokens" : "text";
};

const select = <A>(items: ReadonlyArray<A>, opts: DatasetOptions): ReadonlyArray<A> => {
  const order = opts.sampling === "shuffle" ? seededPermutation(items.length, opts.seed ?? 42).map((i) => items[i]!) : items;
  return opts.numSamples === undefined ? order : order.slice(0, opts.numSamples);
};

/** A JSON array of token-id arrays, used as given: no BOS added, no re-chunking; seqLen truncates. */
export const tokenWindows = (path: string, json: unknown, opts: DatasetOptions): E.Either<LlmqError, ReadonlyArray<Int32Array>> => {
  if (!Array.isArray(json)) return E.left(datasetError(path, "expected a JSON array of token-id arrays"));
  const out: Int32Array[] = [];
  for (let i = 0; i < json.length; i++) {
    const row: unknown = json[i];
    if (!Array.isArray(row)) return E.left(datasetError(path, `item ${i} is not an array of token ids`));
    const ids = opts.seqLen !== undefined ? row.slice(0, opts.seqLen) : row;
    const bad = ids.findIndex((t) => !Number.isInteger(t) || t < 0 || (opts.vocabSize !== undefined && t >= opts.vocabSize));
    if (bad >= 0)
      return E.left(
        datasetError(path, `item ${i}, position ${bad}: ${JSON.stringify(ids[bad])} is not a token id${opts.vocabSize !== undefined ? ` in [0, ${opts.vocabSize})` : ""}`),
      );
    if (ids.length > 0) out.push(Int32Array.from(ids as number[]));
  }
  return E.right(out);
};

/** Plain text: tokenized as one stream, cut into consecutive windows of seqLen tokens that each start with BOS. */
export const textWindows = (path: string, text: string, tok: DatasetTokenizer, opts: DatasetOptions): E.Either<LlmqError, ReadonlyArray<Int32Array>> => {
  const seqLen = opts.seqLen ?? 512;
  if (seqLen < 2) return E.left(datasetError(path, `--seq-len must be at least 2, got ${seqLen}`));
  const ids = tok.encode(text, { bos: false });
  const bos = tok.bosId;
  const body = bos === null ? seqLen : seqLen - 1;
  const out: Int32Array[] = [];
  for (let start = 0; start + body <= ids.length; start += body) {
    const w = new Int32Array(seqLen);
    let o = 0;
    if (bos !== null) w[o++] = bos;
    for (let j = 0; j < body; j++) w[o++] = ids[start + j]!;
    out.push(w);
  }
  if (out.length === 0 && ids.length > 0) {
    // Shorter than one window: use what there is rather than nothing.
    out.push(Int32Array.from(bos === null ? ids : [bos, ...ids]));
  }
  return E.right(out);
};

/** JSONL with a text field: each line is one sample (BOS + its tokens, truncated to seqLen). */
export const jsonlWindows = (path: string, text: string, tok: DatasetTokenizer, opts: DatasetOptions): E.Either<LlmqError, ReadonlyArray<Int32Array>> => {
  const field = opts.textField ?? "text";
  const out: Int32Array[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === "") continue;
    let obj: unknown;
    try {
      obj = JSON.parse(line);
    } catch (e) {
      return E.left(datasetError(path, `line ${i + 1} is not valid JSON (${(e as Error).message})`));
    }
    const t = typeof obj === "object" && obj !== null ? (obj as Record<string, unknown>)[field] : undefined;
    if (typeof t !== "string") return E.left(datasetError(path, `line ${i + 1} has no string field "${field}"`));
    const ids = tok.encode(t, { bos: tok.bosId !== null });
    const w = opts.seqLen !== undefined ? ids.slice(0, opts.seqLen) : ids;
    if (w.length >= 2) out.push(Int32Array.from(w));
  }
  return E.right(out);
};

/**
 * Loads a dataset file. Token JSON needs no tokenizer; text and JSONL do (a model without tokenizer.json must be given
 * token ids).
 */
/** A dataset from its text as loadDataset reads it (token-id JSON, JSONL or plain text); `path` names it in messages. */
export const datasetFromText = (path: string, text: string, tokenizer: DatasetTokenizer | null, opts: DatasetOptions = {}): E.Either<LlmqError, Dataset> => {
  const kind = detectKind(path, text);
  const windows: E.Either<LlmqError, ReadonlyArray<Int32Array>> =
    kind === "tokens"
      ? pipe(
          E.tryCatch(
            () => JSON.parse(text) as unknown,
            (e) => datasetError(path, `not valid JSON (${(e as Error).message})`),
          ),
          E.chain((json) => tokenWindows(path, json, opts)),
        )
      : tokenizer === null
        ? E.left(datasetError(path, "this model has no tokenizer (tokenizer.json); pass a JSON array of token-id arrays instead"))
        : kind === "jsonl"
          ? jsonlWindows(path, text, tokenizer, opts)
          : textWindows(path, text, tokenizer, opts);
  return pipe(
    windows,
    E.map((ws) => select(ws, opts)),
    E.filterOrElse(
      (ws) => ws.length > 0,
      () => datasetError(path, "the dataset is empty (no window of at least 2 tokens)"),
    ),
    E.map((ws): Dataset => ({ path, kind, windows: ws, tokens: ws.reduce((a, w) => a + w.length, 0) })),
  );
};

export const loadDataset = (path: string, tokenizer: DatasetTokenizer | null, opts: DatasetOptions = {}): TE.TaskEither<LlmqError, Dataset> =>
  pipe(
    TE.tryCatch(
      () => readRegularFile(path),
      (e) => datasetError(path, `cannot read: ${describeErrno(e)}`),
    ),
    TE.chainEitherK((text) => datasetFromText(path, text, tokenizer, opts)),
  );

/** A file's text; a device (/dev/zero, /dev/urandom) is refused at once instead of being read until memory runs out. */
export const readRegularFile = async (path: string): Promise<string> => {
  const s = await stat(path);
  if (s.isCharacterDevice() || s.isBlockDevice()) throw new Error("it is a device, not a file");
  return readFile(path, "utf8");
};

/** The windows of a dataset as a cold stream of batches (one sequence per batch). */
export const batches$ = (d: Dataset): Observable<Batch> => from(d.windows.map((tokens, index): Batch => ({ index, tokens })));
