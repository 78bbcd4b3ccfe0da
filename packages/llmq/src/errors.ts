import type { ModifierError } from "@llmq/observers";
import { type OverlapRelation, type SerializationError, describeErrno, errnoCode, errnoMeaning, formatSerializationError } from "@llmq/serialization";

// ----- model -----

/** Failures of the umbrella package, as values. The CLI turns each into one message and exit code 1 (input) or 2. */
export type LlmqError =
  | { readonly _tag: "DatasetError"; readonly path: string; readonly detail: string }
  | { readonly _tag: "RecipeError"; readonly detail: string }
  | { readonly _tag: "ModelError"; readonly detail: string }
  | { readonly _tag: "SchemeError"; readonly detail: string }
  /** A modifier failed; `cause` is the typed error of the package that owns the math (GptqError, ObserverError…). */
  | { readonly _tag: "QuantizationError"; readonly module: string; readonly detail: string; readonly cause?: ModifierError }
  | { readonly _tag: "OutputExists"; readonly path: string }
  /** The output would equal, contain or lie inside a path the run reads (the model, the dataset, the report). */
  | { readonly _tag: "OutputOverlaps"; readonly path: string; readonly other: string; readonly relation: OverlapRelation }
  /** The output path is a file, link or device: never replaced, even with --overwrite. */
  | { readonly _tag: "OutputNotDirectory"; readonly path: string; readonly kind: string }
  /** Another live llmq process is writing the same output. */
  | { readonly _tag: "OutputLocked"; readonly path: string; readonly pid: number; readonly lock: string }
  /** `code` is the errno code where the system gave one (it picks the advice in the message). */
  | { readonly _tag: "IoError"; readonly path: string; readonly detail: string; readonly code?: string | null }
  /** A command-line argument that cannot work, found before any work is done. */
  | { readonly _tag: "UsageError"; readonly option: string; readonly detail: string; readonly hint: string }
  | { readonly _tag: "Aborted"; readonly detail: string }
  | { readonly _tag: "Internal"; readonly detail: string };

// ----- constructors -----

export const datasetError = (path: string, detail: string): LlmqError => ({ _tag: "DatasetError", path, detail });
export const recipeError = (detail: string): LlmqError => ({ _tag: "RecipeError", detail });
export const modelError = (detail: string): LlmqError => ({ _tag: "ModelError", detail });
export const schemeError = (detail: string): LlmqError => ({ _tag: "SchemeError", detail });
export const quantizationError = (module: string, detail: string): LlmqError => ({ _tag: "QuantizationError", module, detail });
/** A modifier's error as the umbrella's: the module (or the modifier) named, the typed cause kept. */
export const modifierFailure = (e: ModifierError): LlmqError => ({ _tag: "QuantizationError", module: e.module ?? e.modifier, detail: `${e.modifier}: ${e.detail}`, cause: e });
export const outputExists = (path: string): LlmqError => ({ _tag: "OutputExists", path });
export const outputOverlaps = (path: string, other: string, relation: OverlapRelation): LlmqError => ({ _tag: "OutputOverlaps", path, other, relation });
export const outputNotDirectory = (path: string, kind: string): LlmqError => ({ _tag: "OutputNotDirectory", path, kind });
export const outputLocked = (path: string, pid: number, lock: string): LlmqError => ({ _tag: "OutputLocked", path, pid, lock });
export const ioError = (path: string, detail: string, code: string | null = null): LlmqError => ({ _tag: "IoError", path, detail, code });
export const usageError = (option: string, detail: string, hint: string): LlmqError => ({ _tag: "UsageError", option, detail, hint });
export const aborted = (detail: string): LlmqError => ({ _tag: "Aborted", detail });
/** The Aborted error of a signal, with the reason it was aborted for. */
export const abortedBy = (signal: AbortSignal): LlmqError => aborted(String((signal.reason as Error)?.message ?? "interrupted"));
export const internal = (detail: string): LlmqError => ({ _tag: "Internal", detail });

/**
 * A path as the user knows it: a staging directory (`.out.staging.llmq-tmp-…`) shown as its target `out`, a temporary
 * file (`.model.safetensors.llmq-tmp-…`) as the file it becomes.
 */
export const displayPath = (p: string): string =>
  p.replace(/(^|\/)\.([^/]+?)\.staging\.llmq-tmp-\d+-[0-9a-f]{12}(?=\/|$)/g, "$1$2").replace(/(^|\/)\.([^/]+?)(?:-spool|-index|-shard\d+|\.old|\.stale)?\.llmq-tmp-\d+-[0-9a-f]{12}$/, "$1$2");

