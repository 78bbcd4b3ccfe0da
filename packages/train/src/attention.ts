import { type Buf, type Tape, type Var, alloc, gemm, gradOf, record } from "./tape.js";

// Rotary embedding and causal grouped-query attention of one window, with their backward steps. Layouts follow
// @llmq/models' forward: q [T, H·D], k and v [T, KV·D], head h reads key/value head ⌊h / (H/KV)⌋.

/** cos/sin tables [T, D/2] (tensor's `ropeCosSin`). */
export interface RopeTables {
  readonly cos: ArrayLike<number>;
  readonly sin: ArrayLike<number>;
}

const rotate = (src: Buf, dst: Buf, tokens: number, heads: number, dim: number, t: RopeTables, sign: 1 | -1): void => {
  const half = dim / 2;
  for (let i = 0; i < tokens; i++)
    for (let h = 0; h < heads; h++) {
      const o = (i * heads + h) * dim;
      for (let j = 0; j < half; j++) {
        const c = t.cos[i * half + j]!;
        const s = sign * t.sin[i * half + j]!;
        const x1 = src[o + j]!;
        const x2 = src[o + half + j]!;
        dst[o + j] = dst[o + j]! + x1 * c - x2 * s;
        dst[o + half + j] = dst[o + half + j]! + x2 * c + x1 * s;
      }
    }
};

/** Rotate-half RoPE of x [T, heads·dim]; its backward is the rotation by the opposite angle. */
export const rope = (tape: Tape, x: Var, heads: number, dim: number, tables: RopeTables): Var => {
  const tokens = x.shape[0]!;
  const y = alloc(x.data, x.data.length);
  rotate(x.data, y, tokens, heads, dim, tables, 1);
  return record(tape, [x], y, x.shape, (_, g) => rotate(g, gradOf(x), tokens, heads, dim, tables, -1));
};

export interface AttentionShape {
  readonly heads: number;
  readonly kvHeads: number;
  readonly headDim: number;
}

/** Copies head `h` of x [T, heads·D] into a contiguous [T, D] (or adds a [T, D] back into it). */
const gather = (x: Buf, tokens: number, heads: number, d: number, h: number, out: Buf): Buf => {
  for (let i = 0; i < tokens; i++) out.set(x.subarray((i * heads + h) * d, (i * heads + h + 1) * d), i * d);
  return out;
};
const scatterAdd = (src: Buf, x: Buf, tokens: number, heads: number, d: number, h: number): void => {
  for (let i = 0; i < tokens; i++) for (let j = 0; j < d; j++) x[(i * heads + h) * d + j] = x[(i * heads + h) * d + j]! + src[i * d + j]!;
};

/** Row softmax of scale·S with the causal mask, in place over s [T, T]. */
const causalSoftmax = (s: Buf, tokens: number, scale: number): void => {
  for (let i = 0; i < tokens; i++) {
    let m = -Infinity;
    for (let j = 0; j <= i; j++) m = Math.max(m, scale * s[i * tokens + j]!);
    let z = 0;
    for (let j = 0; j <= i; j++) {
      const e = Math.exp(scale * s[i * tokens + j]! - m);
      s[i * tokens + j] = e;
      z += e;
    }
    for (let j = 0; j <= i; j++) s[i * tokens + j] = s[i * tokens + j]! / z;
    for (let j = i + 1; j < tokens; j++) s[i * tokens + j] = 0;
  }
};

/** softmax(scale · q_h k_gᵀ, causal) · v_g per head; the probabilities are kept for the backward. */
export const causalAttention = (tape: Tape, q: Var, k: Var, v: Var, a: AttentionShape): Var => {
  const { heads, kvHeads, headDim: d } = a;
  const tokens = q.shape[0]!;
  const scale = 1 / Math.sqrt(d);
  const out = alloc(q.data, tokens * heads * d);
  const probs: Buf[] = [];
  const qh = alloc(q.data, tokens * d);
  const kh = alloc(q.data, tokens * d);
  const vh = alloc(q.data, tokens * d);
  const oh = alloc(q.data, tokens * d);
  for (let h = 0; h < heads; h++) {
    const kv = Math.floor(h / (heads / kvHeads));
    const p = alloc(q.data, tokens * tokens);
    gemm(tokens, tokens, d, gather(q.data, tokens, heads, d, h, qh), false, gather(k.data, tokens, kvHeads, d, kv, kh), true, p, 1, 0);
    causalSoftmax(p, tokens, scale);
    gemm(tokens, d, tokens, p, false, gather(v.data, tokens, kvHeads, d, kv, vh), false, oh, 1, 0);
    scatterAdd(oh, out, tokens, heads, d, h);
    probs.push(p);
  }
  return record(tape, [q, k, v], out, [tokens, heads * d], (_, g) => attentionBack(q, k, v, a, probs, g));
};

const attentionBack = (q: Var, k: Var, v: Var, a: AttentionShape, probs: ReadonlyArray<Buf>, g: Buf): void => {
  const { heads, kvHeads, headDim: d } = a;
  const tokens = q.shape[0]!;
  const scale = 1 / Math.sqrt(d);
  const [gq, gk, gv] = [gradOf(q), gradOf(k), gradOf(v)];
  const buf = () => alloc(q.data, tokens * d);
  const [qh, kh, vh, dO, dq, dk, dv] = [buf(), buf(), buf(), buf(), buf(), buf(), buf()];
  const dp = alloc(q.data, tokens * tokens);
  for (let h = 0; h < heads; h++) {
    const kv = Math.floor(h / (heads / kvHeads));
    const p = probs[h]!;
    gather(g, tokens, heads, d, h, dO);
    gather(q.data, tokens, heads, d, h, qh);
    gather(k.data, tokens, kvHeads, d, kv, kh);
    gather(v.data, tokens, kvHeads, d, kv, vh);
    gemm(tokens, d, tokens, p, true, dO, false, dv, 1, 0); // dV = Pᵀ dO
    gemm(tokens, tokens, d, dO, false, vh, true, dp, 1, 0); // dP = dO Vᵀ
    for (let i = 0; i < tokens; i++) {
      // dS = P ⊙ (dP − Σ_j dP·P), masked entries have P = 0
      let dot = 0;
      for (let j = 0; j <= i; j++) dot += dp[i * tokens + j]! * p[i * tokens + j]!;
      for (let j = 0; j < tokens; j++) dp[i * tokens + j] = p[i * tokens + j]! * (dp[i * tokens + j]! - dot);
    }
    gemm(tokens, d, tokens, dp, false, kh, false, dq, scale, 0); // dQ = scale · dS K
    gemm(tokens, d, tokens, dp, true, qh, false, dk, scale, 0); // dK = scale · dSᵀ Q
    scatterAdd(dq, gq, tokens, heads, d, h);
    scatterAdd(dk, gk, tokens, kvHeads, d, kv);
    scatterAdd(dv, gv, tokens, kvHeads, d, kv);
  }
};
