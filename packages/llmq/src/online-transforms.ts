import { type LayerHooks, type ModelHandle, formatModelError } from "@llmq/models";
import type { OnlineTransform } from "@llmq/observers";
import type { TransformConfig } from "@llmq/schemes";
import { Tensor, kernels, toFloat32 } from "@llmq/tensor";
import { planRotations, rightMultiply } from "@llmq/transforms";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { type LlmqError, modelError } from "./errors.js";
import { modelInfo } from "./model-info.js";

// compressed-tensors' online transforms in llmq's forward: a linear's input (or output) becomes x · M / √n per block of
// n along the last axis, computed in the transform's precision (f64 by default) and cast back to f32, as CT's
// `(apply_transform_weight(weight, value.to(weight.dtype)) / scale).to(value.dtype)` does.

/** x [T, width] → x · blockdiag(M) / scale, in M's dtype, returned in f32. */
export const applyOnline = (t: OnlineTransform, x: Tensor<"f32">): E.Either<string, Tensor<"f32">> => {
  const width = x.shape[x.rank - 1]!;
  if (width % t.n !== 0) return E.left(`${t.name}: a ${t.n}×${t.n} transform cannot act on width ${width}`);
  const rows = x.size / t.n;
  const out = new Float32Array(x.size);
  if (t.matrix instanceof Float64Array && t.structure !== undefined) {
    // a Hadamard matrix: the fast transform (the same products as the GEMM, summed in butterfly order)
    const y = rightMultiply(Float64Array.from(x.data), rows, t.n, { n: t.n, data: t.matrix, scale: t.scale, structure: t.structure });
    out.set(y);
  } else if (t.matrix instanceof Float64Array) {
    const y = new Float64Array(x.size);
    kernels().dgemm(rows, t.n, t.n, Float64Array.from(x.data), false, t.matrix, false, y, 1, 0);
    for (let i = 0; i < y.length; i++) out[i] = y[i]! / t.scale;
  } else {
    kernels().sgemm(rows, t.n, t.n, x.data, false, t.matrix, false, out, 1, 0);
    const s = Math.fround(t.scale);
    for (let i = 0; i < out.length; i++) out[i] = out[i]! / s;
  }
  return E.right(new Tensor("f32", x.shape, out));
};

const applyAll = (ts: ReadonlyArray<OnlineTransform>, x: Tensor<"f32">): E.Either<string, Tensor<"f32">> =>
  ts.reduce((acc: E.Either<string, Tensor<"f32">>, t) => E.flatMap(acc, (v) => applyOnline(t, v)), E.right(x));

const sameTransforms = (a: ReadonlyArray<OnlineTransform>, b: ReadonlyArray<OnlineTransform>): boolean =>
  a.length === b.length && a.every((t, i) => t.matrix === b[i]!.matrix && t.scale === b[i]!.scale);

/**
 * Hooks applying the online transforms of a layer's linears (local name → transforms). Linears fed the same tensor
 * must share their input transforms (they do for SpinQuant and QuIP: one matrix per scheme and size).
 */
export const onlineHooks = (online: ReadonlyMap<string, ReadonlyArray<OnlineTransform>> | undefined): LayerHooks | undefined => {
  if (online === undefined || online.size === 0) return undefined;
  const inputs = (local: string): ReadonlyArray<OnlineTransform> => (online.get(local) ?? []).filter((t) => t.location === "input");
  const outputs = (local: string): ReadonlyArray<OnlineTransform> => (online.get(local) ?? []).filter((t) => t.location === "output");
  return {
    transformGroupInput: (modules, x) => {
      const first = inputs(modules[0]!);
      const odd = modules.find((m) => !sameTransforms(inputs(m), first));
      if (odd !== undefined) return E.left(`${odd} and ${modules[0]} read the same tensor but have different online input transforms, which llmq cannot run`);
      return first.length === 0 ? E.right(x) : applyAll(first, x);
    },
    transformLinearOutput: (local, y) => {
      const ts = outputs(local);
      return ts.length === 0 ? E.right(y) : applyAll(ts, y);
    },
    // SpinQuant R3: the attention module's q_attn / k_cache transforms, per head (block = head_dim)
    transformQueryKey: (q, k) => {
      const at = online.get("self_attn") ?? [];
      const qs = at.filter((t) => t.location === "q_attn");
      const ks = at.filter((t) => t.location === "k_cache");
      return E.flatMap(applyAll(qs, q), (qr) => E.map((kr: Tensor<"f32">) => ({ q: qr, k: kr }))(applyAll(ks, k)));
    },
  };
};

/** Hooks of disjoint concerns side by side (online transforms, input quantization, taps: each sets its own fields). */
export const mergeHooks = (...hs: ReadonlyArray<LayerHooks | undefined>): LayerHooks | undefined => {
  const present = hs.filter((h): h is LayerHooks => h !== undefined);
  return present.length === 0 ? undefined : Object.assign({}, ...present);
};

// ----- from a checkpoint -----

const tensorMatrix = (t: Tensor, n: number, transposed: boolean): Float64Array | Float32Array => {
  const src = t.dtype === "f64" ? (t.data as Float64Array) : toFloat32(t).data;
  if (!transposed) return src;
  const out = src instanceof Float64Array ? new Float64Array(n * n) : new Float32Array(n * n);
  for (let i = 0; i < n; i++) for (let j = 0; j < n; j++) out[j * n + i] = src[i * n + j]!;
  return out;
};

/**
 * The online transforms of a saved model (full module name → transforms), from its `transform_config` and the transform
 * weights it stores (shared ones once, under the first module), as compressed-tensors / vLLM rebuild them at load.
 */
export const onlineTransformsOf = (h: ModelHandle, tc: TransformConfig): TE.TaskEither<LlmqError, ReadonlyMap<string, ReadonlyArray<OnlineTransform>>> => async () => {
  const plan = planRotations(tc, modelInfo(h));
  if (E.isLeft(plan)) return E.left(modelError(`${h.dir}: transform_config: ${plan.left}`));
  const cache = new Map<string, Float64Array | Float32Array>();
  const out = new Map<string, ReadonlyArray<OnlineTransform>>();
  for (const [module, ts] of plan.right.online) {
    const list: OnlineTransform[] = [];
    for (const t of ts) {
      const src = t.source!;
      const key = `${src.tensor}|${src.transposed}`;
      if (!cache.has(key)) {
        const info = h.tensorInfo(src.tensor);
        if (info === undefined) return E.left(modelError(`${h.dir}: transform_config applies ${t.name} to ${module}, but the checkpoint has no ${src.tensor}`));
        if (info.shape.length !== 2 || info.shape[0] !== t.n || info.shape[1] !== t.n)
          return E.left(modelError(`${h.dir}: ${src.tensor} has shape [${info.shape.join(", ")}], expected [${t.n}, ${t.n}]`));
        const r = await h.readTensor(src.tensor)();
        if (E.isLeft(r)) return E.left(modelError(formatModelError(r.left)));
        cache.set(key, tensorMatrix(r.right, t.n, src.transposed));
      }
      const m = cache.get(key)!;
      // the fast path only where the saved weight is the matrix compressed-tensors' factory draws (it is unless edited)
      const same = m.length === t.matrix.length && m.every((v, i) => v === t.matrix[i]);
      const { structure, ...dense } = t;
      list.push(same && structure !== undefined ? { ...t, matrix: m } : { ...dense, matrix: m });
    }
    out.set(module, list);
  }
  return E.right(out);
};
