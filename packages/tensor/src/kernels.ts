// ----- model -----

/**
 * The hot kernels, on raw row-major typed arrays. Every backend implements this table; the `js` one is the
 * executable spec, `native` must agree with it within the tolerance the conformance suite states per kernel.
 * Kernels trust their arguments (sizes are checked by the Tensor-level ops and, for `native`, again at the N-API
 * boundary); they never allocate their outputs.
 */
export interface KernelSignatures {
  /**
   * C[m×n] = alpha · op(A) · op(B) + beta · C. A is m×k (k×m when transA), B is k×n (n×k when transB).
   * beta = 0 overwrites C (NaN in C does not leak).
   */
  readonly sgemm: (
    m: number,
    n: number,
    k: number,
    a: Float32Array,
    transA: boolean,
    b: Float32Array,
    transB: boolean,
    c: Float32Array,
    alpha: number,
    beta: number,
  ) => void;
  readonly dgemm: (
    m: number,
    n: number,
    k: number,
    a: Float64Array,
    transA: boolean,
    b: Float64Array,
    transB: boolean,
    c: Float64Array,
    alpha: number,
    beta: number,
  ) => void;
  /** H[n×n] += alpha · Xᵀ X for X of m×n, without forming Xᵀ; the full symmetric H is updated. */
  readonly ssyrk: (m: number, n: number, x: Float32Array, h: Float32Array, alpha: number) => void;
  readonly dsyrk: (m: number, n: number, x: Float64Array, h: Float64Array, alpha: number) => void;
  /**
   * In-place lower Cholesky A = L Lᵀ of an n×n SPD matrix: the lower triangle becomes L, the strict upper triangle
   * is zeroed. Returns -1 on success or the index of the first pivot that is not > 0 (A is then partly overwritten).
   */
  readonly spotrf: (a: Float32Array, n: number) => number;
  readonly dpotrf: (a: Float64Array, n: number) => number;
  /** Given the lower Cholesky factor L of A (in place), writes the full symmetric A⁻¹ over it. */
  readonly spotri: (l: Float32Array, n: number) => void;
  readonly dpotri: (l: Float64Array, n: number) => void;
  /**
   * Triangular solve, B (m×n) overwritten in place: side "left" solves op(T) X = B (T is m×m),
   * side "right" solves X op(T) = B (T is n×n). T's other triangle is ignored.
   */
  readonly strsm: (side: Side, uplo: Uplo, transT: boolean, unitDiag: boolean, m: number, n: number, t: Float32Array, b: Float32Array) => void;
  readonly dtrsm: (side: Side, uplo: Uplo, transT: boolean, unitDiag: boolean, m: number, n: number, t: Float64Array, b: Float64Array) => void;
  /** In-place unnormalised fast Walsh–Hadamard transform (Sylvester order) of each of `rows` rows of length n = 2^p. */
  readonly fwht: (x: Float32Array, rows: number, n: number) => void;
  /** The same in f64 (exact: every output is the same single f64 add / subtract as the js twin). */
  readonly dfwht: (x: Float64Array, rows: number, n: number) => void;
  /**
   * Per-group min and max along the last axis: x is rows×cols, groups of `groupSize` consecutive columns
   * (groupSize = cols for per-row). Outputs are rows×(cols/groupSize). NaN propagates like torch.amin/amax.
   */
  readonly groupMinMax: (x: Float32Array, rows: number, cols: number, groupSize: number, outMin: Float32Array, outMax: Float32Array) => void;
  /**
   * Integer (or integer-grid) quantization in f32 arithmetic exactly as compressed-tensors orders it:
   * q = round_half_even(clamp(x / s + zp, qmin, qmax)); `fake` writes (q − zp) · s, otherwise q.
   * x is rows×cols; scale and zp are rows×(cols/groupSize); zp may be null (symmetric).
   * Every intermediate is rounded to f32, so the result is bit-identical to torch on f32 tensors.
   */
  readonly quantizeGroups: (
    x: Float32Array,
    rows: number,
    cols: number,
    groupSize: number,
    scale: Float32Array,
    zp: Float32Array | null,
    qmin: number,
    qmax: number,
    fake: boolean,
    out: Float32Array,
  ) => void;
  /**
   * Table dequantization of byte codes (fp8 / int8 KV-cache rows read back): out[i] = f32(f32(lut[codes[i]] − zp[s]) ·
   * scale[s]) with s = ⌊i / groupSize⌋ mod scales.length (one scale per row, per head, or one for all); zp null = 0 and
   * no subtraction. Exact: the same two f32 operations as the reference.
   */
  readonly lutDequant: (codes: Uint8Array, lut: Float32Array, scale: Float32Array, zp: Float32Array | null, groupSize: number, scales: number, out: Float32Array) => void;
  /** SiLU-gated product of the Llama MLP: out = f32(f32(g / f32(1 + f32(exp(−g)))) · u), exp = `expF64`, elementwise. */
  readonly siluMul: (gate: Float32Array, up: Float32Array, n: number, out: Float32Array) => void;
  /**
   * Causal (optionally sliding-window) grouped-query attention of one sequence: q [T, H·D] holds the queries of positions
   * past..past+T−1, k and v [past+T, KV·D] the keys (after RoPE) and values of positions 0..past+T−1 (a KV cache plus
   * the new tokens) → out [T, H·D]. Per head: scores = scale · q_h k_gᵀ by sgemm; each row's softmax over its window
   * (max in f32, e = f32(expF64(s − max)) with the difference in f64, Σe in f64 over 8 interleaved lanes (`lanes8Sum`),
   * p = f32(e · (1 / f32(Σe)))), masked entries exactly 0; out_h = P v_g by sgemm (the native kernel skips the masked
   * blocks and computes by query blocks, so its sgemms round differently). window 0 = no window. Heads are independent (threads split them), so
   * the result does not depend on the thread count.
   */
  readonly causalAttention: (
    q: Float32Array,
    k: Float32Array,
    v: Float32Array,
    tokens: number,
    past: number,
    heads: number,
    kvHeads: number,
    headDim: number,
    window: number,
    scale: number,
    out: Float32Array,
  ) => void;
  /**
   * HF LlamaRMSNorm of each of `rows` rows: variance = f32(Σ x² / cols), the squares exact and the sum in f64 over 8
   * interleaved lanes, inv = f32(1 / √f32(variance + eps)) with eps in f64, out = f32(w · f32(x · inv)). Exact (the
   * same bits on every backend). These roundings reproduce llm-compressor's GPTQ codes bit for bit in the interop
   * checks (rounding x² or eps to f32 first does not, on the rotated tiny Llama).
   */
  readonly rmsNorm: (x: Float32Array, rows: number, cols: number, weight: Float32Array, eps: number, out: Float32Array) => void;
  /**
   * Rotate-half rotary embedding in place on x [tokens, heads·dim] (HF Llama: pairs i, i + dim/2), cos and sin
   * [tokens, dim/2]: (x1, x2) ← (f32(x1·c) − f32(x2·s), f32(x2·c) + f32(x1·s)) in f32. Exact.
   */
  readonly rope: (x: Float32Array, tokens: number, heads: number, dim: number, cos: Float32Array, sin: Float32Array) => void;
  /** out = a + b elementwise in f32 (the residual adds). Exact. */
  readonly add: (a: Float32Array, b: Float32Array, n: number, out: Float32Array) => void;
  /** out = f32(a · f32(s)) elementwise. Exact. */
  readonly scale: (a: Float32Array, s: number, n: number, out: Float32Array) => void;
  /**
   * Evaluation statistics of `rows` logit rows [rows, vocab] (llama.cpp's perplexity / KL methodology, all in f64):
   * lse = max + log Σ expF64(l − max) (the sum over 8 lanes); out[4r] = lse − l[target] (the nll), and with a
   * reference row lr: out[4r+1] its nll, out[4r+2] = max(0, Σ p·(lpᵣ − lp)) with p = expF64(lpᵣ) over p > 0 (KL(ref ‖
   * model)), out[4r+3] = 1 when both first argmaxes agree, else 0; without a reference those three are 0. Native and
   * js agree to ~1e-15 relative (`log` is the platform's).
   */
  readonly logitStats: (logits: Float32Array, refLogits: Float32Array | null, rows: number, vocab: number, targets: Int32Array, out: Float64Array) => void;
}

export type Side = "left" | "right";
export type Uplo = "lower" | "upper";
export type KernelName = keyof KernelSignatures;
export type BackendName = "js" | "native";
export type Kernels = KernelSignatures;
