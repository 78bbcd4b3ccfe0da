import type { ModelInfo, ModifierError } from "@llmq/observers";
import { modifierError } from "@llmq/observers";
import { formatSchemeError, matchesTarget } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";

// SmoothQuant and AWQ mappings ("smooth layer → balance layers", regexes or names as llm-compressor writes them)
// resolved against the model, one set per decoder layer as compressed-tensors' `match_modules_set` groups them by
// their common parent. llmq is stricter than LC in one way: a mapping that matches nothing in the model is an error
// listing the candidates (LC skips it silently, and the recipe then smooths nothing).

// ----- model -----

/** A mapping as the recipe gives it: one smooth-layer target, several balance-layer targets. */
export interface MappingSpec {
  readonly smooth: string;
  readonly balance: ReadonlyArray<string>;
}

/** One mapping in one decoder layer, by local module names ("input_layernorm" → ["self_attn.q_proj", …]). */
export interface ResolvedMapping {
  readonly layer: number;
  readonly smooth: string;
  readonly balance: ReadonlyArray<string>;
}

// ----- resolution -----

interface LayerModule {
  readonly local: string;
  readonly classes: ReadonlyArray<string>;
}

/** The modules of decoder layer 0 a mapping may name: its norms and its linears (every layer has the same). */
const layerModules = (model: ModelInfo, layer: number): ReadonlyArray<LayerModule> => [
  ...model.architecture.layerNorms.map((local) => ({ local, classes: ["LlamaRMSNorm", "RMSNorm"] })),
  ...model.linears.filter((m) => m.layer === layer).map((m) => ({ local: m.name.slice(model.architecture.layerPrefix(layer).length), classes: [m.className, "Linear"] })),
];

const matching = (type: string, prefix: string, modules: ReadonlyArray<LayerModule>, target: string): E.Either<ModifierError, ReadonlyArray<string>> => {
  const out: string[] = [];
  for (const m of modules) {
    const hit = matchesTarget(prefix + m.local, m.classes, target);
    if (E.isLeft(hit)) return E.left(modifierError(type, null, `mapping target ${target}: ${formatSchemeError(hit.left)}`, hit.left));
    if (hit.right) out.push(m.local);
  }
  return E.right(out);
};

const candidates = (modules: ReadonlyArray<LayerModule>): string => modules.map((m) => m.local).join(", ");

/** One mapping in one layer: null when nothing of it is in this layer (a partial match is an error, as in LC). */
const resolveInLayer = (type: string, model: ModelInfo, spec: MappingSpec, layer: number): E.Either<ModifierError, ResolvedMapping | null> => {
  const prefix = model.architecture.layerPrefix(layer);
  const modules = layerModules(model, layer);
  const smooth = matching(type, prefix, modules, spec.smooth);
  if (E.isLeft(smooth)) return smooth;
  const balance: string[] = [];
  const missing: string[] = [];
  for (const t of spec.balance) {
    const b = matching(type, prefix, modules, t);
    if (E.isLeft(b)) return b;
    if (b.right.length === 0) missing.push(t);
    balance.push(...b.right.filter((x) => !balance.includes(x)));
  }
  if (smooth.right.length === 0 && balance.length === 0) return E.right(null);
  if (smooth.right.length > 1)
    return E.left(modifierError(type, null, `a mapping needs one smooth layer per decoder layer, but ${spec.smooth} matches ${smooth.right.map((s) => prefix + s).join(", ")}`));
  if (smooth.right.length === 0 || missing.length > 0)
    return E.left(
      modifierError(
        type,
        null,
        `mapping ${spec.smooth} → [${spec.balance.join(", ")}] matches only part of ${prefix.slice(0, -1)}: nothing for ${[...(smooth.right.length === 0 ? [spec.smooth] : []), ...missing].join(", ")} (modules of a layer: ${candidates(modules)})`,
      ),
    );
  return E.right({ layer, smooth: smooth.right[0]!, balance });
};

/**
 * Every mapping in every decoder layer, in recipe order per layer (the order LC smooths them in at a layer's
 * sequential epoch end). A mapping that matches no module anywhere is an error naming the candidates.
 */
export const resolveMappings = (type: string, model: ModelInfo, specs: ReadonlyArray<MappingSpec>): E.Either<ModifierError, ReadonlyArray<ResolvedMapping>> => {
  const out: ResolvedMapping[] = [];
  for (const spec of specs) {
    let found = 0;
    for (let layer = 0; layer < model.numLayers; layer++) {
      const r = resolveInLayer(type, model, spec, layer);
      if (E.isLeft(r)) return r;
      if (r.right !== null) {
        out.push(r.right);
        found++;
      }
    }
    if (found === 0 && model.numLayers > 0)
      return E.left(
        modifierError(
          type,
          null,
          `mapping ${spec.smooth} → [${spec.balance.join(", ")}] matches no module of the model (modules of each decoder layer: ${candidates(layerModules(model, 0))}, under ${model.architecture.layerPrefix(0)})`,
        ),
      );
  }
  return E.right(out.sort((a, b) => a.layer - b.layer));
};

/** The mappings of one layer, in recipe order. */
export const mappingsOfLayer = (mappings: ReadonlyArray<ResolvedMapping>, layer: number): ReadonlyArray<ResolvedMapping> => mappings.filter((m) => m.layer === layer);

/**
 * compressed-tensors' `get_lowest_common_ancestor_name` on local names: the common dotted prefix of the balance
 * layers ("self_attn" for q/k/v, the module itself for a single one, "" for the whole layer).
 */
export const lowestCommonAncestor = (names: ReadonlyArray<string>): string => {
  if (names.length === 0) return "";
  const sorted = [...names].sort();
  const s1 = `.${sorted[0]!}.`;
  const s2 = `.${sorted[sorted.length - 1]!}.`;
  let i = 0;
  while (i < s1.length && i < s2.length && s1[i] === s2[i]) i++;
  const common = s1.slice(0, i);
  return common.slice(1, common.lastIndexOf("."));
};
