import { fusedGlobalScales } from "@llmq/observers";
import type { ModifierError } from "@llmq/observers";
import { modifierError } from "@llmq/observers";
import { type QuantizationArgs, formatSchemeError, rtnFakeQuantizeWeight } from "@llmq/schemes";
import { type Tensor, roundToDType, toFloat32 } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LayerFloatDType, divideColumns, floatDTypeOf, scaleColumns } from "./apply-smoothing.js";
import { torchPow } from "./torch-pow.js";

// AWQ's grid search for one mapping (llm-compressor 0.14 `AWQModifier._compute_best_scale`), as pure functions of
// the balance weights, the mean input magnitude and a forward of the mapping's parent module on its cached inputs.
// For each grid point (ratio, duo): s = x̄^r / (w̄^(1−r) + 1e-4) (duo) or x̄^r, clamped at 1e-4 and normalised by
// √(max·min); the quantized balance layers get Q(W·s)/s with memoryless min-max qparams (and the fused NVFP4 global
// scale of their parent); the loss is the mean squared error of the parent's output against its output with the
// weights as they were, over every calibration batch; the strict minimum wins. Arithmetic follows torch's dtypes:
// x̄ is f32, w̄ f64 (so duo scales are f64, the others f32), weights round to their own dtype after each step.

// ----- model -----

export type DuoScaling = boolean | "both";

/**
 * How a grid point's loss is summed. "llm-compressor" (0.14's `_compute_loss`): each batch's
 * `mse_loss(reduction="sum")` is a number in the outputs' dtype — a float16 sum past 65504 is inf — added up in f32.
 * "autoawq" (AutoAWQ's `_compute_loss`): the squares are summed in f32 (`.float().pow(2).sum()`) and added up in a
 * Python float, so a float16 model cannot overflow it.
 */
export type AwqLoss = "llm-compressor" | "autoawq";

/** A balance layer of the mapping: its weight as it is now and the weight args of the scheme that will quantize it. */
export interface BalanceLayer {
  readonly local: string;
  readonly name: string;
  readonly weight: Tensor;
  /** null when no modifier quantizes it (LC leaves such a layer unscaled during the search). */
  readonly args: QuantizationArgs | null;
}

export interface AwqSearch {
  readonly balance: ReadonlyArray<BalanceLayer>;
  /** Mean |x| per input channel over every calibration token (f32). */
  readonly xMean: Float32Array;
  readonly duoScaling: DuoScaling;
  readonly nGrid: number;
  readonly fusedGroups: ReadonlyArray<ReadonlyArray<string>>;
  /** The parent's cached inputs, one per calibration batch. */
  readonly inputs: ReadonlyArray<Tensor<"f32">>;
  /**
   * The parent module with the balance weights replaced by these (f32 values, local names), as a forward over one
   * input: built once per grid point, run on every batch.
   */
  readonly parent: (balance: ReadonlyMap<string, Tensor<"f32">>) => (x: Tensor<"f32">) => E.Either<string, Tensor<"f32">>;
  /** The dtype the parent's outputs have in the model (torch's mse_loss of a bf16 batch is a bf16 number). */
  readonly outputDType: LayerFloatDType;
  /** llm-compressor's loss when absent. */
  readonly loss?: AwqLoss;
  /** Called after each grid point (progress). */
  readonly onGridPoint?: (done: number, total: number) => void;
}

export interface GridPoint {
  readonly ratio: number;
  readonly duoScaling: boolean;
  readonly loss: number;
}

export interface AwqResult {
  /** The best scales, f64 values (duo) or f32 values. */
  readonly scales: Float64Array;
  readonly ratio: number;
  readonly duoScaling: boolean;
  readonly loss: number;
  readonly initialLoss: number;
  readonly history: ReadonlyArray<GridPoint>;
}

// ----- algorithms -----

/** `_get_grid_search_params`: the (ratio, duo) points in LC's order. */
export const awqGrid = (duo: DuoScaling, nGrid: number): ReadonlyArray<readonly [number, boolean]> => {
  if (duo === "both") {
    const n = Math.trunc(nGrid / 2);
    return Array.from({ length: n }, (_, k) => [false, true].map((d) => [k / (n - 1), d] as const)).flat();
  }
  if (duo === false) return Array.from({ length: nGrid }, (_, k) => [k / (nGrid - 1), false] as const);
  return [[0, false] as const, ...Array.from({ length: nGrid - 1 }, (_, k) => [k / (nGrid - 2), true] as const)];
};

/** Per-chunk size of a weight strategy (the elements quantized together), for `_compute_layer_means`. */
const chunkOf = (args: QuantizationArgs, rows: number, cols: number): number | null =>
  args.strategy === "tensor" ? rows * cols : args.strategy === "channel" ? cols : args.strategy === "group" || args.strategy === "tensor_group" ? args.group_size : null;

