import * as E from "fp-ts/lib/Either.js";
import { Tensor, kernels } from "@llmq/tensor";
import { type GptqError, emptyCalibration, nonFiniteHessian, shapeMismatch } from "./errors.js";

// llm-compressor 0.14 (`gptq/helpers.py accumulate_hessian`) keeps an UNNORMALISED sum H = Σ (√2·X)ᵀ(√2·X) in f32
// plus a sample count, and divides once at quantization time (`prepare_batch`: hessian / num_samples). Older
// releases (≤ 0.8) kept a running average instead; the two agree up to rounding and the GPTQ update is invariant
// to scaling H, but matching 0.14 keeps our H bit-comparable with the version we test against.

// ----- model -----

/** A Hessian accumulator: `h` is the in×in f32 sum Σ 2·XᵀX, `nSamples` the number of sequences that made it. */
export interface HessianState {
  readonly h: Tensor<"f32">;
  readonly nSamples: number;
}

// ----- constructors -----

/** A zero in×in f32 accumulator (`make_empty_hessian`). */
export const emptyHessian = (n: number): HessianState => ({ h: new Tensor("f32", [n, n], new Float32Array(n * n)), nSamples: 0 });

// ----- accumulation -----

/** Rows and "samples" of one module input exactly as LC counts them: a sample is a sequence, not a token. */
const inputGeometry = (module: string, n: number, x: Tensor<"f32">): E.Either<GptqError, { rows: number; samples: number }> => {
  const s = x.shape;
  const last = s[s.length - 1];
  if (s.length < 1 || last !== n) return E.left(shapeMismatch(module, "activations (last dim = in_features)", [-1, n], s));
  // 2-D input is unsqueezed to a batch of one; ≥ 3-D is [B, …, in] with B samples (LC reshapes to (B, -1, in)).
  const samples = s.length <= 2 ? 1 : s[0]!;
  return E.right({ rows: x.size / n, samples });
};

/**
 * Adds one module-input batch into `h` IN PLACE (the pipeline's hot path; the caller owns `h`) and returns the new
 * sample count. Like LC: x is scaled by √2 (as an f32 multiply), then H += xᵀx in f32 (ssyrk kernel).
 */
export const accumulateHessianInPlace = (
  h: Tensor<"f32">,
  nSamples: number,
  x: Tensor<"f32">,
  module = "<module>",
): E.Either<GptqError, number> => {
  const n = h.shape[0] ?? 0;
  if (h.shape.length !== 2 || h.shape[1] !== n) return E.left(shapeMismatch(module, "hessian", [n, n], h.shape));
  return E.map(({ rows, samples }: { rows: number; samples: number }) => {
    const xs = new Float32Array(rows * n);
    kernels().scale(x.data, Math.SQRT2, xs.length, xs);
    kernels().ssyrk(rows, n, xs, h.data, 1);
    return nSamples + samples;
  })(inputGeometry(module, n, x));
};

/** Pure variant: returns a new accumulator, `state` is untouched. */
export const accumulateHessian = (state: HessianState, x: Tensor<"f32">, module = "<module>"): E.Either<GptqError, HessianState> => {
  const h = new Tensor("f32", state.h.shape, Float32Array.from(state.h.data));
  return E.map((nSamples: number) => ({ h, nSamples }))(accumulateHessianInPlace(h, state.nSamples, x, module));
};

/**
 * The Hessian GPTQ uses: H_sum / nSamples in f32 (LC `prepare_batch`). Typed errors for an empty calibration and
 * for NaN/Inf entries (LC would feed them to Cholesky and get garbage or an RTN fallback without saying why).
 */
export const normalizeHessian = (state: HessianState, module = "<module>"): E.Either<GptqError, Tensor<"f32">> => {
  if (!(state.nSamples > 0)) return E.left(emptyCalibration(module));
  const n = state.h.shape[0] ?? 0;
  const src = state.h.data;
  const out = new Float32Array(src.length);
  const d = Math.fround(state.nSamples);
  for (let i = 0; i < src.length; i++) {
    const v = src[i]!;
    if (!Number.isFinite(v)) return E.left(nonFiniteHessian(module, Math.floor(i / n), i % n, v));
    out[i] = v / d;
  }
  return E.right(new Tensor("f32", [n, n], out));
};
