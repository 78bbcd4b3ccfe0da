// transformers' QuantizationConfigMixin: a config is its to_dict() (attribute order kept), the keys of the input that
// had no effect, and the defaults to_diff_dict compares against (null where the class inherits the mixin's
// to_diff_dict, which diffs nothing).
import { type PyJson, type PyJsonObject, dumpPythonJson } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, invalidHfConfig } from "./errors.js";
import { pyEqual } from "./py-values.js";

// ----- model -----

export interface HfQuantizationConfig {
  /** The transformers class ("BitsAndBytesConfig"). */
  readonly className: string;
  /** to_dict()["quant_method"]: "bitsandbytes" for both bitsandbytes modes. */
  readonly quantMethod: string;
  /** to_dict(), keys in transformers' attribute order. */
  readonly dict: PyJsonObject;
  /** Input keys that changed nothing (transformers drops them, at most with a log line); llmq reports them. */
  readonly ignored: ReadonlyArray<string>;
  /** What to_diff_dict compares with (the default instance's to_dict), or null: to_diff_dict = to_dict. */
  readonly diffDefaults: (() => PyJsonObject) | null;
}

export type ConfigResult = E.Either<HfQuantizerError, HfQuantizationConfig>;

/** One transformers config class: `create` is Cls(**kwargs), `fromDict` is Cls.from_dict(d). */
export interface QuantizationConfigClass {
  readonly name: string;
  readonly quantMethod: string;
  readonly create: (kwargs: PyJsonObject) => ConfigResult;
  readonly fromDict: (d: PyJsonObject) => ConfigResult;
  /** How a user's dict becomes a config (`llmq quantize --hf-config`): fromDict unless the class says otherwise. */
  readonly fromUserDict?: (d: PyJsonObject) => ConfigResult;
}

// ----- serialization -----

export const toDict = (c: HfQuantizationConfig): PyJsonObject => c.dict;

/** to_diff_dict: keys absent from the defaults or different from them (Python ==, so 6 equals 6.0). */
export const toDiffDict = (c: HfQuantizationConfig): PyJsonObject => {
  if (c.diffDefaults === null) return c.dict;
  const d = c.diffDefaults();
  return Object.fromEntries(Object.entries(c.dict).filter(([k, v]) => !Object.hasOwn(d, k) || !pyEqual(v, d[k])));
};

/** to_json_string(use_diff): json.dumps(indent=2, sort_keys=True) + "\n". */
export const toJsonString = (c: HfQuantizationConfig, useDiff = true): string =>
  `${dumpPythonJson(useDiff ? toDiffDict(c) : toDict(c), { indent: 2, sortKeys: true })}\n`;

// ----- building -----

/** Keyword arguments as a Python constructor sees them: taken keys are remembered, the rest were ignored. */
export class Kwargs {
  readonly #d: PyJsonObject;
  readonly #used = new Set<string>(["quant_method"]);
  constructor(d: PyJsonObject) {
    this.#d = d;
  }
  has(key: string): boolean {
    return Object.hasOwn(this.#d, key);
  }
  /** kwargs.get(key, default) — also the value of a named parameter with that default. */
  take(key: string, dflt: PyJson): PyJson {
    this.#used.add(key);
    return Object.hasOwn(this.#d, key) ? (this.#d[key] as PyJson) : dflt;
  }
  /** Keys never taken, minus `echo` (keys to_dict writes that the constructor does not read, e.g. "_load_in_4bit"). */
  ignored(echo: ReadonlyArray<string> = []): ReadonlyArray<string> {
    return Object.keys(this.#d).filter((k) => !this.#used.has(k) && !echo.includes(k));
  }
}

export const configOf = (
  className: string,
  quantMethod: string,
  dict: PyJsonObject,
  ignored: ReadonlyArray<string>,
  diffDefaults: (() => PyJsonObject) | null,
): HfQuantizationConfig => ({ className, quantMethod, dict, ignored, diffDefaults });

/** A failed check as transformers words it: the class, the field, Python's exception type and its message. */
export const fail = (className: string, field: string, pythonType: string, message: string): ConfigResult =>
  E.left(invalidHfConfig(className, field, pythonType, message));

/** The default instance's to_dict, built once (to_diff_dict's reference). */
export const lazyDefaults = (make: () => ConfigResult): (() => PyJsonObject) => {
  let memo: PyJsonObject | undefined;
  return () => {
    if (memo === undefined) {
      const r = make();
      if (E.isLeft(r)) throw new Error(`default config is invalid: ${r.left.message}`);
      memo = r.right.dict;
    }
    return memo;
  };
};
