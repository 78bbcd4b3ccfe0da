import { type Buf, type Tape, type Var, alloc, gemm, gradOf, record } from "./tape.js";

// The dense ops of the Llama forward with their backward steps. Shapes are [T, features] row-major; each backward
// adds into its inputs' gradients (a tied weight used twice sums both uses).

const rowsCols = (v: Var): readonly [number, number] => [v.shape[0]!, v.shape[1]!];

/** y[T, out] = x[T, in] · Wᵀ; dx = dy · W and dW = dyᵀ · x by GEMM (transposed operands, no copies). */
export const linear = (tape: Tape, x: Var, w: Var): Var => {
  const [t, k] = rowsCols(x);
  const [n, kw] = rowsCols(w);
  if (k !== kw) throw new Error(`llmq internal: linear input width ${k} does not match weight [${n}, ${kw}]`);
  const y = alloc(x.data, t * n);
  gemm(t, n, k, x.data, false, w.data, true, y, 1, 0);
  return record(tape, [x, w], y, [t, n], (_, g) => {
    if (x.needsGrad) gemm(t, k, n, g, false, w.data, false, gradOf(x), 1, 1);
    if (w.needsGrad) gemm(n, k, t, g, true, x.data, false, gradOf(w), 1, 1);
  });
};

/** Elementwise a + b of the same shape (the residual connections). */
export const add = (tape: Tape, a: Var, b: Var): Var => {
  const y = alloc(a.data, a.data.length);
  for (let i = 0; i < y.length; i++) y[i] = a.data[i]! + b.data[i]!;
  return record(tape, [a, b], y, a.shape, (_, g) => {
    for (const v of [a, b]) {
      if (!v.needsGrad) continue;
      const gv = gradOf(v);
      for (let i = 0; i < g.length; i++) gv[i] = gv[i]! + g[i]!;
    }
  });
};

/** LlamaRMSNorm: y = w ⊙ x · r with r = 1/√(mean(x²) + eps) per row. */
export const rmsNorm = (tape: Tape, x: Var, w: Var, eps: number): Var => {
  const [t, h] = rowsCols(x);
  const xd = x.data;
  const wd = w.data;
  const y = alloc(xd, t * h);
  const r = new Float64Array(t);
  for (let i = 0; i < t; i++) {
    let ss = 0;
    for (let j = 0; j < h; j++) ss += xd[i * h + j]! * xd[i * h + j]!;
    r[i] = 1 / Math.sqrt(ss / h + eps);
    for (let j = 0; j < h; j++) y[i * h + j] = wd[j]! * xd[i * h + j]! * r[i]!;
  }
  return record(tape, [x, w], y, x.shape, (_, g) => rmsNormBack(x, w, r, g, t, h));
};

const rmsNormBack = (x: Var, w: Var, r: Float64Array, g: Buf, t: number, h: number): void => {
  const xd = x.data;
  const wd = w.data;
  const gx = x.needsGrad ? gradOf(x) : null;
  const gw = w.needsGrad ? gradOf(w) : null;
  for (let i = 0; i < t; i++) {
    const ri = r[i]!;
    // dx_j = r·g_j·w_j − r³/h · x_j · Σ_k g_k w_k x_k
    let dot = 0;
    for (let j = 0; j < h; j++) dot += g[i * h + j]! * wd[j]! * xd[i * h + j]!;
    const c = (ri * ri * ri * dot) / h;
    for (let j = 0; j < h; j++) {
      const o = i * h + j;
      if (gx !== null) gx[o] = gx[o]! + ri * g[o]! * wd[j]! - c * xd[o]!;
      if (gw !== null) gw[j] = gw[j]! + g[o]! * xd[o]! * ri;
    }
  }
};

/** The Llama MLP's gate: y = silu(g) ⊙ u. */
export const siluMul = (tape: Tape, gate: Var, up: Var): Var => {
  const n = gate.data.length;
  const y = alloc(gate.data, n);
  const sig = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const s = 1 / (1 + Math.exp(-gate.data[i]!));
    sig[i] = s;
    y[i] = gate.data[i]! * s * up.data[i]!;
  }
  return record(tape, [gate, up], y, gate.shape, (_, g) => {
    const gg = gate.needsGrad ? gradOf(gate) : null;
    const gu = up.needsGrad ? gradOf(up) : null;
    for (let i = 0; i < n; i++) {
      const s = sig[i]!;
      const z = gate.data[i]!;
      if (gg !== null) gg[i] = gg[i]! + g[i]! * up.data[i]! * s * (1 + z * (1 - s));
      if (gu !== null) gu[i] = gu[i]! + g[i]! * z * s;
    }
  });
};

/** Rows of a table [V, H] by token id → [T, H]; the backward scatters into the used rows. */
export const embedding = (tape: Tape, table: Var, ids: Int32Array): Var => {
  const [v, h] = rowsCols(table);
  const y = alloc(table.data, ids.length * h);
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!;
    if (!(id >= 0 && id < v)) throw new Error(`llmq internal: token id ${id} outside the vocabulary of ${v}`);
    y.set(table.data.subarray(id * h, (id + 1) * h), i * h);
  }
  return record(tape, [table], y, [ids.length, h], (_, g) => {
    const gt = gradOf(table);
    for (let i = 0; i < ids.length; i++) {
      const o = ids[i]! * h;
      for (let j = 0; j < h; j++) gt[o + j] = gt[o + j]! + g[i * h + j]!;
    }
  });
};
