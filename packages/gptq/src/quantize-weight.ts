import type { ScaleDType, WeightQParams } from "@llmq/observers";
import { type QuantizationArgs, quantize } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type DType, Tensor, cast, castFromNumbers, kernels, roundHalfEven, roundToDType, toFloat64 } from "@llmq/tensor";
import {
  type GptqError,
  groupSizeMismatch,
  invalidOption,
  nonFiniteHessian,
  nonFiniteWeight,
  qparamsFailed,
  shapeMismatch,
  unsupportedArgs,
} from "./errors.js";
import { factorizeHessianInPlace } from "./factorize-hessian.js";
import { type WasmUpdate, defaultThreads, panelRunner, wasmForMain } from "./int-panel-kernel.js";

// The GPTQ math of llm-compressor 0.14 (`modifiers/gptq/gptq_quantize.py quantize_weight` + `helpers.py`), for one
// module on the CPU. Every elementwise step is an f32 operation in the same order as LC's eager torch path, so the
// only differences from torch come from the summation order inside the BLAS/LAPACK-shaped kernels (Cholesky,
// inverse, the trailing block GEMM); the fixtures measure how often that flips a code.

// ----- model -----

/** The weight args (compressed-tensors `QuantizationArgs`, decoded by @llmq/schemes). */
export type GptqArgs = QuantizationArgs;

// Weight qparams as the observer produced them (LC: `weight_observer.get_qparams()` on the ORIGINAL weight, before any
// GPTQ update); defined by @llmq/observers, which runs the weight observers.
export type { ScaleDType, WeightQParams };

/** Computes qparams for a weight (an observer). Returns a message on failure. */
export type ObserveWeight = (weight: Tensor<"f32" | "f16" | "bf16">) => E.Either<string, WeightQParams>;

/** "weight" ≡ "static"; "group" ≡ "dynamic" (removed in compressed-tensors 0.20; kept here as an extension). */
export type ResolvedActorder = "weight" | "group" | null;

export interface QuantizeWeightOptions {
  /** Columns per lazy-update block (LC `block_size`, default 128). */
  readonly blockSize?: number;
  /** Damping as a fraction of the mean Hessian diagonal (LC `dampening_frac`, default 0.01). */
  readonly dampeningFrac?: number;
  /** Overrides `args.actorder` when present (the modifier-level value, already resolved by the caller). */
  readonly actorder?: string | null;
  /** Precomputed qparams of the original weight. Required unless `observe` is given. */
  readonly qparams?: WeightQParams;
  /** Observer used when `qparams` is absent, and for actorder "group" (which observes the permuted weight). */
  readonly observe?: ObserveWeight;
  /**
   * The dtype the module stores its weight in (f16 / bf16; default f32): actorder "group" observes the permuted weight
   * in it, as the other orders observe the original, so a half-precision model gets scales in its own dtype.
   */
  readonly weightDType?: "f32" | "f16" | "bf16";
  /** Module name for errors and warnings. */
  readonly module?: string;
  /** Threads for the column loop (int grids): default LLMQ_THREADS or the CPU count. Results do not depend on it. */
  readonly threads?: number;
}

export type CodeDType = "i8" | "i16" | "i32" | "f8_e4m3fn" | "f4_e2m1";

export interface GptqResult {
  /** The integer (or fp8/fp4) codes, [rows, cols] in original column order; CT `quantize(fakeQuantized, scale, zp)`. */
  readonly quantized: Tensor<CodeDType>;
  readonly scale: Tensor<ScaleDType>;
  readonly zeroPoint: Tensor | null;
  readonly globalScale: Tensor<"f32"> | null;
  /** Column → group index, only for actorder "group" (`weight_g_idx`, int32 [cols]). */
  readonly gIdx: Tensor<"i32"> | null;
  /** LC's reported loss: Σ over all weights of ((w − q) / Hinv[i,i])² / 2. */
  readonly loss: number;
  /** The GPTQ-updated, fake-quantized weight (what LC writes back into the module), f32 [rows, cols]. */
  readonly fakeQuantized: Tensor<"f32">;
  readonly actorder: ResolvedActorder;
  readonly usedRtnFallback: boolean;
  readonly deadColumns: number;
  readonly warnings: ReadonlyArray<string>;
  /** Wall seconds per phase (for the bench report): checks/permutation/qparams, factorization, in-block column loop, trailing GEMM updates, un-permutation/outputs; and the column-loop threads. */
  readonly timings: {
    readonly prepare: number;
    readonly factorize: number;
    readonly columns: number;
    readonly trailing: number;
    readonly finish: number;
    readonly threads: number;
    /** Whether the column update ran as WebAssembly SIMD. */
    readonly simd: boolean;
  };
}

