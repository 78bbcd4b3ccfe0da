import type { QuantizationArgs } from "@llmq/schemes";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type ObserverError, observedShape, unsupportedStrategy } from "./errors.js";

// ----- model -----

/**
 * What is observed: a weight [out, in]; an activation [tokens, features] (or [batch, seq, features]); or an
 * attention state q/k/v [heads, seq, head_dim] (or [batch, heads, seq, head_dim]), LC base names.
 */
export type ObservedKind = "weight" | "input" | "output" | "q" | "k" | "v";

/**
 * The observed tensor regrouped so that row r holds every element that shares qparam r, in llm-compressor's
 * (observation, group element) order (LC `flatten_for_calibration` → `(num_observations, *qparam_shape,
 * group_size)`, here transposed to `[qparams, observations × group_size]`). Block padding zeros are included, as
 * LC pads before reducing.
 */
export interface CalibrationRows {
  /** Number of qparams (rows). */
  readonly rows: number;
  /** Elements per qparam. */
  readonly cols: number;
  /** rows × cols, row-major. A view of the observed data when no regrouping is needed. */
  readonly data: Float32Array;
  /** Shape of the min/max statistics and of the scale, as llm-compressor produces them. */
  readonly qparamShape: ReadonlyArray<number>;
}

// ----- constructors -----

const cdiv = (a: number, b: number): number => Math.ceil(a / b);

const weightRows = (x: Tensor<"f32">, args: QuantizationArgs, observer: string, name: string): E.Either<ObserverError, CalibrationRows> => {
  if (x.shape.length !== 2) return E.left(observedShape(name, x.shape, "a weight must be 2-D [out, in]"));
  const [out, cols] = x.shape as [number, number];
  switch (args.strategy) {
    case "tensor":
      return E.right({ rows: 1, cols: out * cols, data: x.data, qparamShape: [1] });
    case "channel":
      return E.right({ rows: out, cols, data: x.data, qparamShape: [out, 1] });
    case "group":
    case "tensor_group": {
      const gs = args.group_size ?? 0;
      // LC unflattens the last dim into (-1, group_size), which fails unless group_size divides it.
      if (gs <= 0 || cols % gs !== 0)
        return E.left(observedShape(name, x.shape, `columns (${cols}) must be a multiple of group_size ${gs}`));
      return E.right({ rows: out * (cols / gs), cols: gs, data: x.data, qparamShape: [out, cols / gs] });
    }
    case "block": {
      const bs = args.block_structure;
      if (bs === null) return E.left(unsupportedStrategy(observer, name, "block", "block_structure is not set"));
      const [bh, bw] = bs;
      const br = cdiv(out, bh);
      const bc = cdiv(cols, bw);
      const data = new Float32Array(br * bc * bh * bw);
      // zero padding up to whole blocks, then each block's elements in row-major order (LC reshape+transpose)
      for (let i = 0; i < out; i++) {
        const bi = Math.floor(i / bh);
        const ii = i % bh;
        for (let j = 0; j < cols; j++) {
          const bj = Math.floor(j / bw);
          data[(bi * bc + bj) * bh * bw + ii * bw + (j % bw)] = x.data[i * cols + j]!;
        }
      }
      return E.right({ rows: br * bc, cols: bh * bw, data, qparamShape: [br, bc] });
    }
    default:
      return E.left(unsupportedStrategy(observer, name, args.strategy, `${args.strategy} quantization cannot be applied to weights`));
  }
};

