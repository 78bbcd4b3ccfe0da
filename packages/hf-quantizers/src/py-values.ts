// Python's view of config values read as PyJson (ints and floats kept apart): isinstance checks, truthiness,
// equality and repr, as transformers' config classes apply them.
import { PyFloat, type PyJson, type PyJsonObject, pyFloatRepr } from "@llmq/serialization";

/** isinstance(v, int) — bool is an int in Python. */
export const isPyInt = (v: PyJson | undefined): boolean => typeof v === "boolean" || typeof v === "bigint" || (typeof v === "number" && Number.isInteger(v));
/** isinstance(v, float). */
export const isPyFloat = (v: PyJson | undefined): boolean => v instanceof PyFloat || (typeof v === "number" && !Number.isInteger(v));
export const isPyNumber = (v: PyJson | undefined): boolean => isPyInt(v) || isPyFloat(v);
export const isPyDict = (v: PyJson | undefined): v is PyJsonObject => typeof v === "object" && v !== null && !Array.isArray(v) && !(v instanceof PyFloat);
export const isPyList = (v: PyJson | undefined): v is ReadonlyArray<PyJson> => Array.isArray(v);
/** A list as the str() of each element (a skip-module list), or null for anything else (the quantizer's default). */
export const pyStrings = (v: PyJson | undefined): ReadonlyArray<string> | null => (Array.isArray(v) ? v.map(String) : null);

/** The number behind an int, float or bool (NaN for anything else). */
export const pyNumber = (v: PyJson | undefined): number =>
  v instanceof PyFloat ? v.value : typeof v === "number" ? v : typeof v === "bigint" ? Number(v) : typeof v === "boolean" ? Number(v) : Number.NaN;

/** bool(v). */
export const pyTruthy = (v: PyJson | undefined): boolean => {
  if (v === null || v === undefined || v === false) return false;
  if (isPyNumber(v)) return pyNumber(v) !== 0;
  if (typeof v === "string" || Array.isArray(v)) return v.length > 0;
  return Object.keys(v as PyJsonObject).length > 0;
};

/** a == b (1 == 1.0 == True; dicts by keys, lists in order). */
export const pyEqual = (a: PyJson | undefined, b: PyJson | undefined): boolean => {
  if (isPyNumber(a) && isPyNumber(b)) return pyNumber(a) === pyNumber(b);
  if (isPyList(a) && isPyList(b)) return a.length === b.length && a.every((x, i) => pyEqual(x, b[i]));
  if (isPyDict(a) && isPyDict(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && pyEqual(a[k], b[k]));
  }
  return a === b;
};

/** `v in values`. */
export const pyIn = (v: PyJson | undefined, values: ReadonlyArray<PyJson>): boolean => values.some((x) => pyEqual(v, x));

const pyStrRepr = (s: string): string => (s.includes("'") && !s.includes('"') ? `"${s}"` : `'${s.replaceAll("\\", "\\\\").replaceAll("'", "\\'")}'`);

/** repr(v) as Python prints it inside a message ("['int8', None]", "{'a': 1}", "2.0"). */
export const pyRepr = (v: PyJson | undefined): string => {
  if (v === null || v === undefined) return "None";
  if (v === true) return "True";
  if (v === false) return "False";
  if (typeof v === "string") return pyStrRepr(v);
  if (isPyFloat(v)) return pyFloatRepr(pyNumber(v)).replace("Infinity", "inf").replace("NaN", "nan");
  if (typeof v === "number" || typeof v === "bigint") return String(v);
  if (isPyList(v)) return `[${v.map(pyRepr).join(", ")}]`;
  return `{${Object.entries(v as PyJsonObject)
    .map(([k, x]) => `${pyStrRepr(k)}: ${pyRepr(x)}`)
    .join(", ")}}`;
};

/** str(v) — a string prints bare, everything else as repr. */
export const pyStr = (v: PyJson | undefined): string => (typeof v === "string" ? v : pyRepr(v));