// ----- validation -----

const STRATEGIES = ["tensor", "channel", "group", "tensor_group", "block"] as const;
type WeightStrategy = (typeof STRATEGIES)[number];

interface Layout {
  readonly strategy: WeightStrategy;
  /** Expected scale shape. */
  readonly scaleShape: readonly [number] | readonly [number, number];
  /** Divisor mapping a column to its scale column (group size / block cols), 0 for tensor/channel. */
  readonly colDiv: number;
  /** Rows per scale row: 0 → one scale row (tensor), 1 → per row, bh → per block row. */
  readonly rowDiv: number;
}

const resolveActorder = (module: string, a: string | null | undefined, strategy: WeightStrategy): E.Either<GptqError, ResolvedActorder> => {
  if (a == null) return E.right(null);
  switch (a.toLowerCase()) {
    case "weight":
    case "static":
      return E.right("weight");
    case "group":
    case "dynamic":
      return strategy === "group" || strategy === "tensor_group"
        ? E.right("group")
        : E.left(unsupportedArgs(module, "actorder (with strategy " + strategy + ")", a, ["weight", "static", "null"]));
    default:
      return E.left(unsupportedArgs(module, "actorder", a, ["weight", "static", "group", "dynamic", "null"]));
  }
};

const layoutOf = (module: string, args: GptqArgs, rows: number, cols: number): E.Either<GptqError, Layout> => {
  const strategy = args.strategy as WeightStrategy;
  if (!STRATEGIES.includes(strategy)) return E.left(unsupportedArgs(module, "weights.strategy", String(args.strategy), STRATEGIES));
  switch (strategy) {
    case "tensor":
      return E.right({ strategy, scaleShape: [1], colDiv: 0, rowDiv: 0 });
    case "channel":
      return E.right({ strategy, scaleShape: [rows, 1], colDiv: 0, rowDiv: 1 });
    case "group":
    case "tensor_group": {
      const gs = args.group_size ?? 0;
      if (!(gs > 0) || cols % gs !== 0) return E.left(groupSizeMismatch(module, "weights.group_size", cols, gs));
      return E.right({ strategy, scaleShape: [rows, cols / gs], colDiv: gs, rowDiv: 1 });
    }
    case "block": {
      const bs = args.block_structure;
      if (!bs || !(bs[0] > 0) || !(bs[1] > 0)) return E.left(invalidOption(module, "weights.block_structure", "block strategy needs [rows, cols] of positive ints"));
      return E.right({ strategy, scaleShape: [Math.ceil(rows / bs[0]), Math.ceil(cols / bs[1])], colDiv: bs[1], rowDiv: bs[0] });
    }
  }
};

interface Grid {
  readonly qmin: number;
  readonly qmax: number;
  readonly round: (y: number) => number;
  readonly codeDType: CodeDType;
}

const gridOf = (module: string, args: GptqArgs): E.Either<GptqError, Grid> => {
  const b = args.num_bits;
  if (args.type === "int") {
    if (!Number.isInteger(b) || b < 2 || b > 32) return E.left(unsupportedArgs(module, "weights.num_bits", String(b), ["2..32 for int"]));
    return E.right({ qmin: -(2 ** (b - 1)), qmax: 2 ** (b - 1) - 1, round: roundHalfEven, codeDType: b <= 8 ? "i8" : b <= 16 ? "i16" : "i32" });
  }
  if (args.type === "float" && b === 8) return E.right({ qmin: -448, qmax: 448, round: (y) => roundToDType("f8_e4m3fn", y), codeDType: "f8_e4m3fn" });
  if (args.type === "float" && b === 4) return E.right({ qmin: -6, qmax: 6, round: (y) => roundToDType("f4_e2m1", y), codeDType: "f4_e2m1" });
  return E.left(unsupportedArgs(module, "weights (type, num_bits)", `(${args.type}, ${b})`, ["(int, 2..32)", "(float, 8)", "(float, 4)"]));
};