/** A thrown Node I/O error while `doing` something with `path`: the errno in words, the path as the user knows it. */
export const ioErrorFrom = (path: string, doing: string, err: unknown): LlmqError => {
  const p = (err as { path?: unknown } | null)?.path;
  const dest = (err as { dest?: unknown } | null)?.dest;
  const code = errnoCode(err);
  // copyFile names the source in `path` and the destination in `dest`; only a full or read-only disk is the
  // destination's fault (the staging directory it writes into is fresh and ours).
  const destFault = code === "ENOSPC" || code === "EDQUOT" || code === "EROFS" || code === "EFBIG";
  const failed = typeof dest === "string" && destFault ? dest : typeof p === "string" ? p : path;
  return ioError(displayPath(failed), `${doing}: ${describeErrno(err)}`, code);
};

/** What the writers were doing, by their op names, in words. */
const OUTPUT_OPS: Readonly<Record<string, string>> = {
  write: "write the weights",
  close: "finish the weights file",
  rename: "move the finished output into place",
  mkdir: "create the directory",
  lock: "take the output's lock",
  stat: "look at the output",
  realpath: "resolve the path",
};

/** A serialization failure on the output `output`, as the umbrella's error. */
export const outputFailure = (output: string, e: SerializationError): LlmqError => {
  switch (e._tag) {
    case "OutputExists":
      return outputExists(output);
    case "OutputOverlaps":
      return outputOverlaps(output, e.other, e.relation);
    case "OutputLocked":
      return outputLocked(output, e.pid, e.lock);
    case "OutputNotDirectory":
      return outputNotDirectory(output, e.kind);
    case "IoError":
      return ioError(displayPath(e.file), `cannot ${OUTPUT_OPS[e.op] ?? e.op}${e.tensor !== null ? ` (tensor ${e.tensor})` : ""}: ${e.detail}`, e.code);
    default:
      return ioError(output, formatSerializationError(e));
  }
};

// ----- destructors -----

/** The shape of every message: what failed — why (what to do). */
const say = (what: string, why: string, todo: string): string => `${what} — ${oneLine(why)} (${todo})`;

/** Messages from parsers (YAML, JSON) can span lines; the CLI prints exactly one. */
const oneLine = (s: string): string => s.replace(/\s*\n\s*/g, " ").trim();

const RELATION: Readonly<Record<OverlapRelation, string>> = { equals: "is the same path as", contains: "contains", inside: "lies inside" };

const ioHint = (code: string | null | undefined): string => errnoMeaning(code ?? null)?.hint ?? "check the path and its permissions";

export const formatLlmqError = (e: LlmqError): string => {
  switch (e._tag) {
    case "DatasetError":
      return say(`dataset ${e.path}`, e.detail, "fix the file or pass another --dataset");
    case "RecipeError":
      return say("recipe", e.detail.replace(/^recipe:\s*/, ""), "fix the recipe or the flags; see llmq quantize --help");
    case "ModelError":
      return say("model", e.detail, "check the model's files; config.json and the weights must agree");
    case "SchemeError":
      return say("scheme", e.detail, "pick a preset listed by llmq quantize --help, or pass --recipe");
    case "QuantizationError":
      return say(`quantizing ${e.module}`, e.detail, "check the recipe and the calibration data");
    case "OutputExists":
      return say(`output ${e.path}`, "exists and is not empty", "pass --overwrite to replace it, or choose another --output");
    case "OutputOverlaps":
      return say(`output ${e.path}`, `${RELATION[e.relation]} ${e.other}, which this run reads`, "choose an --output outside it");
    case "OutputNotDirectory":
      return say(`output ${e.path}`, `exists and is a ${e.kind}, not a directory`, "remove it or choose another --output; --overwrite only replaces directories");
    case "OutputLocked":
      return say(
        `output ${e.path}`,
        `another llmq process${e.pid > 0 ? ` (pid ${e.pid})` : ""} is writing it`,
        `wait for it to finish, or delete ${e.lock} if that process is gone`,
      );
    case "IoError":
      return say(e.path, e.detail, ioHint(e.code));
    case "UsageError":
      return say(e.option, e.detail, e.hint);
    case "Aborted":
      return say("interrupted", `${e.detail}; no partial output was left`, "run the command again to redo the work");
    case "Internal":
      return say("internal error", e.detail, "this is a bug in llmq: please report it with the command line");
  }
};

/** Exit code for an error: 2 for bugs, 1 for everything the user can fix. */
export const exitCodeOf = (e: LlmqError): 1 | 2 => (e._tag === "Internal" ? 2 : 1);
