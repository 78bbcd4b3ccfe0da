import {
  type EpochEnd,
  type LayerState,
  type ModelInfo,
  type Modifier,
  type ModifierError,
  type OnlineTransform,
  type RotationInfo,
  modifierError,
  withTensors,
} from "@llmq/observers";
import type { QuIPModifierConfig, SpinQuantModifierConfig, TransformConfig } from "@llmq/schemes";
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { quipTransformConfig, spinQuantTransformConfig } from "./rotation-config.js";
import { applyStep, centerRows, fuseNormInto, onesLike } from "./rotation-edits.js";
import { type RotationPlan, planRotations } from "./rotation-plan.js";

// llm-compressor's SpinQuantModifier and QuIPModifier as llmq modifiers. LC applies the whole transform config at
// calibration start; every fused step edits one module's weight, so llmq applies them layer by layer as each layer is
// loaded (before any calibrated modifier sees it), and the embedding before the calibration windows are embedded:
// the same weights, one layer in memory. SpinQuant first unties the embeddings, centres the embedding rows and fuses
// every RMSNorm weight into the linears it feeds (norm ← ones); QuIP only unties when it targets the embedding or head.

// ----- model -----

export interface RotationState {
  readonly type: string;
  readonly plan: RotationPlan;
  readonly info: RotationInfo;
  readonly surgery: boolean;
  /** Untie: the head gets the embedding as it was before any edit. */
  readonly untie: boolean;
  readonly originalEmbedding: Tensor | null;
  readonly normMappings: ModelInfo["architecture"]["normMappings"];
}

// ----- edits -----

type Edit = E.Either<ModifierError, LayerState>;

const fuseNorms = (s: RotationState, layer: LayerState): Edit => {
  const pairs =
    layer.prefix === ""
      ? [{ norm: s.info.finalNorm, linears: [s.info.head] }]
      : s.normMappings.map((m) => ({ norm: `${m.norm}.weight`, linears: m.linears }));
  const edits: Array<readonly [string, Tensor]> = [];
  for (const { norm, linears } of pairs) {
    const g = layer.tensors.get(norm);
    if (g === undefined) return E.left(modifierError(s.type, layer.prefix + norm, "the norm to fuse is missing"));
    for (const l of linears) {
      const w = layer.tensors.get(`${l}.weight`);
      if (w === undefined) return E.left(modifierError(s.type, layer.prefix + l, "the linear to fuse the norm into is missing"));
      edits.push([`${l}.weight`, fuseNormInto(w, g)]);
    }
    edits.push([norm, onesLike(g)]);
  }
  return E.right(withTensors(layer, edits));
};

/** The fused steps of the modules in this layer (or the head), in plan order. */
const applySteps = (s: RotationState, layer: LayerState): Edit => {
  let tensors = new Map(layer.tensors);
  for (const step of s.plan.offline) {
    if (!step.module.name.startsWith(layer.prefix) || !layer.modules.has(step.module.name.slice(layer.prefix.length))) continue;
    const local = step.module.name.slice(layer.prefix.length);
    const w = tensors.get(`${local}.weight`);
    if (w === undefined) return E.left(modifierError(s.type, step.module.name, "its weight is missing"));
    const r = applyStep(step, w, tensors.get(`${local}.bias`));
    if (E.isLeft(r)) return E.left(modifierError(s.type, step.module.name, r.left));
    tensors = new Map(tensors).set(`${local}.weight`, r.right.weight);
    if (r.right.bias !== undefined) tensors.set(`${local}.bias`, r.right.bias);
  }
  return E.right({ ...layer, tensors });
};

/** Online transforms of the layer's linears and the weights saved under them (CT's `<scheme>_<location>` submodules). */
const attachOnline = (s: RotationState, layer: LayerState): LayerState => {
  const online = new Map<string, ReadonlyArray<OnlineTransform>>(layer.online ?? []);
  const saved: Array<readonly [string, Tensor]> = [];
  // the layer's linears, and its attention module (R3's q_attn / k_cache transforms)
  const inLayer = [...s.plan.online.keys(), ...s.plan.saved.keys()].filter((n) => layer.prefix !== "" && n.startsWith(layer.prefix));
  const locals = [...new Set([...layer.modules.keys(), ...inLayer.map((n) => n.slice(layer.prefix.length))])];
  for (const local of locals) {
    const name = layer.prefix + local;
    const t = s.plan.online.get(name);
    if (t !== undefined) online.set(local, [...(online.get(local) ?? []), ...t]);
    for (const w of s.plan.saved.get(name) ?? [])
      saved.push([w.tensor.slice(layer.prefix.length), w.data instanceof Float64Array ? new Tensor("f64", [w.n, w.n], w.data) : new Tensor("f32", [w.n, w.n], w.data)]);
  }
  return { ...withTensors(layer, saved), ...(online.size > 0 ? { online } : {}) };
};