const sameShape = (a: ReadonlyArray<number>, b: ReadonlyArray<number>): boolean => a.length === b.length && a.every((v, i) => v === b[i]);

const roundScaleDType = (d: DType): ((x: number) => number) =>
  d === "bf16" ? (x) => roundToDType("bf16", x) : d === "f16" ? (x) => roundToDType("f16", x) : Math.fround;

const firstNonFinite = (a: Float32Array): number => {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i]!)) return i;
  return -1;
};

// ----- the algorithm -----

const fr = Math.fround;

/**
 * The column loop of one block (LC `gptq_block_update`, eager path) on a rows × bw panel, in place. Rows are
 * independent inside a block, so walking row by row (four at a time, sharing the Hinv loads) performs exactly
 * torch's per-element f32 operations: q = fakeq(w); e = (w − q) / Hinv[c,c]; W1[:, j] −= fl(e · Hinv[c, j]) for j > i.
 * Writes the codes (permuted column order), Err1 (rows × bw) and the per-row loss Σ e² / 2.
 */
const columnLoop = (
  panel: Float32Array,
  rows: number,
  bw: number,
  i1: number,
  n: number,
  hinv: Float32Array,
  rowSel: Int32Array,
  sCols: number,
  colSel: Int32Array,
  code: (x: number, si: number) => number,
  dequant: (y: number, si: number) => number,
  codes: Float32Array,
  err1: Float32Array,
  rowLoss: Float64Array,
  wasm: WasmUpdate | null,
): void => {
  if (wasm !== null) {
    // Same per-element operations with the SIMD update: step every row of column i, then update the rest.
    const need = (2 * rows * bw + bw * bw) * 4;
    const have = wasm.memory.buffer.byteLength;
    if (have < need) wasm.memory.grow(Math.ceil((need - have) / 65536));
    const buf = wasm.memory.buffer;
    const P = new Float32Array(buf, 0, rows * bw);
    const Er = new Float32Array(buf, rows * bw * 4, rows * bw);
    const Hb = new Float32Array(buf, 2 * rows * bw * 4, bw * bw);
    for (let i = 0; i < bw; i++) Hb.set(hinv.subarray((i1 + i) * n + i1, (i1 + i) * n + i1 + bw), i * bw);
    P.set(panel.subarray(0, rows * bw));
    for (let i = 0; i < bw; i++) {
      const c = i1 + i;
      const d = hinv[c * n + c]!;
      for (let r = 0; r < rows; r++) {
        const o = r * bw + i;
        const si = rowSel[r]! * sCols + colSel[c]!;
        const x = P[o]!;
        const y = code(x, si);
        const q = dequant(y, si);
        codes[r * n + c] = y;
        const e = fr(fr(x - q) / d);
        Er[o] = e;
        rowLoss[r] = rowLoss[r]! + fr(e * e) / 2;
        P[o] = q;
      }
      wasm.update(0, rows * bw * 4, 2 * rows * bw * 4, bw, i, 0, rows);
    }
    panel.set(P);
    err1.set(Er);
    return;
  }
  const step = (r: number, i: number): number => {
    const o = r * bw;
    const c = i1 + i;
    const si = rowSel[r]! * sCols + colSel[c]!;
    const x = panel[o + i]!;
    const y = code(x, si);
    const q = dequant(y, si);
    codes[r * n + c] = y;
    const e = fr(fr(x - q) / hinv[c * n + c]!);
    err1[o + i] = e;
    rowLoss[r] = rowLoss[r]! + fr(e * e) / 2;
    panel[o + i] = q;
    return e;
  };
  let r = 0;
  for (; r + 4 <= rows; r += 4) {
    const o0 = r * bw;
    const o1 = o0 + bw;
    const o2 = o1 + bw;
    const o3 = o2 + bw;
    for (let i = 0; i < bw; i++) {
      const e0 = step(r, i);
      const e1 = step(r + 1, i);
      const e2 = step(r + 2, i);
      const e3 = step(r + 3, i);
      const h = (i1 + i) * n + i1;
      for (let j = i + 1; j < bw; j++) {
        const hv = hinv[h + j]!;
        panel[o0 + j] = panel[o0 + j]! - fr(e0 * hv);
        panel[o1 + j] = panel[o1 + j]! - fr(e1 * hv);
        panel[o2 + j] = panel[o2 + j]! - fr(e2 * hv);
        panel[o3 + j] = panel[o3 + j]! - fr(e3 * hv);
      }
    }
  }
  for (; r < rows; r++) {
    const o = r * bw;
    for (let i = 0; i < bw; i++) {
      const e = step(r, i);
      const h = (i1 + i) * n + i1;
      for (let j = i + 1; j < bw; j++) panel[o + j] = panel[o + j]! - fr(e * hinv[h + j]!);
    }
  }
};

