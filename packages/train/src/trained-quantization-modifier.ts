import {
  type Modifier,
  type ModifierError,
  type QuantizationMixinState,
  type QuantizedWeight,
  initializeQuantizationMixin,
  modifierError,
  quantizeLayer,
  withTensors,
} from "@llmq/observers";
import { type QuantizationModifierConfig, dequantize, formatSchemeError, quantize, storageDType } from "@llmq/schemes";
import { Tensor, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import type { FakeQuantParams } from "./fake-quant-ste.js";

// The end of QAT as a oneshot modifier: each layer's tensors are replaced by the trained ones and every planned module
// is compressed with the frozen qparams it trained under, so the saved checkpoint dequantizes to exactly the weights the
// last fake-quantized forward used. llmq's oneshot then writes the compressed-tensors directory as for any recipe.

const TYPE = "QuantizationModifier";

/** A trained weight's compressed-tensors parameters under its frozen qparams (codes by CT's quantize, then dequantize). */
export const frozenQuantizedWeight = (name: string, weight: Tensor, p: FakeQuantParams): E.Either<ModifierError, QuantizedWeight> => {
  const fail = (e: Parameters<typeof formatSchemeError>[0]) => modifierError(TYPE, name, formatSchemeError(e), e);
  const zp = p.args.symmetric ? null : p.zeroPoint;
  const gIdx = p.gIdx === null ? {} : { gIdx: p.gIdx };
  const sd = storageDType(p.args);
  return pipe(
    quantize(weight, p.scale, zp, p.args, { ...gIdx, ...(sd ? { dtype: sd } : {}) }),
    E.chain((q) => E.map((dq: Tensor) => ({ q, dq: toFloat32(dq) }))(dequantize(q, p.scale, zp, p.args, { ...gIdx, dtype: "f32" }))),
    E.mapLeft(fail),
    E.map(({ q, dq }) => {
      const w = toFloat32(weight).data;
      let loss = 0;
      for (let i = 0; i < w.length; i++) loss += (w[i]! - dq.data[i]!) ** 2 / 2;
      return {
        name,
        quantized: q,
        scale: p.scale,
        zeroPoint: zp,
        globalScale: null,
        gIdx: p.gIdx === null ? null : new Tensor("i32", [p.gIdx.length], p.gIdx),
        fakeQuantized: dq,
        loss,
        method: "qat",
        warnings: [],
      };
    }),
  );
};

/**
 * QuantizationModifier `cfg` after training: `trained` holds the trained tensors by full name (layer norms, linears),
 * `qparams` the frozen qparams by module name. Data-free: it needs no calibration pass.
 */
export const trainedQuantizationModifier = (
  cfg: QuantizationModifierConfig,
  trained: ReadonlyMap<string, Tensor>,
  qparams: ReadonlyMap<string, FakeQuantParams>,
): Modifier<QuantizationMixinState, null> => ({
  type: TYPE,
  requiresCalibrationData: false,
  initialize: (model) => initializeQuantizationMixin(TYPE, { ...cfg, requires_calibration_data: false }, model),
  plannedSchemes: (s) => new Map([...s.plan.modules].map(([name, p]) => [name, p.scheme])),
  onSequentialEpochEnd: (s, layer) => {
    const edits = [...layer.tensors.keys()].flatMap((k) => {
      const t = trained.get(layer.prefix + k);
      return t === undefined ? [] : [[k, t] as const];
    });
    return pipe(
      quantizeLayer(s, withTensors(layer, edits), null, (p, w) => {
        const q = qparams.get(p.module.name);
        if (q === undefined) return E.left(modifierError(TYPE, p.module.name, "no trained qparams for this module"));
        return E.map((weight: QuantizedWeight) => ({ weight, layerTensor: w }))(frozenQuantizedWeight(p.module.name, w, q));
      }),
      E.map(({ layer: l, warnings }) => ({ state: s, layer: l, warnings })),
    );
  },
});
