import type { NativeAddon } from "./backend.js";
import type { Kernels, Side, Uplo } from "./kernels.js";

// Turns the raw N-API module into the checked kernel table used by backend.ts. Sizes and dtypes are checked here
// (clear JS errors naming the kernel and argument) and again in C++ before any native code touches memory.

/** SIMD levels of the native addon, best first. */
export type NativeIsa = "avx512" | "avx2" | "scalar";

export const NATIVE_ISAS: readonly NativeIsa[] = ["avx512", "avx2", "scalar"];

/** The shape of build/Release/llmq_tensor.node (native/addon.cc). */
interface RawAddon {
  readonly kernels: Record<keyof Kernels, (...args: never[]) => unknown>;
  readonly getIsa: () => string;
  readonly supportedIsa: () => string;
  readonly setIsa: (isa: string) => string;
  readonly getThreads: () => number;
  readonly setThreads: (n: number) => number;
}

const KERNEL_NAMES: readonly (keyof Kernels)[] = [
  "sgemm",
  "dgemm",
  "ssyrk",
  "dsyrk",
  "spotrf",
  "dpotrf",
  "spotri",
  "dpotri",
  "strsm",
  "dtrsm",
  "fwht",
  "dfwht",
  "groupMinMax",
  "quantizeGroups",
  "siluMul",
  "lutDequant",
  "causalAttention",
  "rmsNorm",
  "rope",
  "add",
  "scale",
  "logitStats",
];

type FArr = Float32Array | Float64Array;

