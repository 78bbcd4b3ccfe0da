import { type Calibration, type LayerState, type Modifier, type Tap, modifierError, reducer, withTensors } from "@llmq/observers";
import { type Tensor, f32, matmul, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type ChannelRange, emptyChannelRange, foldChannelRange, msModelSlimKvQParams } from "./ms-model-slim-kv.js";

// msModelSlim's KV-cache int8 (C8, QuantConfig.kv_quant(kv_sym)) as a modifier: the k and v projections' outputs
// (x · Wᵀ on the layer's calibration inputs, the float weights, before RoPE) folded into per-output-channel ranges,
// and at the layer's epoch end one scale and offset per KV channel (msModelSlimKvQParams) stored beside the weights as
// `<k_proj>.kv_cache_scale` / `.kv_cache_offset` and `<v_proj>.…` f32 [channels]. A separate-projection architecture
// is assumed (the linears named *k_proj / *v_proj); fused QKV splitting is not implemented.

interface MsKvState {
  readonly sym: boolean;
  readonly numLayers: number;
}

interface Folded {
  readonly k: ChannelRange;
  readonly v: ChannelRange;
  readonly error: string | null;
}

const TYPE = "MsKvCacheModifier";

const projections = (layer: LayerState): { readonly k: string; readonly v: string } | null => {
  const names = [...layer.modules.keys()];
  const k = names.find((n) => n.endsWith("k_proj"));
  const v = names.find((n) => n.endsWith("v_proj"));
  return k !== undefined && v !== undefined ? { k, v } : null;
};

/** Folds one input batch through a projection's float weight into its channel range. */
const foldProjection = (r: ChannelRange, x: Tensor<"f32">, w: Tensor<"f32">): E.Either<string, ChannelRange> => {
  const x2 = x.rank === 2 ? x : f32(x.data, [x.size / x.shape[x.rank - 1]!, x.shape[x.rank - 1]!]);
  const y = matmul(x2, w, { transposeB: true });
  if (E.isLeft(y)) return E.left(`projecting the calibration inputs failed: ${y.left._tag}`);
  const r2 = foldChannelRange(r, toFloat32(y.right).data, x2.shape[0]!);
  return E.isLeft(r2) ? E.left(JSON.stringify(r2.left)) : E.right(r2.right);
};

const calibration = (s: MsKvState, layer: LayerState): Calibration<Folded> | null => {
  const p = layer.index < s.numLayers ? projections(layer) : null;
  const wk = p && layer.tensors.get(`${p.k}.weight`);
  const wv = p && layer.tensors.get(`${p.v}.weight`);
  if (!p || !wk || !wv) return null;
  const [k, v] = [toFloat32(wk), toFloat32(wv)];
  const step = (acc: Folded, t: Tap): Folded => {
    if (acc.error !== null || t._tag !== "LinearInput" || !t.modules.includes(p.k)) return acc;
    const rk = foldProjection(acc.k, t.x, k);
    const rv = t.modules.includes(p.v) ? foldProjection(acc.v, t.x, v) : E.left(`${p.v} does not share ${p.k}'s input`);
    return E.isLeft(rk) || E.isLeft(rv) ? { ...acc, error: E.isLeft(rk) ? rk.left : (rv as E.Left<string>).left } : { k: rk.right, v: rv.right, error: null };
  };
  return {
    linearInputs: new Set([p.k, p.v]),
    attentionKV: false,
    fold: reducer(() => ({ k: emptyChannelRange(k.shape[0]!), v: emptyChannelRange(v.shape[0]!), error: null }), step),
  };
};

/** msModelSlim's C8 KV quantization (kv_sym: symmetric scales, else asymmetric with integer offsets). */
export const MsKvCacheModifier = (sym: boolean): Modifier<MsKvState, Folded> => ({
  type: TYPE,
  requiresCalibrationData: true,
  calibrationDataReason: "msModelSlim's kv_quant calibrates per-channel k / v projection ranges on calibration data",
  initialize: (model) => E.right({ sym, numLayers: model.numLayers }),
  calibration,
  onSequentialEpochEnd: (s, layer, folded) => {
    const p = projections(layer);
    if (p === null || folded === null || layer.index >= s.numLayers) return E.right({ state: s, layer, warnings: [] });
    if (folded.error !== null) return E.left(modifierError(TYPE, layer.prefix + p.k, folded.error));
    const edits: Array<readonly [string, Tensor]> = [];
    for (const [proj, range] of [[p.k, folded.k], [p.v, folded.v]] as const) {
      const q = msModelSlimKvQParams(range, s.sym);
      if (E.isLeft(q)) return E.left(modifierError(TYPE, layer.prefix + proj, JSON.stringify(q.left), q.left));
      edits.push([`${proj}.kv_cache_scale`, f32(q.right.scale)], [`${proj}.kv_cache_offset`, f32(q.right.offset)]);
    }
    return E.right({ state: s, layer: withTensors(layer, edits), warnings: [] });
  },
});
