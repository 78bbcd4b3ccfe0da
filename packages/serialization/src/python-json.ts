import * as E from "fp-ts/lib/Either.js";

// ----- model -----
// Python's json module tells ints from floats ("2" vs "2.0") and writes floats with repr(); JS numbers cannot
// tell them apart, so config.json values that must survive a read/write round trip byte for byte keep a marker.

/** A Python float (written with repr(): 2.0, 1e-05, 1e+16, NaN, Infinity). */
export class PyFloat {
  readonly value: number;
  constructor(value: number) {
    this.value = value;
  }
}

/**
 * A JSON value as Python's json module sees it: integers are numbers (bigint beyond 2^53), floats are PyFloat or
 * non-integral numbers, objects keep insertion order.
 */
export type PyJson = null | boolean | number | bigint | string | PyFloat | ReadonlyArray<PyJson> | PyJsonObject;
export interface PyJsonObject {
  readonly [key: string]: PyJson;
}

export interface PyDumpOptions {
  /** json.dump(indent=...): null = compact with ", " and ": " separators. */
  readonly indent?: number | null;
  readonly sortKeys?: boolean;
  readonly ensureAscii?: boolean;
}

// ----- parsing -----

const LITERALS: ReadonlyArray<readonly [string, PyJson]> = [
  ["true", true],
  ["false", false],
  ["null", null],
  ["NaN", new PyFloat(Number.NaN)],
  ["Infinity", new PyFloat(Number.POSITIVE_INFINITY)],
  ["-Infinity", new PyFloat(Number.NEGATIVE_INFINITY)],
];

/** json.loads with int/float kept apart (NaN, Infinity and -Infinity accepted as Python does). */
export const parsePythonJson = (text: string): E.Either<string, PyJson> => {
  let i = 0;
  const err = (msg: string): never => {
    throw new SyntaxError(`${msg} at offset ${i}`);
  };
  const ws = () => {
    while (i < text.length) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) i++;
      else break;
    }
  };
  const value = (): PyJson => {
    ws();
    const c = text[i];
    if (c === "{") {
      i++;
      const o: Record<string, PyJson> = Object.create(null) as Record<string, PyJson>;
      ws();
      if (text[i] === "}") {
        i++;
        return o;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') err("expected a string key");
        const k = str();
        ws();
        if (text[i] !== ":") err("expected ':'");
        i++;
        o[k] = value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "}") {
          i++;
          return o;
        }
        err("expected ',' or '}'");
      }
    }
    if (c === "[") {
      i++;
      const a: PyJson[] = [];
      ws();
      if (text[i] === "]") {
        i++;
        return a;
      }
      for (;;) {
        a.push(value());
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === "]") {
          i++;
          return a;
        }
        err("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    for (const [word, v] of LITERALS) {
      if (text.startsWith(word, i)) {
        i += word.length;
        return v instanceof PyFloat ? new PyFloat(v.value) : v;
      }
    }
    const m = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(text.slice(i, i + 400));
    if (m === null) return err("unexpected character");
    i += m[0].length;
    if (m[1] === undefined && m[2] === undefined) {
      const n = Number(m[0]);
      return Number.isSafeInteger(n) ? n : BigInt(m[0]);
    }
    return new PyFloat(Number(m[0]));
  };
  const str = (): string => {
    const start = i;
    i++;
    for (; i < text.length; i++) {
      const d = text.charCodeAt(i);
      if (d === 0x5c) i++;
      else if (d === 0x22) break;
    }
    if (i >= text.length) err("unterminated string");
    i++;
    return JSON.parse(text.slice(start, i)) as string;
  };
  try {
    const v = value();
    ws();
    if (i !== text.length) err("extra data");
    return E.right(v);
  } catch (e) {
    return E.left(e instanceof Error ? e.message : String(e));
  }
};

/** Drops the float markers (PyFloat → number, bigint → number) for decoders that take plain JSON values. */
export const toPlainJson = (v: PyJson): unknown => {
  if (v instanceof PyFloat) return v.value;
  if (typeof v === "bigint") return Number(v);
  if (Array.isArray(v)) return v.map(toPlainJson);
  if (v !== null && typeof v === "object") {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v as PyJsonObject)) Object.defineProperty(o, k, { value: toPlainJson(x), enumerable: true, writable: true, configurable: true });
    return o;
  }
  return v;
};