/**
 * `_compute_layer_means`: |W| normalised by its chunk's max + 1e-6 (in the weight's dtype), summed over output rows
 * in f64 across every balance layer, divided by the total row count.
 */
export const awqWeightMean = (balance: ReadonlyArray<BalanceLayer>): E.Either<string, Float64Array> => {
  let total: Float64Array | null = null;
  let rowsTotal = 0;
  for (const b of balance) {
    if (b.args === null) continue;
    const [rows, cols] = b.weight.shape as [number, number];
    const dtype = floatDTypeOf(b.weight);
    const r = (v: number) => roundToDType(dtype, v);
    const x = toFloat32(b.weight).data;
    total ??= new Float64Array(cols);
    if (b.args.strategy === "block") {
      const [bh, bw] = b.args.block_structure as [number, number];
      for (let r0 = 0; r0 < rows; r0 += bh)
        for (let c0 = 0; c0 < cols; c0 += bw) {
          let m = 0;
          for (let i = r0; i < Math.min(rows, r0 + bh); i++) for (let j = c0; j < Math.min(cols, c0 + bw); j++) m = Math.max(m, Math.abs(x[i * cols + j]!));
          const d = r(m + 1e-6);
          for (let i = r0; i < Math.min(rows, r0 + bh); i++) for (let j = c0; j < Math.min(cols, c0 + bw); j++) total[j] = total[j]! + r(Math.abs(x[i * cols + j]!) / d);
        }
    } else {
      const chunk = chunkOf(b.args, rows, cols);
      if (chunk === null || chunk <= 0 || (rows * cols) % chunk !== 0) return E.left(`cannot take the weight mean of ${b.name} with strategy ${b.args.strategy}`);
      for (let c = 0; c < rows * cols; c += chunk) {
        let m = 0;
        for (let i = c; i < c + chunk; i++) m = Math.max(m, Math.abs(x[i]!));
        const d = r(m + 1e-6);
        for (let i = c; i < c + chunk; i++) total[i % cols] = total[i % cols]! + r(Math.abs(x[i]!) / d);
      }
    }
    rowsTotal += rows;
  }
  if (total === null) return E.left("no balance layer is quantized");
  return E.right(total.map((v) => v / rowsTotal));
};

/** The scales of one grid point, normalised by √(max·min); non-finite entries become 1. */
export const awqScales = (xMean: Float32Array, wMean: Float64Array | null, ratio: number, duo: boolean): Float64Array => {
  const n = xMean.length;
  const s = new Float64Array(n);
  // Duo scales are f64 (x̄^r is f32, promoted by w̄'s f64); the others stay f32.
  const r = duo ? (v: number) => v : Math.fround;
  for (let j = 0; j < n; j++) {
    const xp = Math.fround(torchPow(xMean[j]!, ratio, "f32"));
    s[j] = duo ? Math.max(xp / (torchPow(wMean![j]!, 1 - ratio, "f64") + 1e-4), 1e-4) : Math.max(xp, Math.fround(1e-4));
  }
  let max = Number.NEGATIVE_INFINITY;
  let min = Number.POSITIVE_INFINITY;
  for (const v of s) {
    if (Number.isNaN(v)) {
      max = Number.NaN;
      min = Number.NaN;
      break;
    }
    if (v > max) max = v;
    if (v < min) min = v;
  }
  const d = r(Math.sqrt(r(max * min)));
  for (let j = 0; j < n; j++) {
    const v = r(s[j]! / d);
    s[j] = Number.isFinite(v) ? v : 1;
  }
  return s;
};

/** (fake-quantized W·s) / s in the weight's dtype, for each quantized balance layer; the others as they are. */
const scaledQuantized = (search: AwqSearch, s: Float64Array): E.Either<ModifierError, ReadonlyMap<string, Tensor<"f32">>> => {
  const scaled = search.balance.map((b) => ({ ...b, weight: b.args === null ? b.weight : scaleColumns(b.weight, s) }));
  const fused = fusedGlobalScales(
    scaled.map((b) => ({ name: b.name, local: b.local, weight: b.weight, args: b.args })),
    search.fusedGroups,
  );
  if (E.isLeft(fused)) return fused;
  const out = new Map<string, Tensor<"f32">>();
  for (const b of scaled) {
    if (b.args === null) {
      out.set(b.local, toFloat32(b.weight));
      continue;
    }
    const g = fused.right.get(b.name);
    const q = rtnFakeQuantizeWeight(b.weight, b.args, { name: `${b.name}.weight`, ...(g !== undefined ? { globalScale: g } : {}) });
    if (E.isLeft(q)) return E.left(modifierError("AWQModifier", b.name, formatSchemeError(q.left), q.left));
    out.set(b.local, toFloat32(divideColumns(q.right, s, b.weight.dtype)));
  }
  return E.right(out);
};

