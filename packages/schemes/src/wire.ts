import * as E from "fp-ts/lib/Either.js";
import { type SchemeError, invalidField, unknownField } from "./errors.js";

// Small pydantic-v2-lax-mode readers shared by the decoders (not exported from the package).

export const join = (path: string, key: string): string => (path === "" ? key : `${path}.${key}`);

export const isPlainObject = (u: unknown): u is Record<string, unknown> =>
  typeof u === "object" && u !== null && !Array.isArray(u) && !(u instanceof Map);

export const has = (o: Record<string, unknown>, k: string): boolean => Object.hasOwn(o, k);

/** pydantic `extra="forbid"`: the first key that is not a field. */
export const checkNoExtra = (o: Record<string, unknown>, fields: ReadonlyArray<string>, path: string): E.Either<SchemeError, void> => {
  for (const k of Object.keys(o)) if (!fields.includes(k)) return E.left(unknownField(join(path, k), fields));
  return E.right(undefined);
};

const INT_STR = /^\s*[+-]?\d+\s*$/;

/** pydantic lax int: integral numbers, integer strings and booleans (true → 1). */
export const readInt = (u: unknown, path: string): E.Either<SchemeError, number> => {
  if (typeof u === "number" && Number.isSafeInteger(u)) return E.right(u);
  if (typeof u === "boolean") return E.right(u ? 1 : 0);
  if (typeof u === "string" && INT_STR.test(u)) return E.right(Number.parseInt(u, 10));
  return E.left(invalidField(path, "an integer", u));
};

const TRUE_STR = ["1", "on", "t", "true", "y", "yes"];
const FALSE_STR = ["0", "off", "f", "false", "n", "no"];

/** pydantic lax bool: booleans, 0/1 and the usual strings. */
export const readBool = (u: unknown, path: string): E.Either<SchemeError, boolean> => {
  if (typeof u === "boolean") return E.right(u);
  if (u === 0 || u === 1) return E.right(u === 1);
  if (typeof u === "string") {
    const s = u.trim().toLowerCase();
    if (TRUE_STR.includes(s)) return E.right(true);
    if (FALSE_STR.includes(s)) return E.right(false);
  }
  return E.left(invalidField(path, "a boolean (true or false)", u));
};

export const readString = (u: unknown, path: string): E.Either<SchemeError, string> =>
  typeof u === "string" ? E.right(u) : E.left(invalidField(path, "a string", u));

export const readStringList = (u: unknown, path: string): E.Either<SchemeError, ReadonlyArray<string>> => {
  if (!Array.isArray(u)) return E.left(invalidField(path, "a list of strings", u));
  for (let i = 0; i < u.length; i++) if (typeof u[i] !== "string") return E.left(invalidField(`${path}[${i}]`, "a string", u[i]));
  return E.right([...(u as string[])]);
};

/** A case-insensitive enum (compressed-tensors lower-cases `type`, `strategy`, `dynamic` before validating). */
export const readEnumLower = <T extends string>(u: unknown, allowed: ReadonlyArray<T>, path: string): E.Either<SchemeError, T> => {
  const exp = `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`;
  if (typeof u !== "string") return E.left(invalidField(path, exp, u));
  const l = u.toLowerCase() as T;
  return allowed.includes(l) ? E.right(l) : E.left(invalidField(path, exp, u));
};

/** A case-sensitive enum (plain pydantic Enum fields). */
export const readEnum = <T extends string>(u: unknown, allowed: ReadonlyArray<T>, path: string): E.Either<SchemeError, T> =>
  typeof u === "string" && allowed.includes(u as T)
    ? E.right(u as T)
    : E.left(invalidField(path, `one of ${allowed.map((a) => JSON.stringify(a)).join(", ")}`, u));
