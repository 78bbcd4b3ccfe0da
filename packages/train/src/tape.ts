import { kernels } from "@llmq/tensor";

// Reverse-mode autograd as a tape of closures: every differentiable op computes its value and, when an input needs a
// gradient, pushes the function that adds its inputs' gradients given its output's. `backward` seeds the scalar loss
// with 1 and runs the tape in reverse. Values are raw row-major f32 or f64 arrays (f64 for the gradient checks, f32 to
// train); an op's output has its inputs' precision. The hot products go through @llmq/tensor's GEMM kernel table.

// ----- model -----

export type Buf = Float32Array | Float64Array;

/** A value on the tape: its data, its shape, and its gradient once backward reached it (null before). */
export interface Var {
  readonly data: Buf;
  readonly shape: ReadonlyArray<number>;
  readonly needsGrad: boolean;
  grad: Buf | null;
}

/** The recorded backward steps of one forward pass, in forward order. */
export interface Tape {
  readonly steps: Array<() => void>;
}

// ----- constructors -----

export const newTape = (): Tape => ({ steps: [] });

/** A leaf that receives a gradient (a trainable parameter). */
export const param = (data: Buf, shape: ReadonlyArray<number>): Var => ({ data, shape, needsGrad: true, grad: null });

/** A leaf without a gradient (inputs, a frozen teacher's weights). */
export const constant = (data: Buf, shape: ReadonlyArray<number>): Var => ({ data, shape, needsGrad: false, grad: null });

/** A new array of the same precision as `like`. */
export const alloc = (like: Buf, n: number): Buf => (like instanceof Float64Array ? new Float64Array(n) : new Float32Array(n));

/** The gradient buffer of v, created as zeros on first use. */
export const gradOf = (v: Var): Buf => {
  if (v.grad === null) v.grad = alloc(v.data, v.data.length);
  return v.grad;
};

/** The output of an op and, if any input needs a gradient, its backward step (run once the output's gradient is known). */
export const record = (tape: Tape, inputs: ReadonlyArray<Var>, data: Buf, shape: ReadonlyArray<number>, back: (out: Var, g: Buf) => void): Var => {
  const needsGrad = inputs.some((v) => v.needsGrad);
  const out: Var = { data, shape, needsGrad, grad: null };
  if (needsGrad) tape.steps.push(() => (out.grad === null ? undefined : back(out, out.grad)));
  return out;
};

/** Runs the tape backwards from a scalar loss (its gradient seeded with 1). */
export const backward = (tape: Tape, loss: Var): void => {
  if (loss.data.length !== 1) throw new Error(`llmq internal: backward needs a scalar loss, got shape [${loss.shape}]`);
  gradOf(loss)[0] = 1;
  runBackward(tape);
};

/**
 * Runs a tape's steps in reverse with the gradients its outputs already hold: a tape whose outputs fed other tapes
 * (the fake-quantized weights shared by every window of a batch) runs once they have all added their gradients.
 */
export const runBackward = (tape: Tape): void => {
  for (let i = tape.steps.length - 1; i >= 0; i--) tape.steps[i]!();
};

/** C[m×n] = alpha · op(A) · op(B) + beta · C in A's precision, by the active backend's GEMM (native when built). */
export const gemm = (m: number, n: number, k: number, a: Buf, ta: boolean, b: Buf, tb: boolean, c: Buf, alpha: number, beta: number): void => {
  if (m === 0 || n === 0) return;
  if (a instanceof Float64Array) kernels().dgemm(m, n, k, a, ta, b as Float64Array, tb, c as Float64Array, alpha, beta);
  else kernels().sgemm(m, n, k, a, ta, b as Float32Array, tb, c as Float32Array, alpha, beta);
};