const activationRows = (x: Tensor<"f32">, args: QuantizationArgs, observer: string, name: string): E.Either<ObserverError, CalibrationRows> => {
  if (x.shape.length < 1) return E.left(observedShape(name, x.shape, "an activation must be at least 1-D [.., features]"));
  const features = x.shape[x.shape.length - 1]!;
  const tokens = features === 0 ? 0 : x.size / features;
  switch (args.strategy) {
    case "tensor":
      return E.right({ rows: 1, cols: x.size, data: x.data, qparamShape: [1] });
    case "token": {
      // LC keeps (batch, seq, hidden) and reduces dims (0, -1): one value per sequence position, over the batch.
      // A 2-D [tokens, features] input is one sequence.
      if (x.shape.length <= 2) return E.right({ rows: tokens, cols: features, data: x.data, qparamShape: [tokens] });
      if (x.shape.length !== 3) return E.left(observedShape(name, x.shape, "token statistics need [tokens, features] or [batch, seq, features]"));
      const [b, t] = x.shape as [number, number, number];
      const data = new Float32Array(x.size);
      for (let i = 0; i < b; i++)
        for (let j = 0; j < t; j++) data.set(x.data.subarray((i * t + j) * features, (i * t + j + 1) * features), (j * b + i) * features);
      return E.right({ rows: t, cols: b * features, data, qparamShape: [t] });
    }
    case "group":
    case "tensor_group": {
      const gs = args.group_size ?? 0;
      if (gs <= 0 || features % gs !== 0)
        return E.left(observedShape(name, x.shape, `features (${features}) must be a multiple of group_size ${gs}`));
      const ng = features / gs;
      const data = new Float32Array(x.size);
      const k = tokens * gs;
      for (let t = 0; t < tokens; t++)
        for (let g = 0; g < ng; g++)
          for (let j = 0; j < gs; j++) data[g * k + t * gs + j] = x.data[t * features + g * gs + j]!;
      return E.right({ rows: ng, cols: k, data, qparamShape: [ng] });
    }
    default:
      return E.left(unsupportedStrategy(observer, name, args.strategy, `${args.strategy} quantization cannot be applied to activations`));
  }
};

const attentionRows = (x: Tensor<"f32">, args: QuantizationArgs, observer: string, name: string): E.Either<ObserverError, CalibrationRows> => {
  if (x.shape.length !== 3 && x.shape.length !== 4)
    return E.left(observedShape(name, x.shape, "an attention state must be [heads, seq, head_dim] or [batch, heads, seq, head_dim]"));
  const [b, h, t, d] = (x.shape.length === 3 ? [1, ...x.shape] : x.shape) as [number, number, number, number];
  switch (args.strategy) {
    case "tensor":
      return E.right({ rows: 1, cols: x.size, data: x.data, qparamShape: [1] });
    case "attn_head": {
      // LC: (batch·seq, heads, 1, 1, head_dim), reduced over (0, −1) → one value per head, shape [heads, 1, 1]
      const data = new Float32Array(x.size);
      const k = b * t * d;
      for (let bi = 0; bi < b; bi++)
        for (let hi = 0; hi < h; hi++)
          for (let ti = 0; ti < t; ti++) {
            const src = ((bi * h + hi) * t + ti) * d;
            data.set(x.data.subarray(src, src + d), hi * k + (bi * t + ti) * d);
          }
      return E.right({ rows: h, cols: k, data, qparamShape: [h, 1, 1] });
    }
    default:
      return E.left(unsupportedStrategy(observer, name, args.strategy, `${args.strategy} quantization cannot be applied to attention`));
  }
};

/**
 * Regroups an observed tensor per qparam for the given strategy, as llm-compressor's `flatten_for_calibration`
 * does for base names "weight", "input"/"output" and "q"/"k"/"v". Unsupported combinations (token/attn_head weights,
 * channel/block activations, group sizes that do not divide the last dim) are errors naming the tensor.
 */
export const flattenForCalibration = (
  x: Tensor<"f32">,
  kind: ObservedKind,
  args: QuantizationArgs,
  observer: string,
  name: string,
): E.Either<ObserverError, CalibrationRows> =>
  kind === "weight"
    ? weightRows(x, args, observer, name)
    : kind === "input" || kind === "output"
      ? activationRows(x, args, observer, name)
      : attentionRows(x, args, observer, name);
