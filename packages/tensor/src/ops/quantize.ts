import * as E from "fp-ts/lib/Either.js";
import { kernels } from "../backend.js";
import { type TensorError, invalidArgument, shapeMismatch } from "../errors.js";
import type { Kernels } from "../kernels.js";
import { Tensor, toFloat32 } from "../tensor.js";
import type { DType } from "../dtype.js";
import { fmtShape, requireDType } from "./check.js";

// Group quantization helpers over a rows×cols view of x (leading axes flattened into rows, the last axis is cols),
// the layout every compressed-tensors strategy reduces to: tensor = one group of everything, channel = one group
// per row (groupSize = cols), group = groups of `groupSize` consecutive columns.

const view2d = (op: string, x: Tensor): E.Either<TensorError, { x: Tensor<"f32">; rows: number; cols: number }> => {
  const t = requireDType(op, x, ["f32"] as const);
  if (E.isLeft(t)) return t;
  const cols = x.shape[x.rank - 1];
  if (cols === undefined) return E.left(invalidArgument(op, "x", `needs rank ≥ 1, got shape ${fmtShape(x.shape)}`));
  return E.right({ x: t.right, rows: cols === 0 ? 0 : x.size / cols, cols });
};

const checkGroup = (op: string, cols: number, groupSize: number, shape: ReadonlyArray<number>): E.Either<TensorError, number> =>
  Number.isInteger(groupSize) && groupSize > 0 && cols % groupSize === 0
    ? E.right(cols / groupSize)
    : E.left(invalidArgument(op, "groupSize", `${groupSize} must be a positive divisor of the last dimension ${cols} (shape ${fmtShape(shape)})`));

export interface GroupMinMax {
  readonly min: Tensor<"f32">;
  readonly max: Tensor<"f32">;
}

/** Min and max of every group of `groupSize` consecutive elements of the last axis: shapes [..., cols/groupSize]. */
export const groupMinMax = (x: Tensor, groupSize: number, k: Kernels = kernels()): E.Either<TensorError, GroupMinMax> => {
  const op = "groupMinMax";
  const v = view2d(op, x);
  if (E.isLeft(v)) return v;
  const { rows, cols } = v.right;
  const g = checkGroup(op, cols, groupSize, x.shape);
  if (E.isLeft(g)) return g;
  const outMin = new Float32Array(rows * g.right);
  const outMax = new Float32Array(rows * g.right);
  if (rows * cols > 0) k.groupMinMax(v.right.x.data, rows, cols, groupSize, outMin, outMax);
  const shape = [...x.shape.slice(0, -1), g.right];
  return E.right({ min: new Tensor("f32", shape, outMin), max: new Tensor("f32", shape, outMax) });
};

export interface QuantizeOptions {
  readonly qmin: number;
  readonly qmax: number;
  /** Consecutive columns sharing one scale; cols for per-channel. Ignored when scale has one element (per tensor). */
  readonly groupSize: number;
  /** true: return the fake-quantized (q − zp)·s; false: the integer grid values q (as f32). */
  readonly fake: boolean;
}

/**
 * q = round_half_even(clamp(x / s + zp, qmin, qmax)) in f32 exactly as compressed-tensors orders it, per group of
 * the last axis (`quantizeGroups` kernel). scale (and zeroPoint, null for symmetric) hold one value per group:
 * rows × (cols / groupSize) elements in any shape, or a single element for a per-tensor scale. Any float or int
 * dtype is accepted for scale/zeroPoint (decoded to f32, as CT casts them to the computation dtype).
 */