const dim = (kernel: string, name: string, v: number): void => {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${kernel}: ${name} must be a non-negative integer, got ${v}`);
};

const arr = (kernel: string, name: string, a: unknown, ctor: typeof Float32Array | typeof Float64Array, need: number): void => {
  if (!(a instanceof ctor)) throw new TypeError(`${kernel}: ${name} must be a ${ctor.name}`);
  if (a.length < need) throw new RangeError(`${kernel}: ${name} has ${a.length} elements, needs at least ${need}`);
};

const side = (kernel: string, s: Side, u: Uplo): void => {
  if (s !== "left" && s !== "right") throw new RangeError(`${kernel}: side must be "left" or "right", got ${String(s)}`);
  if (u !== "lower" && u !== "upper") throw new RangeError(`${kernel}: uplo must be "lower" or "upper", got ${String(u)}`);
};

const groups = (kernel: string, rows: number, cols: number, groupSize: number): number => {
  dim(kernel, "rows", rows);
  dim(kernel, "cols", cols);
  dim(kernel, "groupSize", groupSize);
  if (groupSize < 1 || cols % groupSize !== 0) throw new RangeError(`${kernel}: groupSize ${groupSize} must be ≥ 1 and divide cols ${cols}`);
  return rows * (cols / groupSize);
};

/** Group statistics and integer quantization, checked like the others. */
// biome-ignore lint/suspicious/noExplicitAny: the raw functions are typed by the checks in front of them
const quantizeKernels = (k: any): Pick<Kernels, "groupMinMax" | "quantizeGroups"> => ({
  groupMinMax: (x, rows, cols, groupSize, outMin, outMax) => {
    const g = groups("groupMinMax", rows, cols, groupSize);
    arr("groupMinMax", "x", x, Float32Array, rows * cols);
    arr("groupMinMax", "outMin", outMin, Float32Array, g);
    arr("groupMinMax", "outMax", outMax, Float32Array, g);
    k.groupMinMax(x, rows, cols, groupSize, outMin, outMax);
  },
  quantizeGroups: (x, rows, cols, groupSize, scale, zp, qmin, qmax, fake, out) => {
    const g = groups("quantizeGroups", rows, cols, groupSize);
    arr("quantizeGroups", "x", x, Float32Array, rows * cols);
    arr("quantizeGroups", "scale", scale, Float32Array, g);
    if (zp !== null) arr("quantizeGroups", "zp", zp, Float32Array, g);
    arr("quantizeGroups", "out", out, Float32Array, rows * cols);
    k.quantizeGroups(x, rows, cols, groupSize, scale, zp, qmin, qmax, fake, out);
  },
});

/** The forward-pass kernels (attention, SiLU gate), checked like the others. */
// biome-ignore lint/suspicious/noExplicitAny: the raw functions are typed by the checks in front of them
const forwardKernels = (k: any): Pick<Kernels, "siluMul" | "causalAttention" | "lutDequant"> => ({
  lutDequant: (codes, lut, scale, zp, groupSize, scales, out) => {
    const n = "lutDequant";
    dim(n, "groupSize", groupSize);
    dim(n, "scales", scales);
    if (!(codes instanceof Uint8Array)) throw new TypeError(`${n}: codes must be a Uint8Array`);
    if (groupSize < 1 || codes.length % groupSize !== 0) throw new RangeError(`${n}: groupSize ${groupSize} must be ≥ 1 and divide ${codes.length} codes`);
    if (scales < 1) throw new RangeError(`${n}: scales must be ≥ 1`);
    arr(n, "lut", lut, Float32Array, 256);
    arr(n, "scale", scale, Float32Array, scales);
    if (zp !== null) arr(n, "zp", zp, Float32Array, scales);
    arr(n, "out", out, Float32Array, codes.length);
    k.lutDequant(codes, lut, scale, zp, groupSize, scales, out);
  },
  siluMul: (gate, up, n, out) => {
    dim("siluMul", "n", n);
    arr("siluMul", "gate", gate, Float32Array, n);
    arr("siluMul", "up", up, Float32Array, n);
    arr("siluMul", "out", out, Float32Array, n);
    k.siluMul(gate, up, n, out);
  },
  causalAttention: (q, kk, v, tokens, past, heads, kvHeads, headDim, window, scale, out) => {
    const n = "causalAttention";
    for (const [label, x] of [["tokens", tokens], ["past", past], ["heads", heads], ["kvHeads", kvHeads], ["headDim", headDim], ["window", window]] as const)
      dim(n, label, x);
    if (kvHeads < 1 || heads % kvHeads !== 0) throw new RangeError(`${n}: heads ${heads} must be a multiple of kvHeads ${kvHeads}`);
    arr(n, "q", q, Float32Array, tokens * heads * headDim);
    arr(n, "k", kk, Float32Array, (past + tokens) * kvHeads * headDim);
    arr(n, "v", v, Float32Array, (past + tokens) * kvHeads * headDim);
    arr(n, "out", out, Float32Array, tokens * heads * headDim);
    k.causalAttention(q, kk, v, tokens, past, heads, kvHeads, headDim, window, scale, out);
  },
});

/** The decoder's row kernels (norm, rotary, residual, scaling) and the eval head's statistics. */
// biome-ignore lint/suspicious/noExplicitAny: the raw functions are typed by the checks in front of them
const rowKernels = (k: any): Pick<Kernels, "rmsNorm" | "rope" | "add" | "scale" | "logitStats"> => ({
  rmsNorm: (x, rows, cols, weight, eps, out) => {
    dim("rmsNorm", "rows", rows);
    dim("rmsNorm", "cols", cols);
    arr("rmsNorm", "x", x, Float32Array, rows * cols);
    arr("rmsNorm", "weight", weight, Float32Array, cols);
    arr("rmsNorm", "out", out, Float32Array, rows * cols);
    k.rmsNorm(x, rows, cols, weight, eps, out);
  },
  rope: (x, tokens, heads, d, cos, sin) => {
    for (const [label, v] of [["tokens", tokens], ["heads", heads], ["dim", d]] as const) dim("rope", label, v);
    if (d % 2 !== 0) throw new RangeError(`rope: dim ${d} must be even`);
    arr("rope", "x", x, Float32Array, tokens * heads * d);
    arr("rope", "cos", cos, Float32Array, (tokens * d) / 2);
    arr("rope", "sin", sin, Float32Array, (tokens * d) / 2);
    k.rope(x, tokens, heads, d, cos, sin);
  },
  add: (a, b, n, out) => {
    dim("add", "n", n);
    arr("add", "a", a, Float32Array, n);
    arr("add", "b", b, Float32Array, n);
    arr("add", "out", out, Float32Array, n);
    k.add(a, b, n, out);
  },
  scale: (a, s, n, out) => {
    dim("scale", "n", n);
    arr("scale", "a", a, Float32Array, n);
    arr("scale", "out", out, Float32Array, n);
    k.scale(a, s, n, out);
  },
  logitStats: (lq, lr, rows, vocab, targets, out) => {
    dim("logitStats", "rows", rows);
    dim("logitStats", "vocab", vocab);
    arr("logitStats", "logits", lq, Float32Array, rows * vocab);
    if (lr !== null) arr("logitStats", "refLogits", lr, Float32Array, rows * vocab);
    if (!(targets instanceof Int32Array) || targets.length < rows) throw new TypeError(`logitStats: targets must be an Int32Array of ≥ ${rows}`);
    arr("logitStats", "out", out, Float64Array, rows * 4);
    k.logitStats(lq, lr, rows, vocab, targets, out);
  },
});

const checkedKernels = (raw: RawAddon): Kernels => {
  // biome-ignore lint/suspicious/noExplicitAny: the raw functions are typed by the checks in front of them
  const k = raw.kernels as any;
  const F32 = Float32Array;
  const F64 = Float64Array;
  const gemm =
    (name: "sgemm" | "dgemm", ctor: typeof F32 | typeof F64) =>
    (m: number, n: number, kk: number, a: FArr, transA: boolean, b: FArr, transB: boolean, c: FArr, alpha: number, beta: number): void => {
      dim(name, "m", m);
      dim(name, "n", n);
      dim(name, "k", kk);
      arr(name, "a", a, ctor, m * kk);
      arr(name, "b", b, ctor, kk * n);
      arr(name, "c", c, ctor, m * n);
      k[name](m, n, kk, a, transA, b, transB, c, alpha, beta);
    };
  const syrk =
    (name: "ssyrk" | "dsyrk", ctor: typeof F32 | typeof F64) =>
    (m: number, n: number, x: FArr, h: FArr, alpha: number): void => {
      dim(name, "m", m);
      dim(name, "n", n);
      arr(name, "x", x, ctor, m * n);
      arr(name, "h", h, ctor, n * n);
      k[name](m, n, x, h, alpha);
    };
  const square =
    (name: "spotrf" | "dpotrf" | "spotri" | "dpotri", ctor: typeof F32 | typeof F64) =>
    (a: FArr, n: number): number => {
      dim(name, "n", n);
      arr(name, name.endsWith("trf") ? "a" : "l", a, ctor, n * n);
      return k[name](a, n) as number;
    };
  const walshHadamard =
    (name: "fwht" | "dfwht", ctor: typeof F32 | typeof F64) =>
    (x: FArr, rows: number, n: number): void => {
      dim(name, "rows", rows);
      dim(name, "n", n);
      if (n < 1 || (n & (n - 1)) !== 0) throw new RangeError(`${name}: n must be a power of two, got ${n}`);
      arr(name, "x", x, ctor, rows * n);
      k[name](x, rows, n);
    };
  const trsm =
    (name: "strsm" | "dtrsm", ctor: typeof F32 | typeof F64) =>
    (s: Side, u: Uplo, transT: boolean, unitDiag: boolean, m: number, n: number, t: FArr, b: FArr): void => {
      side(name, s, u);
      dim(name, "m", m);
      dim(name, "n", n);
      const d = s === "left" ? m : n;
      arr(name, "t", t, ctor, d * d);
      arr(name, "b", b, ctor, m * n);
      k[name](s, u, transT, unitDiag, m, n, t, b);
    };
  return {
    sgemm: gemm("sgemm", F32),
    dgemm: gemm("dgemm", F64),
    ssyrk: syrk("ssyrk", F32),
    dsyrk: syrk("dsyrk", F64),
    spotrf: square("spotrf", F32),
    dpotrf: square("dpotrf", F64),
    spotri: square("spotri", F32),
    dpotri: square("dpotri", F64),
    strsm: trsm("strsm", F32),
    dtrsm: trsm("dtrsm", F64),
    fwht: walshHadamard("fwht", F32),
    dfwht: walshHadamard("dfwht", F64),
    ...quantizeKernels(k),
    ...forwardKernels(k),
    ...rowKernels(k),
  };
};

/** Wraps the raw addon: checked kernels plus the ISA / thread controls. Throws if the module is not ours. */
// biome-ignore lint/suspicious/noExplicitAny: raw addon object, its shape is checked here
export const wrapNativeAddon = (raw: any): NativeAddon => {
  const r = raw as RawAddon;
  if (!r || typeof r !== "object" || typeof r.kernels !== "object" || typeof r.getIsa !== "function" || typeof r.setThreads !== "function")
    throw new Error("llmq_tensor.node does not export the expected kernel table (stale build? run `pnpm --filter @llmq/tensor build:native`)");
  for (const name of KERNEL_NAMES)
    if (typeof r.kernels[name] !== "function") throw new Error(`llmq_tensor.node lacks kernel ${name} (stale build?)`);
  const kernels = checkedKernels(r);
  return {
    kernels,
    get isa() {
      return r.getIsa();
    },
    get threads() {
      return r.getThreads();
    },
    supportedIsa: r.supportedIsa() as NativeIsa,
    setThreads: (n: number) => {
      r.setThreads(n);
    },
    setIsa: (isa: NativeIsa) => r.setIsa(isa) as NativeIsa,
  };
};
