import { nodeBuiltin } from "@llmq/tensor";
import type { OverlapRelation } from "./errors.js";
const { realpath } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { basename, dirname, isAbsolute, join, relative, resolve } = nodeBuiltin<typeof import("node:path")>("node:path");

// An output must never be the model it reads, an ancestor of it (--overwrite would delete the model) or a directory
// inside it. Paths are compared after resolving symbolic links, so `out -> model` or `model/../model` are caught too;
// for paths that do not exist yet, the longest existing ancestor is resolved and the rest appended.

/** The real path of `p`, or of its longest existing ancestor joined with the rest when `p` does not exist (yet). */
export const realpathLoose = async (p: string): Promise<string> => {
  const abs = resolve(p);
  const rest: string[] = [];
  let cur = abs;
  for (;;) {
    try {
      return join(await realpath(cur), ...rest);
    } catch {
      const up = dirname(cur);
      if (up === cur) return abs;
      rest.unshift(basename(cur));
      cur = up;
    }
  }
};

const within = (parent: string, child: string): boolean => {
  const r = relative(parent, child);
  return r !== "" && !r.startsWith("..") && !isAbsolute(r);
};

/** How `target` relates to `other` (both real paths), or null when neither contains the other. */
export const overlapOf = (target: string, other: string): OverlapRelation | null =>
  target === other ? "equals" : within(target, other) ? "contains" : within(other, target) ? "inside" : null;

/** The first protected path that `target` equals, contains or lies inside, after resolving links; null if none. */
export const findOverlap = async (
  target: string,
  protectedPaths: ReadonlyArray<string>,
): Promise<{ readonly other: string; readonly relation: OverlapRelation } | null> => {
  const t = await realpathLoose(target);
  for (const p of protectedPaths) {
    const relation = overlapOf(t, await realpathLoose(p));
    if (relation !== null) return { other: p, relation };
  }
  return null;
};