/** Σ (a − b)² of one batch, rounded to the outputs' dtype as torch's mse_loss(reduction="sum") returns it. */
const sumSquares = (a: Tensor<"f32">, b: Tensor<"f32">, dtype: LayerFloatDType): number => {
  let s = 0;
  for (let i = 0; i < a.data.length; i++) {
    const d = a.data[i]! - b.data[i]!;
    s += d * d;
  }
  return roundToDType(dtype, s);
};

/** `_compute_loss`: Σ over batches / element count, in f32 (llm-compressor) or f64 (AutoAWQ's Python float). */
const lossOver = (search: AwqSearch, weights: ReadonlyMap<string, Tensor<"f32">>, reference: ReadonlyArray<Tensor<"f32">>, mapping: string): E.Either<ModifierError, number> => {
  const lc = (search.loss ?? "llm-compressor") === "llm-compressor";
  const total = lc ? Math.fround : (v: number) => v;
  const forward = search.parent(weights);
  let loss = 0;
  let count = 0;
  for (const [i, x] of search.inputs.entries()) {
    const y = forward(x);
    if (E.isLeft(y)) return E.left(modifierError("AWQModifier", mapping, y.left));
    loss = total(loss + sumSquares(reference[i]!, y.right, lc ? search.outputDType : "f32"));
    count += y.right.size;
  }
  return E.right(total(loss / count));
};

/** The parent's outputs with the weights as they are: null when some output is not finite (LC skips the mapping). */
export const referenceOutputs = (search: AwqSearch, mapping: string): E.Either<ModifierError, ReadonlyArray<Tensor<"f32">> | null> => {
  const forward = search.parent(new Map(search.balance.map((b) => [b.local, toFloat32(b.weight)] as const)));
  const out: Tensor<"f32">[] = [];
  for (const x of search.inputs) {
    const y = forward(x);
    if (E.isLeft(y)) return E.left(modifierError("AWQModifier", mapping, y.left));
    if (!y.right.data.every(Number.isFinite)) return E.right(null);
    out.push(y.right);
  }
  return E.right(out);
};

/** Why no grid point won: every loss +inf in a 16-bit model is a batch's squared error past the dtype's range. */
const noFiniteLoss = (search: AwqSearch, history: ReadonlyArray<GridPoint>): string =>
  (search.loss ?? "llm-compressor") === "llm-compressor" && search.outputDType === "f16" && history.every((h) => h.loss === Number.POSITIVE_INFINITY)
    ? "no finite loss was found in the grid search: every grid point's loss is inf, because some batch's summed squared error passed float16's range (65504) — llm-compressor 0.14 sums it in the model's dtype, and fails the same way; quantize a bfloat16 or float32 copy of the model, or use shorter calibration windows"
    : "no finite loss was found in the grid search (NaN values in the forward pass of the parent module, or mappings that do not fit the model)";

/** One macrotask: lets a signal handler run between two grid points (the search can take minutes per layer). */
const yieldToEventLoop = (): Promise<void> => new Promise((resolve) => setTimeout(resolve, 0));

/**
 * The grid search of one mapping against its reference outputs. It yields to the event loop between grid points and
 * stops with a Left when `signal` is aborted.
 */
export const awqSearch = async (
  search: AwqSearch,
  reference: ReadonlyArray<Tensor<"f32">>,
  mapping: string,
  signal?: AbortSignal,
): Promise<E.Either<ModifierError, AwqResult>> => {
  const wMean = search.duoScaling === false ? E.right(null) : awqWeightMean(search.balance);
  if (E.isLeft(wMean)) return E.left(modifierError("AWQModifier", mapping, wMean.left));
  const grid = awqGrid(search.duoScaling, search.nGrid);
  const history: GridPoint[] = [];
  let best: { scales: Float64Array; ratio: number; duo: boolean; loss: number } | null = null;
  for (const [k, [ratio, duo]] of grid.entries()) {
    const s = awqScales(search.xMean, wMean.right, ratio, duo);
    const loss = E.chain((w: ReadonlyMap<string, Tensor<"f32">>) => lossOver(search, w, reference, mapping))(scaledQuantized(search, s));
    if (E.isLeft(loss)) return loss;
    history.push({ ratio, duoScaling: duo, loss: loss.right });
    if (loss.right < (best?.loss ?? Number.POSITIVE_INFINITY)) best = { scales: s, ratio, duo, loss: loss.right };
    search.onGridPoint?.(k + 1, grid.length);
    await yieldToEventLoop();
    if (signal?.aborted) return E.left(modifierError("AWQModifier", mapping, "interrupted"));
  }
  if (best === null) return E.left(modifierError("AWQModifier", mapping, noFiniteLoss(search, history)));
  return E.right({ scales: best.scales, ratio: best.ratio, duoScaling: best.duo, loss: best.loss, initialLoss: history[0]!.loss, history });
};