const untieHead = (s: RotationState, layer: LayerState): LayerState =>
  layer.prefix === "" && s.originalEmbedding !== null && !layer.tensors.has(`${s.info.head}.weight`)
    ? withTensors(layer, [[`${s.info.head}.weight`, s.originalEmbedding]])
    : layer;

const editLayer = (s: RotationState, layer: LayerState): Edit => {
  const untied = untieHead(s, layer);
  const fused = s.surgery ? fuseNorms(s, untied) : E.right(untied);
  return E.map((l: LayerState) => attachOnline(s, l))(E.flatMap(fused, (l) => applySteps(s, l)));
};

const editEmbedding = (s: RotationState, globals: ReadonlyMap<string, Tensor>): E.Either<ModifierError, { readonly state: RotationState; readonly edits: ReadonlyArray<readonly [string, Tensor]> }> => {
  const name = `${s.info.embedding}.weight`;
  const emb = globals.get(name);
  if (emb === undefined) return E.left(modifierError(s.type, s.info.embedding, "the embedding is missing"));
  let w = s.surgery ? centerRows(emb) : emb;
  for (const step of s.plan.offline) {
    if (step.module.name !== s.info.embedding) continue;
    const r = applyStep(step, w, undefined);
    if (E.isLeft(r)) return E.left(modifierError(s.type, s.info.embedding, r.left));
    w = r.right.weight;
  }
  const state = { ...s, originalEmbedding: s.untie && s.info.tiedEmbeddings ? emb : null };
  return E.right({ state, edits: w === emb ? [] : [[name, w]] });
};

// ----- constructors -----

const rotationModifier = (
  type: string,
  surgery: boolean,
  configOf: (model: ModelInfo) => E.Either<string, TransformConfig>,
  untieWhen: (plan: RotationPlan, info: RotationInfo) => boolean,
): Modifier<RotationState, never> => ({
  type,
  requiresCalibrationData: false,
  initialize: (model) => {
    const info = model.rotation;
    if (info === undefined) return E.left(modifierError(type, null, "this model gives no rotation geometry; only Llama-family models can be rotated"));
    const plan = E.flatMap(configOf(model), (c) => planRotations(c, model));
    if (E.isLeft(plan)) return E.left(modifierError(type, null, plan.left));
    return E.right({ type, plan: plan.right, info, surgery, untie: untieWhen(plan.right, info), originalEmbedding: null, normMappings: model.architecture.normMappings });
  },
  editGlobals: editEmbedding,
  onSequentialEpochEnd: (state, layer): E.Either<ModifierError, EpochEnd<RotationState>> => E.map((l: LayerState) => ({ state, layer: l, warnings: [] }))(editLayer(state, layer)),
  checkpointConfig: (state) => ({ config: state.untie && state.info.tiedEmbeddings ? { tie_word_embeddings: false } : {}, transformConfig: state.plan.config }),
});

/** LC's targets_embeddings: whether a transform touches the embedding or the head. */
const touchesEmbeddings = (plan: RotationPlan, info: RotationInfo): boolean =>
  [...plan.offline.map((s) => s.module.name), ...plan.online.keys()].some((n) => n === info.embedding || n === info.head);

/** SpinQuantModifier (R1, R2, R4; R3 is refused until llmq's attention takes query / key transforms). */
export const SpinQuantModifier = (c: SpinQuantModifierConfig): Modifier<RotationState, never> =>
  rotationModifier(
    c.type,
    true,
    (model) => (model.attention === undefined ? E.left("the model gives no attention head width (R2 / R3 rotate per head)") : spinQuantTransformConfig(c, model.attention.headDim)),
    () => true,
  );

/** QuIPModifier (v: online input + fused inverse; u: fused output + online inverse output). */
export const QuIPModifier = (c: QuIPModifierConfig): Modifier<RotationState, never> => rotationModifier(c.type, false, () => quipTransformConfig(c), touchesEmbeddings);
