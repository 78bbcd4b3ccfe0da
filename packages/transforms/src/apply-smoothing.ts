import { Tensor, castFromNumbers, toFloat32 } from "@llmq/tensor";

// The edit both SmoothQuant and AWQ make once they chose per-channel scales s for a mapping: every balance layer's
// input column j is multiplied by s_j, and the smooth layer's output channel j is divided by s_j (a norm's weight,
// or the last len(s) output rows of a linear, as AutoAWQ / llm-compressor do when a fused qkv_proj smooths o_proj),
// its bias too. The product is formed in f32 (torch: f32·f32, or f64 then cast to the f32 / bf16 / f16 parameter,
// which rounds through f32 as torch's double → BFloat16 conversion does) and stored in the tensor's own dtype.

// ----- algorithms -----

/** The float dtype a layer tensor's arithmetic runs in (bf16 / f16 as stored, everything else f32). */
export type LayerFloatDType = "f32" | "bf16" | "f16";
export const floatDTypeOf = (t: Tensor): LayerFloatDType => (t.dtype === "bf16" || t.dtype === "f16" ? t.dtype : "f32");

/** f32 values (already rounded once, by the Float32Array) stored in `dtype`. */
const stored = (dtype: Tensor["dtype"], shape: ReadonlyArray<number>, values: Float32Array): Tensor =>
  dtype === "f32" ? new Tensor("f32", shape, values) : castFromNumbers(dtype, values, shape);

/** W[:, j] · s_j or W[:, j] ÷ s_j per column, each product / quotient rounded to f32, stored in `dtype`. */
const columnwise = (w: Tensor, s: ArrayLike<number>, divide: boolean, dtype: Tensor["dtype"]): Tensor => {
  const [rows, cols] = w.shape as [number, number];
  if (cols !== s.length) throw new Error(`llmq internal: ${cols} columns, ${s.length} scales`);
  const x = toFloat32(w).data;
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    if (divide) for (let j = 0; j < cols; j++) out[o + j] = x[o + j]! / s[j]!;
    else for (let j = 0; j < cols; j++) out[o + j] = x[o + j]! * s[j]!;
  }
  return stored(dtype, w.shape, out);
};

/** W[:, j] · s_j, in the weight's dtype. */
export const scaleColumns = (w: Tensor, s: ArrayLike<number>): Tensor => columnwise(w, s, false, w.dtype);

/** W[:, j] ÷ s_j, stored in `dtype` (AWQ's Q(W·s)/s, cast back to the weight's dtype). */
export const divideColumns = (w: Tensor, s: ArrayLike<number>, dtype: Tensor["dtype"] = w.dtype): Tensor => columnwise(w, s, true, dtype);

/** A 1-D weight (norm, bias) ÷ s, or a 2-D weight's last len(s) rows ÷ s (row r − offset by s), in its dtype. */
export const divideOutputs = (w: Tensor, s: ArrayLike<number>): Tensor => {
  const x = toFloat32(w).data;
  const out = Float32Array.from(x);
  if (w.rank === 1) {
    if (w.size !== s.length) throw new Error(`llmq internal: ${w.size} channels, ${s.length} scales`);
    for (let j = 0; j < s.length; j++) out[j] = x[j]! / s[j]!;
    return stored(w.dtype, w.shape, out);
  }
  const [rows, cols] = w.shape as [number, number];
  const first = rows - s.length;
  if (first < 0) throw new Error(`llmq internal: ${rows} rows, ${s.length} scales`);
  for (let r = first; r < rows; r++) {
    const d = s[r - first]!;
    for (let j = 0; j < cols; j++) out[r * cols + j] = x[r * cols + j]! / d;
  }
  return stored(w.dtype, w.shape, out);
};

/**
 * The tensor edits of one mapping: balance weights (from `balance`, the weights the scales were chosen for) times s
 * per column, the smooth layer's weight and bias divided by s. Keys are local tensor names.
 */
export const smoothingEdits = (
  tensors: ReadonlyMap<string, Tensor>,
  smooth: string,
  balance: ReadonlyArray<readonly [string, Tensor]>,
  s: ArrayLike<number>,
): ReadonlyArray<readonly [string, Tensor]> => {
  const edits: Array<readonly [string, Tensor]> = balance.map(([local, w]) => [`${local}.weight`, scaleColumns(w, s)] as const);
  for (const p of ["weight", "bias"]) {
    const t = tensors.get(`${smooth}.${p}`);
    if (t !== undefined) edits.push([`${smooth}.${p}`, divideOutputs(t, s)]);
  }
  return edits;
};

/** The smallest and largest applied scale (reports). */
export const scaleRange = (s: ArrayLike<number>): { readonly scaleMin: number; readonly scaleMax: number } => {
  let scaleMin = Number.POSITIVE_INFINITY;
  let scaleMax = Number.NEGATIVE_INFINITY;
  for (let j = 0; j < s.length; j++) {
    scaleMin = Math.min(scaleMin, s[j]!);
    scaleMax = Math.max(scaleMax, s[j]!);
  }
  return { scaleMin, scaleMax };
};