export const quantizePerGroup = (
  x: Tensor,
  scale: Tensor,
  zeroPoint: Tensor | null,
  opts: QuantizeOptions,
  k: Kernels = kernels(),
): E.Either<TensorError, Tensor<"f32">> => {
  const op = "quantizePerGroup";
  const v = view2d(op, x);
  if (E.isLeft(v)) return v;
  let { rows, cols } = v.right;
  let groupSize = opts.groupSize;
  if (scale.size === 1 && rows * cols > 0) {
    // per tensor: one group of everything
    cols = rows * cols;
    rows = 1;
    groupSize = cols;
  }
  const g = checkGroup(op, cols, groupSize, x.shape);
  if (E.isLeft(g)) return g;
  const groups = rows * g.right;
  if (scale.size !== groups)
    return E.left(shapeMismatch(op, [x.shape, scale.shape], `scale needs ${groups} values (${rows} rows × ${g.right} groups of ${groupSize})`));
  if (zeroPoint && zeroPoint.size !== groups)
    return E.left(shapeMismatch(op, [x.shape, zeroPoint.shape], `zeroPoint needs ${groups} values, like scale`));
  if (!(opts.qmin <= opts.qmax)) return E.left(invalidArgument(op, "qmin/qmax", `need qmin ≤ qmax, got ${opts.qmin} and ${opts.qmax}`));
  const out = new Float32Array(v.right.x.size);
  if (out.length > 0)
    k.quantizeGroups(
      v.right.x.data,
      rows,
      cols,
      groupSize,
      toFloat32(scale).data,
      zeroPoint ? toFloat32(zeroPoint).data : null,
      opts.qmin,
      opts.qmax,
      opts.fake,
      out,
    );
  return E.right(new Tensor("f32", x.shape, out));
};

const fr = Math.fround;

/**
 * x = (q − zp) · s per group in f32, the compressed-tensors dequantize order (q of any integer or float dtype is
 * decoded to f32 first). Bit-identical to `quantizePerGroup(…, { fake: true })` applied to the same grid values.
 */
export const dequantizePerGroup = (
  q: Tensor,
  scale: Tensor,
  zeroPoint: Tensor | null,
  opts: { readonly groupSize: number },
): E.Either<TensorError, Tensor<"f32">> => {
  const op = "dequantizePerGroup";
  const allowed: ReadonlyArray<DType> = ["f32", "f64", "f16", "bf16", "f8_e4m3fn", "f8_e5m2", "f4_e2m1", "i32", "i16", "i8", "u8", "i4", "u4"];
  const t = requireDType(op, q, allowed);
  if (E.isLeft(t)) return t;
  const cols0 = q.shape[q.rank - 1];
  if (cols0 === undefined) return E.left(invalidArgument(op, "q", `needs rank ≥ 1, got shape ${fmtShape(q.shape)}`));
  let rows = cols0 === 0 ? 0 : q.size / cols0;
  let cols = cols0;
  let groupSize = opts.groupSize;
  if (scale.size === 1 && rows * cols > 0) {
    cols = rows * cols;
    rows = 1;
    groupSize = cols;
  }
  const g = checkGroup(op, cols, groupSize, q.shape);
  if (E.isLeft(g)) return g;
  const groups = rows * g.right;
  if (scale.size !== groups)
    return E.left(shapeMismatch(op, [q.shape, scale.shape], `scale needs ${groups} values (${rows} rows × ${g.right} groups of ${groupSize})`));
  if (zeroPoint && zeroPoint.size !== groups)
    return E.left(shapeMismatch(op, [q.shape, zeroPoint.shape], `zeroPoint needs ${groups} values, like scale`));
  const qv = toFloat32(q).data;
  const s = toFloat32(scale).data;
  const z = zeroPoint ? toFloat32(zeroPoint).data : null;
  const out = new Float32Array(qv.length);
  for (let r = 0; r < rows; r++)
    for (let gi = 0; gi < g.right; gi++) {
      const sc = s[r * g.right + gi]!;
      const zp = z ? z[r * g.right + gi]! : 0;
      const base = r * cols + gi * groupSize;
      for (let j = 0; j < groupSize; j++) out[base + j] = z ? fr(fr(qv[base + j]! - zp) * sc) : fr(qv[base + j]! * sc);
    }
  return E.right(new Tensor("f32", q.shape, out));
};
