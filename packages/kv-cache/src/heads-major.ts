import { Tensor } from "@llmq/tensor";

// The cached keys and values are token-major [T, KV·D] in llmq's forward and heads-major [KV, T, D] where
// compressed-tensors reduces or quantizes them per head ([batch, heads, seq, head_dim]).

/** Copies token-major rows [T, KV·D] to heads-major [KV, T, D] (`toHeads`) or back, into `out`. */
export const transposeHeads = <A extends Float32Array | Uint8Array | Int8Array>(x: A, tokens: number, kvHeads: number, d: number, toHeads: boolean, out: A): A => {
  for (let t = 0; t < tokens; t++)
    for (let h = 0; h < kvHeads; h++) {
      const tm = (t * kvHeads + h) * d;
      const hm = (h * tokens + t) * d;
      if (toHeads) out.set(x.subarray(tm, tm + d), hm);
      else out.set(x.subarray(hm, hm + d), tm);
    }
  return out;
};

/** A key or value state [T, KV·D] viewed heads-major [KV, T, D], as compressed-tensors sees [batch, heads, seq, dim]. */
export const headsMajor = (x: Tensor<"f32">, kvHeads: number, headDim: number): Tensor<"f32"> => {
  const tokens = x.shape[0]!;
  return new Tensor("f32", [kvHeads, tokens, headDim], transposeHeads(x.data, tokens, kvHeads, headDim, true, new Float32Array(x.size)));
};