// Layout moves live in small functions: inside the large quantizeWeight body V8 ran them an order of magnitude
// slower (measured 1.5 s vs ~0.05 s for a 4096² panel build).

/** dst[d + j] = src[s + perm[j]] for one row. */
const gatherRow = (src: Float32Array, s: number, dst: Float32Array, d: number, perm: Int32Array): void => {
  for (let j = 0; j < perm.length; j++) dst[d + j] = src[s + perm[j]!]!;
};

/** dst[d + perm[j]] = src[s + j] for one row. */
const scatterRow = (src: Float32Array, s: number, dst: Float32Array, d: number, perm: Int32Array): void => {
  for (let j = 0; j < perm.length; j++) dst[d + perm[j]!] = src[s + j]!;
};

type NumArray = Float32Array | Int8Array | Int16Array | Int32Array;

// A permuted gather/scatter done block by block touches every row once per block, at random columns: 32 passes
// over a 4096² weight. Going through one row at a time keeps the permutation inside a row (cache-resident) and
// the panel side contiguous.

/** Row-major W (original column order) → column panels of `blockSize` in working (permuted) order. */
const toPanels = (w: Float32Array, rows: number, cols: number, blockSize: number, perm: Int32Array): Float32Array => {
  const panels = new Float32Array(rows * cols);
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    gatherRow(w, r * cols, row, 0, perm);
    for (let i1 = 0; i1 < cols; i1 += blockSize) {
      const bw = Math.min(blockSize, cols - i1);
      panels.set(row.subarray(i1, i1 + bw), rows * i1 + r * bw);
    }
  }
  return panels;
};

/** The inverse of {@link toPanels}, into `out` (any numeric array; values are integers for codes). */
const fromPanels = <T extends NumArray>(panels: NumArray, rows: number, cols: number, blockSize: number, perm: Int32Array, out: T): T => {
  const row = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    for (let i1 = 0; i1 < cols; i1 += blockSize) {
      const bw = Math.min(blockSize, cols - i1);
      const o = rows * i1 + r * bw;
      row.set(panels.subarray(o, o + bw), i1);
    }
    const d = r * cols;
    for (let j = 0; j < cols; j++) out[d + perm[j]!] = row[j]!;
  }
  return out;
};

/** A widened weight back in its stored dtype (exact: it holds values of that dtype). */
const asStored = (t: Tensor<"f32">, d: QuantizeWeightOptions["weightDType"]): Tensor<"f32" | "f16" | "bf16"> => (d === undefined || d === "f32" ? t : cast(t, d));

/**
 * GPTQ-quantizes one weight W [rows, cols] against its normalised Hessian H [cols, cols] (LC 0.14 `quantize_weight`
 * for a batch of one). Neither input is modified. Errors are values: shapes, group size, NaN/Inf, unsupported args.
 * A Cholesky failure is not an error: like LC the module falls back to round-to-nearest (`usedRtnFallback`, with
 * a warning naming the module).
 */
