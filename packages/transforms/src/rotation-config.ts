import {
  type QuIPModifierConfig,
  type SpinQuantModifierConfig,
  type TransformArgs,
  type TransformConfig,
  type TransformLocation,
  type TransformScheme,
  canonicalTorchDType,
  decodeTransformConfig,
  formatSchemeError,
} from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";

// The TransformConfig llm-compressor 0.14's SpinQuantModifier / QuIPModifier build at on_initialize
// (modifiers/transform/{spinquant,quip}/base.py), from their fields and the default Llama mappings.

/** SpinQuantMapping for LlamaForCausalLM (LC's _default_mappings; also its fallback for other architectures). */
export const SPINQUANT_LLAMA_MAPPING = {
  embedding: "re:.*embed_tokens$",
  attn: "re:.*self_attn$",
  attn_q: "re:.*q_proj$",
  attn_k: "re:.*k_proj$",
  attn_v: "re:.*v_proj$",
  attn_o: "re:.*o_proj$",
  mlp_in: ["re:.*up_proj$", "re:.*gate_proj$"],
  mlp_out: ["re:.*down_proj$"],
  lm_head: "lm_head",
} as const;

const args = (targets: ReadonlyArray<string>, location: TransformLocation, inverse = false, ignore: ReadonlyArray<string> = []): TransformArgs => ({
  targets: [...targets],
  location,
  inverse,
  ignore: [...ignore],
});

const precisionOf = (type: string, p: string): E.Either<string, string> => {
  const c = canonicalTorchDType(p);
  return c === undefined ? E.left(`${type}.precision: no such torch dtype \`${p}\``) : E.right(c);
};

/** A recipe's own transform_config replaces the generated one (LC: on_initialize returns early). */
const given = (type: string, u: Readonly<Record<string, unknown>> | null): E.Either<string, TransformConfig> | null =>
  u === null ? null : E.mapLeft((e: Parameters<typeof formatSchemeError>[0]) => `${type}.transform_config: ${formatSchemeError(e)}`)(decodeTransformConfig(u));

export const spinQuantTransformConfig = (c: SpinQuantModifierConfig, headDim: number): E.Either<string, TransformConfig> => {
  const own = given(c.type, c.transform_config);
  if (own !== null) return own;
  const precision = precisionOf(c.type, c.precision);
  if (E.isLeft(precision)) return precision;
  const m = SPINQUANT_LLAMA_MAPPING;
  const scheme = (head_dim: number | null, apply: ReadonlyArray<TransformArgs>): TransformScheme => ({
    type: c.transform_type,
    apply,
    randomize: c.randomize,
    requires_grad: c.learnable,
    head_dim,
    precision: precision.right,
  });
  const groups: Record<string, TransformScheme> = {};
  const has = (r: string): boolean => c.rotations.includes(r as "R1");
  if (has("R1"))
    groups.R1 = scheme(c.transform_block_size, [
      args([m.embedding, m.attn_o, ...m.mlp_out], "weight_output"),
      args([m.attn_q, m.attn_k, m.attn_v, ...m.mlp_in, m.lm_head], "weight_input", true),
    ]);
  if (has("R2")) groups.R2 = scheme(headDim, [args([m.attn_v], "weight_output"), args([m.attn_o], "weight_input", true)]);
  if (has("R3")) groups.R3 = scheme(headDim, [args([m.attn], "q_attn"), args([m.attn], "k_cache")]);
  if (has("R4")) groups.R4 = scheme(c.transform_block_size, [args(m.mlp_out, "input"), args(m.mlp_out, "weight_input", true)]);
  return E.right({ config_groups: groups });
};

export const quipTransformConfig = (c: QuIPModifierConfig): E.Either<string, TransformConfig> => {
  const own = given(c.type, c.transform_config);
  if (own !== null) return own;
  const precision = precisionOf(c.type, c.precision);
  if (E.isLeft(precision)) return precision;
  const scheme = (apply: ReadonlyArray<TransformArgs>): TransformScheme => ({
    type: c.transform_type,
    apply,
    randomize: c.randomize,
    requires_grad: c.learnable,
    head_dim: c.transform_block_size,
    precision: precision.right,
  });
  const groups: Record<string, TransformScheme> = {};
  if (c.rotations.includes("v")) groups.v = scheme([args(c.targets, "input", false, c.ignore), args(c.targets, "weight_input", true, c.ignore)]);
  if (c.rotations.includes("u")) groups.u = scheme([args(c.targets, "weight_output", false, c.ignore), args(c.targets, "output", true, c.ignore)]);
  return E.right({ config_groups: groups });
};
