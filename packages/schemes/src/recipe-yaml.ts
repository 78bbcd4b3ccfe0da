import { Document, isMap, isScalar, isSeq, visit } from "yaml";
import { encodeQuantizationArgs, encodeQuantizationScheme } from "./encode-quantization.js";
import type { QuantizationArgs, QuantizationScheme } from "./quantization-args.js";
import type { Recipe, RecipeModifier } from "./recipe.js";
import { MODIFIER_FIELDS } from "./recipe-modifiers.js";

// ----- encoding -----

const encodeValue = (name: string, v: unknown): unknown => {
  if (name === "config_groups" && v !== null)
    return Object.fromEntries(Object.entries(v as Record<string, QuantizationScheme>).map(([k, s]) => [k, encodeQuantizationScheme(s)]));
  if (name === "kv_cache_scheme" && v !== null) return encodeQuantizationArgs(v as QuantizationArgs);
  if (Array.isArray(v)) return v.map((x) => encodeValue("", x));
  if (v !== null && typeof v === "object") return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, encodeValue("", x)]));
  return v;
};

/**
 * The arguments LC writes for a modifier (`get_yaml_serializable_dict`): every non-null public field in LC's field
 * order, without `group` (it becomes the `<group>_modifiers` key).
 */
export const encodeModifierArgs = (m: RecipeModifier): Record<string, unknown> => {
  const out: Record<string, unknown> = {};
  const rec = m as unknown as Record<string, unknown>;
  for (const f of MODIFIER_FIELDS[m.type]) {
    if (f.name === "group") continue;
    const v = rec[f.name];
    if (v === null || v === undefined) continue;
    out[f.name] = encodeValue(f.name, v);
  }
  return out;
};

/** The recipe as a plain object: `<stage>_stage` → `<group>_modifiers` → `ModifierName` → args. */
export const encodeRecipe = (r: Recipe): Record<string, Record<string, Record<string, Record<string, unknown>>>> => {
  const out: Record<string, Record<string, Record<string, Record<string, unknown>>>> = {};
  for (const m of r.modifiers) {
    // Each modifier stays in its own stage (LC writes every modifier under the last stage's name, which can merge
    // two same-named modifiers of different stages into one key).
    const stageKey = `${m.stage}_stage`;
    const groupKey = `${m.group ?? m.stage}_modifiers`;
    const stage = out[stageKey] ?? {};
    out[stageKey] = stage;
    const group = stage[groupKey] ?? {};
    stage[groupKey] = group;
    group[m.type] = encodeModifierArgs(m);
  }
  return out;
};

/**
 * The recipe.yaml llm-compressor saves next to a checkpoint: block mappings, and collections that hold only scalars
 * in flow style (PyYAML `default_flow_style=None`), keys in insertion order.
 */
export const encodeRecipeYaml = (r: Recipe): string => {
  const doc = new Document(encodeRecipe(r));
  visit(doc, {
    Collection(_, node) {
      if (isSeq(node) || isMap(node)) {
        const items = isSeq(node) ? node.items : node.items.map((p) => p.value);
        if (items.length > 0 && items.every((x) => isScalar(x))) node.flow = true;
      }
    },
  });
  return doc.toString({ lineWidth: 88, flowCollectionPadding: false });
};
