import * as E from "fp-ts/lib/Either.js";
import { type SchemeError, invalidTarget } from "./errors.js";
import type { QuantizationConfig, QuantizationScheme } from "./quantization-args.js";

// Target / ignore matching as compressed-tensors 0.20.0 utils/match.py (match_name, _match_class, is_match,
// match_targets) and quantization/lifecycle/apply.py (target_to_scheme, _scheme_from_targets).

const compiled = new Map<string, E.Either<SchemeError, RegExp>>();

/**
 * Translates a Python `re` pattern into a JS RegExp with `re.match` semantics (anchored at the start only).
 * Handles named groups `(?P<n>…)` / `(?P=n)`, `\A`, `\Z` and leading global flags `(?i)`, `(?s)`, `(?m)`, `(?a)`;
 * rejects what JS cannot express (verbose mode, atomic groups, conditionals, possessive quantifiers, scoped flags).
 */
export const pythonRegex = (pattern: string): E.Either<SchemeError, RegExp> => {
  const hit = compiled.get(pattern);
  if (hit !== undefined) return hit;
  const r = translate(pattern);
  compiled.set(pattern, r);
  return r;
};

const translate = (pattern: string): E.Either<SchemeError, RegExp> => {
  const target = `re:${pattern}`;
  let p = pattern;
  let flags = "";
  const lead = /^\(\?([aiLmsux]+)\)/.exec(p);
  if (lead !== null) {
    for (const f of lead[1]!) {
      if (f === "x") return E.left(invalidTarget(target, "Python verbose mode (?x) has no JavaScript equivalent; write the pattern without it"));
      if (f === "L") return E.left(invalidTarget(target, "Python locale mode (?L) is not supported"));
      if ((f === "i" || f === "m" || f === "s") && !flags.includes(f)) flags += f;
    }
    p = p.slice(lead[0].length);
  }
  if (/\(\?[aiLmsux-]+:/.test(p)) return E.left(invalidTarget(target, "scoped inline flags (?i:…) are not supported; put global flags like (?i) at the start"));
  if (/\(\?[aiLmsux]+\)/.test(p)) return E.left(invalidTarget(target, "global inline flags must be at the start of the pattern"));
  if (p.includes("(?>")) return E.left(invalidTarget(target, "atomic groups (?>…) are not supported"));
  if (/\(\?\(/.test(p)) return E.left(invalidTarget(target, "conditional groups (?(…)…) are not supported"));
  if (/[*+?}][+]/.test(p.replace(/\\./g, ""))) return E.left(invalidTarget(target, "possessive quantifiers (*+, ++, ?+) are not supported"));
  p = p
    .replace(/\(\?P<([A-Za-z_][A-Za-z0-9_]*)>/g, "(?<$1>")
    .replace(/\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)/g, "\\k<$1>")
    .replace(/(^|[^\\])\\A/g, "$1^")
    .replace(/(^|[^\\])\\Z/g, "$1$");
  try {
    return E.right(new RegExp(`^(?:${p})`, flags));
  } catch (e) {
    return E.left(invalidTarget(target, `invalid regular expression: ${(e as Error).message}`));
  }
};

/** `match_name`: "re:<pattern>" → Python `re.match` on the module name; anything else → exact name equality. */
export const matchName = (moduleName: string, target: string): E.Either<SchemeError, boolean> =>
  target.startsWith("re:") ? E.map((re: RegExp) => re.test(moduleName))(pythonRegex(target.slice(3))) : E.right(target === moduleName);

/**
 * `_match_class`: the target names the module's class or any class of its MRO (`classNames`); vLLM's "LinearBase"
 * also matches "Linear".
 */
export const matchClass = (classNames: ReadonlyArray<string>, target: string): boolean =>
  classNames.some((c) => c === target || (c === "LinearBase" && target === "Linear"));

/** `is_match` for one target: name (exact or re:) or class. */
export const matchesTarget = (moduleName: string, classNames: ReadonlyArray<string>, target: string): E.Either<SchemeError, boolean> =>
  E.map((byName: boolean) => byName || matchClass(classNames, target))(matchName(moduleName, target));

const anyMatch = (moduleName: string, classNames: ReadonlyArray<string>, targets: ReadonlyArray<string>): E.Either<SchemeError, boolean> => {
  for (const t of targets) {
    const m = matchesTarget(moduleName, classNames, t);
    if (E.isLeft(m) || m.right) return m;
  }
  return E.right(false);
};

/** Whether the module is in the ignore list (names, "re:" patterns or class names, as `is_match`). */
export const isIgnored = (moduleName: string, classNames: ReadonlyArray<string>, ignore: ReadonlyArray<string>): E.Either<SchemeError, boolean> =>
  anyMatch(moduleName, classNames, ignore);

/**
 * `match_targets`: the targets that match, most specific first — name matches (exact names, then "re:" patterns,
 * each sorted as Python sorts `("re:" in t, t)`), then class-name matches.
 */
export const matchTargets = (moduleName: string, classNames: ReadonlyArray<string>, targets: ReadonlyArray<string>): E.Either<SchemeError, string[]> => {
  const sorted = [...targets].sort((a, b) => {
    const ra = a.includes("re:") ? 1 : 0;
    const rb = b.includes("re:") ? 1 : 0;
    return ra !== rb ? ra - rb : a < b ? -1 : a > b ? 1 : 0;
  });
  const out: string[] = [];
  for (const t of sorted) {
    const m = matchName(moduleName, t);
    if (E.isLeft(m)) return m;
    if (m.right) out.push(t);
  }
  for (const t of sorted) if (matchClass(classNames, t) && !out.includes(t)) out.push(t);
  return E.right(out);
};

export interface ResolvedScheme {
  readonly group: string;
  readonly scheme: QuantizationScheme;
}

/**
 * The config group compressed-tensors applies to a module (`apply_quantization_config`): null when no target matches
 * or the module is ignored; otherwise the scheme of the most specific matching target (exact name > regex > class).
 * A target listed by several groups belongs to the LAST of them (CT builds a dict target → scheme in group order).
 */
export const resolveSchemeForModule = (
  config: Pick<QuantizationConfig, "config_groups" | "ignore">,
  moduleName: string,
  classNames: ReadonlyArray<string>,
): E.Either<SchemeError, ResolvedScheme | null> => {
  const owner = new Map<string, ResolvedScheme>();
  for (const [group, scheme] of Object.entries(config.config_groups)) for (const t of scheme.targets) owner.set(t, { group, scheme });
  const targets = [...owner.keys()];
  const hit = anyMatch(moduleName, classNames, targets);
  if (E.isLeft(hit)) return hit;
  if (!hit.right) return E.right(null);
  const ign = isIgnored(moduleName, classNames, config.ignore);
  if (E.isLeft(ign)) return ign;
  if (ign.right) return E.right(null);
  const matched = matchTargets(moduleName, classNames, targets);
  if (E.isLeft(matched)) return matched;
  const first = matched.right[0];
  return E.right(first === undefined ? null : owner.get(first)!);
};
