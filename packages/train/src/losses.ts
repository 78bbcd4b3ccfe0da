import { type Buf, type Tape, type Var, alloc, gradOf, record } from "./tape.js";

// The training losses over logits [T, V], averaged over the T scored positions (nats per token), as torch's
// cross_entropy (reduction mean) and llmq eval's KL(reference ‖ model) define them.

/** log-softmax of one row into `out` (max-subtracted, in f64). */
const logSoftmaxRow = (x: ArrayLike<number>, o: number, v: number, out: Float64Array): void => {
  let m = -Infinity;
  for (let j = 0; j < v; j++) m = Math.max(m, x[o + j]!);
  let z = 0;
  for (let j = 0; j < v; j++) z += Math.exp(x[o + j]! - m);
  const lz = m + Math.log(z);
  for (let j = 0; j < v; j++) out[j] = x[o + j]! - lz;
};

const scalar = (like: Buf, x: number): Buf => {
  const out = alloc(like, 1);
  out[0] = x;
  return out;
};

/** Mean cross-entropy of logits [T, V] against target ids [T]; d logits = (softmax − onehot) / T. */
export const crossEntropy = (tape: Tape, logits: Var, targets: Int32Array): Var => {
  const [t, v] = [logits.shape[0]!, logits.shape[1]!];
  if (targets.length !== t) throw new Error(`llmq internal: ${targets.length} targets for ${t} positions`);
  const ls = new Float64Array(v);
  const probs = new Float64Array(t * v);
  let total = 0;
  for (let i = 0; i < t; i++) {
    logSoftmaxRow(logits.data, i * v, v, ls);
    total -= ls[targets[i]!]!;
    for (let j = 0; j < v; j++) probs[i * v + j] = Math.exp(ls[j]!);
  }
  return record(tape, [logits], scalar(logits.data, total / t), [], (_, g) => {
    const gl = gradOf(logits);
    const s = g[0]! / t;
    for (let i = 0; i < t; i++)
      for (let j = 0; j < v; j++) gl[i * v + j] = gl[i * v + j]! + s * (probs[i * v + j]! - (j === targets[i] ? 1 : 0));
  });
};

/**
 * Distillation loss: mean over positions of KL(teacher ‖ student) = Σ p (log p − log q), p = softmax(teacher), q =
 * softmax(student); d student logits = (q − p) / T. The teacher's logits are data, not on the tape.
 */
export const klDistillation = (tape: Tape, logits: Var, teacher: ArrayLike<number>): Var => {
  const [t, v] = [logits.shape[0]!, logits.shape[1]!];
  if (teacher.length !== t * v) throw new Error(`llmq internal: teacher logits have ${teacher.length} values for [${t}, ${v}]`);
  const lq = new Float64Array(v);
  const lp = new Float64Array(v);
  const diff = new Float64Array(t * v);
  let total = 0;
  for (let i = 0; i < t; i++) {
    logSoftmaxRow(logits.data, i * v, v, lq);
    logSoftmaxRow(teacher, i * v, v, lp);
    for (let j = 0; j < v; j++) {
      const p = Math.exp(lp[j]!);
      if (p > 0) total += p * (lp[j]! - lq[j]!);
      diff[i * v + j] = Math.exp(lq[j]!) - p;
    }
  }
  return record(tape, [logits], scalar(logits.data, total / t), [], (_, g) => {
    const gl = gradOf(logits);
    const s = g[0]! / t;
    for (let i = 0; i < t * v; i++) gl[i] = gl[i]! + s * diff[i]!;
  });
};

/** a·x + b·y of two scalars (a combined distillation + cross-entropy objective). */
export const weightedSum = (tape: Tape, x: Var, a: number, y: Var, b: number): Var =>
  record(tape, [x, y], scalar(x.data, a * x.data[0]! + b * y.data[0]!), [], (_, g) => {
    if (x.needsGrad) gradOf(x)[0] = gradOf(x)[0]! + a * g[0]!;
    if (y.needsGrad) gradOf(y)[0] = gradOf(y)[0]! + b * g[0]!;
  });