export const quantizeWeight = (
  W: Tensor<"f32">,
  H: Tensor<"f32">,
  args: GptqArgs,
  opts: QuantizeWeightOptions = {},
): E.Either<GptqError, GptqResult> => {
  const module = opts.module ?? "<module>";
  const t0 = performance.now();
  if (W.shape.length !== 2) return E.left(shapeMismatch(module, "weight", [-1, -1], W.shape));
  const rows = W.shape[0]!;
  const cols = W.shape[1]!;
  if (!sameShape(H.shape, [cols, cols])) return E.left(shapeMismatch(module, "hessian", [cols, cols], H.shape));
  const blockSize = opts.blockSize ?? 128;
  if (!Number.isInteger(blockSize) || blockSize < 1) return E.left(invalidOption(module, "block_size", `must be a positive integer, got ${blockSize}`));
  const dampeningFrac = opts.dampeningFrac ?? 0.01;
  if (!Number.isFinite(dampeningFrac) || dampeningFrac < 0) return E.left(invalidOption(module, "dampening_frac", `must be finite and ≥ 0, got ${dampeningFrac}`));
  const badH = firstNonFinite(H.data);
  if (badH >= 0) return E.left(nonFiniteHessian(module, Math.floor(badH / cols), badH % cols, H.data[badH]!));
  const badW = firstNonFinite(W.data);
  if (badW >= 0) return E.left(nonFiniteWeight(module, Math.floor(badW / cols), badW % cols, W.data[badW]!));

  const layoutE = layoutOf(module, args, rows, cols);
  if (E.isLeft(layoutE)) return layoutE;
  const layout = layoutE.right;
  const gridE = gridOf(module, args);
  if (E.isLeft(gridE)) return gridE;
  const grid = gridE.right;
  const actE = resolveActorder(module, opts.actorder === undefined ? args.actorder : opts.actorder, layout.strategy);
  if (E.isLeft(actE)) return actE;
  const actorder = actE.right;

  // perm[k] = original column at permuted position k (argsort of diag(H), descending). torch's argsort is not
  // stable; ties (e.g. dead columns) keep index order here. The working Hessian is a (permuted) f32 copy.
  const hIn = H.data;
  let perm: Int32Array | null = null;
  let h: Float32Array;
  if (actorder !== null) {
    const idx = Array.from({ length: cols }, (_, i) => i);
    idx.sort((a, b) => hIn[b * cols + b]! - hIn[a * cols + a]! || a - b);
    perm = Int32Array.from(idx);
    h = new Float32Array(cols * cols);
    for (let i = 0; i < cols; i++) gatherRow(hIn, perm[i]! * cols, h, i * cols, perm);
  } else {
    h = Float32Array.from(hIn);
  }
  /** Original column of working column j (the identity without act-order). */
  const orig = perm ?? Int32Array.from({ length: cols }, (_, j) => j);

  // Qparams: of the original weight (LC observes before GPTQ), or of the permuted weight for actorder "group".
  let qp: WeightQParams;
  if (actorder === "group") {
    if (!opts.observe) return E.left(invalidOption(module, "observe", 'actorder "group" observes the permuted weight; pass an observer'));
    const wp = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) gatherRow(W.data, r * cols, wp, r * cols, orig);
    const r = opts.observe(asStored(new Tensor("f32", [rows, cols], wp), opts.weightDType));
    if (E.isLeft(r)) return E.left(qparamsFailed(module, r.left));
    qp = r.right;
  } else if (opts.qparams) {
    qp = opts.qparams;
  } else if (opts.observe) {
    const r = opts.observe(W);
    if (E.isLeft(r)) return E.left(qparamsFailed(module, r.left));
    qp = r.right;
  } else {
    return E.left(invalidOption(module, "qparams", "pass the weight qparams or an observer"));
  }
  if (!sameShape(qp.scale.shape, layout.scaleShape)) return E.left(shapeMismatch(module, "weight_scale", layout.scaleShape, qp.scale.shape));
  const useZp = !args.symmetric;
  if (useZp && (!qp.zeroPoint || !sameShape(qp.zeroPoint.shape, layout.scaleShape)))
    return E.left(shapeMismatch(module, "weight_zero_point", layout.scaleShape, qp.zeroPoint?.shape ?? []));
  const globalScale = layout.strategy === "tensor_group" ? (qp.globalScale ?? null) : null;
  if (layout.strategy === "tensor_group" && globalScale === null) return E.left(invalidOption(module, "weight_global_scale", "tensor_group needs a global scale"));

  // Effective scales (÷ global scale in f32 when present) and the dtype the dequantization rounds to.
  const sRaw = toFloat64(qp.scale).data;
  const gs = globalScale ? globalScale.data[0]! : 1;
  const scales = new Float64Array(sRaw.length);
  for (let i = 0; i < sRaw.length; i++) scales[i] = globalScale ? fr(sRaw[i]! / gs) : sRaw[i]!;
  const rs = globalScale ? Math.fround : roundScaleDType(qp.scale.dtype);
  // column_scale_window casts zero points to f32.
  const zps = useZp && qp.zeroPoint ? Float64Array.from(toFloat64(qp.zeroPoint).data, fr) : null;
  const zpsDq = zps ? Float64Array.from(zps, rs) : null;

  // Column → scale column, in permuted order. weight actorder keeps original-order groups (g_idx[perm]); group
  // actorder uses the identity grouping of the permuted, re-observed weight.
  const sCols = layout.scaleShape.length === 2 ? layout.scaleShape[1] : 1;
  const colSel = new Int32Array(cols);
  if (layout.colDiv > 0) for (let k = 0; k < cols; k++) colSel[k] = Math.floor((actorder === "weight" && perm ? perm[k]! : k) / layout.colDiv);
  const rowSel = new Int32Array(rows);
  for (let r = 0; r < rows; r++) rowSel[r] = layout.rowDiv === 0 ? 0 : Math.floor(r / layout.rowDiv);

  let tf = performance.now();
  const factor = factorizeHessianInPlace(h, cols, dampeningFrac);
  const hinv = factor.hinv;
  const timings = { prepare: (tf - t0) / 1000, factorize: (performance.now() - tf) / 1000, columns: 0, trailing: 0, finish: 0, threads: 1, simd: false };
  const warnings: string[] = [];
  if (factor.usedRtnFallback)
    warnings.push(
      `gptq ${module}: Hessian ${factor.failedStep} failed (not positive definite after damping ${factor.damp}); ` +
        "quantized with round-to-nearest instead. Consider a larger dampening_frac or more calibration samples.",
    );

  const { qmin, qmax, round } = grid;
  // Code of x in column c / scale index si, and its dequantized value, in CT's fake_quantize order.
  const code = zps
    ? (x: number, si: number): number => round(Math.min(Math.max(fr(fr(x / scales[si]!) + zps[si]!), qmin), qmax))
    : (x: number, si: number): number => round(Math.min(Math.max(fr(x / scales[si]!), qmin), qmax));
  const dequant = zpsDq ? (y: number, si: number): number => rs(rs(rs(y) - zpsDq[si]!) * scales[si]!) : (y: number, si: number): number => rs(rs(y) * scales[si]!);

  // Column-panel layout: panel k holds columns [i1, i2) of every row contiguously (rows × bw), so a block's column
  // loop runs in place and the trailing update W[:, i2:] −= Err1·Hinv[i1:i2, i2:] is one GEMM per later panel
  // writing straight into it (C = C − A·B: one rounding of C − fl(A·B), as torch's bmm then in-place subtract).
  const panels = toPanels(W.data, rows, cols, blockSize, orig);
  // Dead columns (zero Hessian diagonal, after permutation as in LC) are zeroed.
  for (const j of factor.dead) {
    const bw = Math.min(blockSize, cols - Math.floor(j / blockSize) * blockSize);
    const base = rows * (j - (j % blockSize));
    for (let r = 0; r < rows; r++) panels[base + r * bw + (j % blockSize)] = 0;
  }
  let rowLoss: Float64Array<ArrayBufferLike> = new Float64Array(rows);
  const k = kernels();
  const maxBw = Math.min(blockSize, cols);
  let err1: Float32Array<ArrayBufferLike> = new Float32Array(rows * maxBw);
  const hsub = new Float32Array(maxBw * maxBw);
  // Integer grids dequantized in f32 (f32 scales, or any scale ÷ an f32 global scale) take the shared kernel that
  // can split rows over threads; other grids (fp8/fp4, bf16/f16 scales) the closure-based loop.
  const fastInt = (grid.codeDType === "i8" || grid.codeDType === "i16" || grid.codeDType === "i32") && (globalScale !== null || qp.scale.dtype === "f32");
  // Codes: the fast path keeps them as integers in panel layout (working order) and un-permutes them with the weight
  // at the end; the generic path keeps f32 codes in row-major working order.
  const newInts = (): Int8Array | Int16Array | Int32Array =>
    grid.codeDType === "i8" ? new Int8Array(rows * cols) : grid.codeDType === "i16" ? new Int16Array(rows * cols) : new Int32Array(rows * cols);
  const codePanels = fastInt ? newInts() : null;
  const intCodes = fastInt ? newInts() : null;
  const codes = new Float32Array(fastInt ? 0 : rows * cols);
  const simd = fastInt ? null : wasmForMain();
  const runner = fastInt ? panelRunner(rows, maxBw, rowSel, scales, zps, opts.threads ?? defaultThreads()) : null;
  if (runner) {
    err1 = runner.buffers.err;
    rowLoss = runner.buffers.loss;
  }
  for (let i1 = 0; i1 < cols; i1 += blockSize) {
    const i2 = Math.min(i1 + blockSize, cols);
    const bw = i2 - i1;
    tf = performance.now();
    const panel = panels.subarray(rows * i1, rows * i2);
    if (runner) {
      const b = runner.buffers;
      b.panel.set(panel);
      for (let i = 0; i < bw; i++) b.h.set(hinv.subarray((i1 + i) * cols + i1, (i1 + i) * cols + i2), i * bw);
      b.colSel.set(colSel.subarray(i1, i2));
      runner.run(bw, sCols, qmin, qmax);
      panel.set(b.panel.subarray(0, rows * bw));
      codePanels!.set(b.codes.subarray(0, rows * bw), rows * i1);
    } else {
      columnLoop(panel, rows, bw, i1, cols, hinv, rowSel, sCols, colSel, code, dequant, codes, err1, rowLoss, simd);
    }
    const t1 = performance.now();
    timings.columns += (t1 - tf) / 1000;
    // The GEMM kernels need plain (non-shared) memory.
    const a = runner ? Float32Array.from(err1.subarray(0, rows * bw)) : err1;
    for (let p1 = i2; p1 < cols; p1 += blockSize) {
      const pw = Math.min(blockSize, cols - p1);
      for (let i = 0; i < bw; i++) hsub.set(hinv.subarray((i1 + i) * cols + p1, (i1 + i) * cols + p1 + pw), i * pw);
      k.sgemm(rows, pw, bw, a, false, hsub, false, panels.subarray(rows * p1, rows * (p1 + pw)), -1, 1);
    }
    timings.trailing += (performance.now() - t1) / 1000;
  }
  if (runner) {
    timings.threads = runner.threads;
    timings.simd = runner.simd;
  } else timings.simd = simd !== null;
  tf = performance.now();
  let loss = 0;
  for (let r = 0; r < rows; r++) loss += rowLoss[r]!;

  // Back to row-major, undoing the permutation.
  const outW = fromPanels(panels, rows, cols, blockSize, orig, new Float32Array(rows * cols));
  if (codePanels && intCodes) fromPanels(codePanels, rows, cols, blockSize, orig, intCodes);
  let gIdx: Tensor<"i32"> | null = null;
  if (actorder === "group" && perm) {
    const g = new Int32Array(cols);
    for (let j = 0; j < cols; j++) g[perm[j]!] = Math.floor(j / layout.colDiv);
    gIdx = new Tensor("i32", [cols], g);
  }
  let quantized: Tensor<CodeDType>;
  if (intCodes && fastInt) quantized = new Tensor(grid.codeDType, [rows, cols], intCodes as never);
  else if (globalScale === null && qp.scale.dtype !== "f32") {
    // A bf16/f16 model: LC writes the weight back in the scale's dtype and the compressor re-quantizes THAT in
    // bf16/f16 arithmetic, which for 8-bit grids can land one code away from the loop's f32 division. The stored
    // codes are the compressor's, so compute them the same way.
    const back = castFromNumbers(qp.scale.dtype, outW, [rows, cols]);
    const q = quantize(back, qp.scale, useZp ? qp.zeroPoint : null, args as QuantizationArgs, { dtype: grid.codeDType, ...(gIdx ? { gIdx: gIdx.data } : {}) });
    if (E.isLeft(q)) return E.left(qparamsFailed(module, `re-quantizing the ${qp.scale.dtype} weight: ${JSON.stringify(q.left)}`));
    quantized = q.right as Tensor<CodeDType>;
  } else {
    const outCodes = new Float32Array(rows * cols);
    for (let r = 0; r < rows; r++) scatterRow(codes, r * cols, outCodes, r * cols, orig);
    quantized = castFromNumbers(grid.codeDType, outCodes, [rows, cols]);
  }
  timings.finish = (performance.now() - tf) / 1000;
  return E.right({
    quantized,
    scale: qp.scale,
    zeroPoint: useZp ? qp.zeroPoint : null,
    globalScale,
    gIdx,
    loss,
    fakeQuantized: new Tensor("f32", [rows, cols], outW),
    actorder,
    usedRtnFallback: factor.usedRtnFallback,
    deadColumns: factor.deadColumns,
    warnings,
    timings,
  });
};