// ----- writing -----

/** Python's repr(float) (the shortest round-trip digits, exponent form when the exponent is < -4 or ≥ 16). */
export const pyFloatRepr = (x: number): string => {
  if (Number.isNaN(x)) return "NaN";
  if (x === Number.POSITIVE_INFINITY) return "Infinity";
  if (x === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (x === 0) return Object.is(x, -0) ? "-0.0" : "0.0";
  const sign = x < 0 ? "-" : "";
  const [mant, expStr] = Math.abs(x).toExponential().split("e") as [string, string];
  const digits = mant.replace(".", "");
  const exp = Number(expStr);
  const decpt = exp + 1;
  if (decpt <= -4 || decpt > 16) {
    const e = Math.abs(exp).toString().padStart(2, "0");
    return `${sign}${digits[0]}${digits.length > 1 ? `.${digits.slice(1)}` : ""}e${exp < 0 ? "-" : "+"}${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return `${sign}${digits}${"0".repeat(decpt - digits.length)}.0`;
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
};

const hex4 = (c: number): string => `\\u${c.toString(16).padStart(4, "0")}`;

/** json's string encoder: ensure_ascii escapes everything outside space..'~' as \uXXXX (surrogate pairs split). */
export const pyJsonString = (s: string, ensureAscii = true): string => {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += "\\\\";
    else if (c === 0x0a) out += "\\n";
    else if (c === 0x0d) out += "\\r";
    else if (c === 0x09) out += "\\t";
    else if (c === 0x08) out += "\\b";
    else if (c === 0x0c) out += "\\f";
    else if (c < 0x20 || (ensureAscii && c > 0x7e)) out += hex4(c);
    else out += s[i];
  }
  return `${out}"`;
};

/** Python's default str sort (code point order; JS `<` compares UTF-16 units, which differs above U+FFFF). */
const comparePyStr = (a: string, b: string): number => {
  const ia = a[Symbol.iterator]();
  const ib = b[Symbol.iterator]();
  for (;;) {
    const x = ia.next();
    const y = ib.next();
    if (x.done) return y.done ? 0 : -1;
    if (y.done) return 1;
    const d = x.value.codePointAt(0)! - y.value.codePointAt(0)!;
    if (d !== 0) return d;
  }
};

/** json.dumps(value, indent=…, sort_keys=…, ensure_ascii=…) byte for byte. */
export const dumpPythonJson = (v: PyJson, opts: PyDumpOptions = {}): string => {
  const indent = opts.indent ?? null;
  const sortKeys = opts.sortKeys ?? false;
  const ascii = opts.ensureAscii ?? true;
  const enc = (x: PyJson, level: number): string => {
    if (x === null) return "null";
    if (x === true) return "true";
    if (x === false) return "false";
    if (typeof x === "string") return pyJsonString(x, ascii);
    if (typeof x === "bigint") return x.toString();
    if (typeof x === "number") {
      if (Number.isInteger(x)) return Number.isSafeInteger(x) ? String(x) : BigInt(x).toString();
      return pyFloatRepr(x);
    }
    if (x instanceof PyFloat) return pyFloatRepr(x.value);
    const nl = indent === null ? "" : `\n${" ".repeat(indent * (level + 1))}`;
    const close = indent === null ? "" : `\n${" ".repeat(indent * level)}`;
    const sep = indent === null ? ", " : ",";
    if (Array.isArray(x)) {
      if (x.length === 0) return "[]";
      return `[${nl}${x.map((e) => enc(e, level + 1)).join(sep + nl)}${close}]`;
    }
    const entries = Object.entries(x as PyJsonObject);
    if (entries.length === 0) return "{}";
    if (sortKeys) entries.sort((a, b) => comparePyStr(a[0], b[0]));
    return `{${nl}${entries.map(([k, e]) => `${pyJsonString(k, ascii)}: ${enc(e, level + 1)}`).join(sep + nl)}${close}}`;
  };
  return enc(v, 0);
};
