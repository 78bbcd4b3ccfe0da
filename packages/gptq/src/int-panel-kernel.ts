import { hasNodeBuiltins, nodeBuiltin } from "@llmq/tensor";
import { GPTQ_UPDATE_WASM } from "./gptq-update-wasm.js";
const { createRequire } = nodeBuiltin<typeof import("node:module")>("node:module");
const { availableParallelism } = nodeBuiltin<typeof import("node:os")>("node:os");

// The GPTQ column loop for integer grids with f32 dequantization (the common case: f32 working weights, f32
// scales), shared by the main thread and a small pool of worker threads that split the rows of each block. The
// kernel is one self-contained function (no imports, no closures over module state) so its source can be shipped
// to the workers with `toString()`; every thread runs the same per-element f32 operations, so results do not
// depend on the thread count.

// ----- the kernel -----

/** The compiled SIMD update (see gptq-update.wat) and the memory it works in; one per thread. */
export interface WasmUpdate {
  readonly update: (p: number, e: number, h: number, bw: number, i: number, r0: number, r1: number) => void;
  readonly memory: WebAssembly.Memory;
}

/**
 * Rows [r0, r1) of one block, in place on a rows × bw panel: for each column i, the code
 * y = round_half_even(clamp(fl(fl(x / s) + zp), qmin, qmax)), q = fl(fl(y − zp) · s), e = fl(fl(x − q) / Hinv[i,i]),
 * then W[:, j] −= fl(e · Hinv[i, j]) for j > i (LC `gptq_block_update`, eager path). `h` is the bw × bw diagonal
 * block of the upper Cholesky factor of H⁻¹; `colSel` maps block column → scale column; codes and err are
 * rows × bw; `loss` gains Σ e² / 2 per row. With `wasm`, the rows are copied into its memory and the update runs
 * there as f32x4 multiply-then-subtract (the same two roundings per element); otherwise in plain JS, four rows at a
 * time sharing the Hinv loads.
 */
export function intPanelKernel(
  p: Float32Array,
  bw: number,
  r0: number,
  r1: number,
  h: Float32Array,
  rowSel: Int32Array,
  colSel: Int32Array,
  sCols: number,
  scales: Float64Array,
  zps: Float64Array | null,
  qmin: number,
  qmax: number,
  codes: Float32Array,
  err: Float32Array,
  loss: Float64Array,
  wasm: WasmUpdate | null,
): void {
  const fr = Math.fround;
  // Work arrays: the caller's (JS path) or row-local copies inside the wasm memory (P, E indexed from row r0).
  let P = p;
  let E = err;
  let base = 0;
  const offP = 0;
  let offE = 0;
  let offH = 0;
  const nr = r1 - r0;
  if (wasm !== null) {
    offE = nr * bw * 4;
    offH = 2 * nr * bw * 4;
    const need = offH + bw * bw * 4;
    const have = wasm.memory.buffer.byteLength;
    if (have < need) wasm.memory.grow(Math.ceil((need - have) / 65536));
    const buf = wasm.memory.buffer;
    P = new Float32Array(buf, 0, nr * bw);
    E = new Float32Array(buf, offE, nr * bw);
    new Float32Array(buf, offH, bw * bw).set(h.subarray(0, bw * bw));
    P.set(p.subarray(r0 * bw, r1 * bw));
    base = r0;
  }
  const step = (r: number, i: number): number => {
    const o = r * bw + i;
    const lo = (r - base) * bw + i;
    const si = rowSel[r]! * sCols + colSel[i]!;
    const s = scales[si]!;
    const x = P[lo]!;
    let y = fr(x / s);
    let q: number;
    if (zps !== null) y = fr(y + zps[si]!);
    y = y < qmin ? qmin : y > qmax ? qmax : y;
    // round half to even, keeping the sign of a zero result like torch.round
    const f = Math.floor(y);
    const d = y - f;
    let t = d < 0.5 ? f : d > 0.5 ? f + 1 : f % 2 === 0 ? f : f + 1;
    if (t === 0 && (y < 0 || Object.is(y, -0))) t = -0;
    if (zps !== null) q = fr(fr(t - zps[si]!) * s);
    else q = fr(t * s);
    codes[o] = t;
    const e = fr(fr(x - q) / h[i * bw + i]!);
    E[lo] = e;
    loss[r] = loss[r]! + fr(e * e) / 2;
    P[lo] = q;
    return e;
  };
  if (wasm !== null) {
    for (let i = 0; i < bw; i++) {
      for (let r = r0; r < r1; r++) step(r, i);
      wasm.update(offP, offE, offH, bw, i, 0, nr);
    }
    p.set(P, r0 * bw);
    err.set(E, r0 * bw);
    return;
  }
  let r = r0;
  for (; r + 4 <= r1; r += 4) {
    const o0 = r * bw;
    const o1 = o0 + bw;
    const o2 = o1 + bw;
    const o3 = o2 + bw;
    for (let i = 0; i < bw; i++) {
      const e0 = step(r, i);
      const e1 = step(r + 1, i);
      const e2 = step(r + 2, i);
      const e3 = step(r + 3, i);
      const hi = i * bw;
      for (let j = i + 1; j < bw; j++) {
        const hv = h[hi + j]!;
        p[o0 + j] = p[o0 + j]! - fr(e0 * hv);
        p[o1 + j] = p[o1 + j]! - fr(e1 * hv);
        p[o2 + j] = p[o2 + j]! - fr(e2 * hv);
        p[o3 + j] = p[o3 + j]! - fr(e3 * hv);
      }
    }
  }
  for (; r < r1; r++) {
    const o = r * bw;
    for (let i = 0; i < bw; i++) {
      const e = step(r, i);
      const hi = i * bw;
      for (let j = i + 1; j < bw; j++) p[o + j] = p[o + j]! - fr(e * h[hi + j]!);
    }
  }
}

/** Instantiates the SIMD update (synchronously; 275 bytes), or null where WebAssembly SIMD is unavailable. */
export function makeWasmUpdate(bytes: Uint8Array<ArrayBuffer>): WasmUpdate | null {
  try {
    const memory = new WebAssembly.Memory({ initial: 1 });
    const inst = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem: memory } });
    return { update: inst.exports.update as WasmUpdate["update"], memory };
  } catch {
    return null;
  }
}

// ----- the pool -----

/** Buffers the threads share for one quantizeWeight call (SharedArrayBuffer-backed when a pool runs). */
export interface PanelBuffers {
  readonly panel: Float32Array;
  readonly h: Float32Array;
  readonly colSel: Int32Array;
  readonly codes: Float32Array;
  readonly err: Float32Array;
  readonly loss: Float64Array;
  readonly rowSel: Int32Array;
  readonly scales: Float64Array;
  readonly zps: Float64Array | null;
}

interface WorkerLike {
  postMessage(m: unknown): void;
  unref(): void;
  on(ev: "error", f: (e: unknown) => void): void;
}

// \`__name\` covers transpilers that keep function names (esbuild keepNames) inside the shipped source.
const workerSource = `
const { parentPort } = require("node:worker_threads");
const __name = (f) => f;
const intPanelKernel = ${intPanelKernel.toString()};
const makeWasmUpdate = ${makeWasmUpdate.toString()};
let b = null;
let wasm = null;
parentPort.on("message", (m) => {
  if (m.setup) { b = m.setup; if (m.wasmBytes && wasm === null) wasm = makeWasmUpdate(m.wasmBytes); return; }
  intPanelKernel(b.panel, m.bw, m.r0, m.r1, b.h, b.rowSel, b.colSel, m.sCols, b.scales, b.zps, m.qmin, m.qmax, b.codes, b.err, b.loss, m.useWasm ? wasm : null);
  Atomics.add(b.ctrl, 0, 1);
  Atomics.notify(b.ctrl, 0);
});
`;

let wasmBytes: Uint8Array<ArrayBuffer> | null = null;
let mainWasm: WasmUpdate | null | undefined;

/** The SIMD update for the calling thread (null without WebAssembly SIMD, or with LLMQ_GPTQ_WASM=0). */
export const wasmForMain = (): WasmUpdate | null => {
  if (mainWasm === undefined) {
    wasmBytes ??= Uint8Array.from(atob(GPTQ_UPDATE_WASM), (c) => c.charCodeAt(0));
    mainWasm = globalThis.process?.env?.LLMQ_GPTQ_WASM === "0" ? null : makeWasmUpdate(wasmBytes);
  }
  return mainWasm;
};

let pool: WorkerLike[] | null = null;
let poolError: string | null = null;

/** Threads for the column loop: LLMQ_THREADS, else the CPU count (capped at 16). */
export const defaultThreads = (): number => {
  const env = Number(globalThis.process?.env?.LLMQ_THREADS);
  return Number.isInteger(env) && env > 0 ? env : hasNodeBuiltins() ? Math.min(16, availableParallelism()) : 1;
};

const workers = (n: number): WorkerLike[] => {
  if (poolError !== null || n <= 0) return [];
  if (pool === null) pool = [];
  try {
    const { Worker } = createRequire(import.meta.url)("node:worker_threads") as { Worker: new (src: string, o: { eval: boolean }) => WorkerLike };
    while (pool.length < n) {
      const w = new Worker(workerSource, { eval: true });
      w.unref();
      w.on("error", (e) => {
        poolError = String(e);
      });
      pool.push(w);
    }
  } catch (e) {
    poolError = String(e);
    return [];
  }
  return pool.slice(0, n);
};

const alloc = <T>(shared: boolean, ctor: new (b: ArrayBufferLike) => T, bytes: number): T =>
  new ctor(shared ? new SharedArrayBuffer(bytes) : new ArrayBuffer(bytes));

/**
 * Runs the column loops of a whole GPTQ call: `run(i1, bw, sCols, qmin, qmax)` after the caller has filled
 * `buffers.panel` / `h` / `colSel` for the block. With `threads` > 1 (and enough rows) the rows are split over
 * worker threads plus the calling thread, which blocks until all are done.
 */
export const panelRunner = (
  rows: number,
  maxBw: number,
  rowSel: Int32Array,
  scales: Float64Array,
  zps: Float64Array | null,
  threads: number,
): {
  readonly buffers: PanelBuffers;
  readonly threads: number;
  readonly simd: boolean;
  readonly run: (bw: number, sCols: number, qmin: number, qmax: number) => void;
} => {
  const wasm = wasmForMain();
  const want = rows >= 64 ? Math.max(1, Math.min(threads, Math.floor(rows / 16))) : 1;
  const ws = want > 1 ? workers(want - 1) : [];
  const shared = ws.length > 0;
  const f32 = (n: number) => alloc(shared, Float32Array, 4 * n);
  const copyTo = <T extends Float64Array | Int32Array>(src: T, ctor: new (b: ArrayBufferLike) => T): T => {
    const t = alloc(shared, ctor, src.byteLength);
    (t as Float64Array).set(src as Float64Array);
    return t;
  };
  const buffers: PanelBuffers = {
    panel: f32(rows * maxBw),
    h: f32(maxBw * maxBw),
    colSel: alloc(shared, Int32Array, 4 * maxBw),
    codes: f32(rows * maxBw),
    err: f32(rows * maxBw),
    loss: alloc(shared, Float64Array, 8 * rows),
    rowSel: copyTo(rowSel, Int32Array),
    scales: copyTo(scales, Float64Array),
    zps: zps ? copyTo(zps, Float64Array) : null,
  };
  const ctrl = alloc(shared, Int32Array, 4);
  for (const w of ws) w.postMessage({ setup: { ...buffers, ctrl }, wasmBytes });
  // Row chunks in multiples of 4 (the kernel's unroll), the calling thread takes the first.
  const parts = ws.length + 1;
  const chunk = Math.ceil(rows / parts / 4) * 4;
  const run = (bw: number, sCols: number, qmin: number, qmax: number): void => {
    const b = buffers;
    if (ws.length === 0) {
      intPanelKernel(b.panel, bw, 0, rows, b.h, b.rowSel, b.colSel, sCols, b.scales, b.zps, qmin, qmax, b.codes, b.err, b.loss, wasm);
      return;
    }
    Atomics.store(ctrl, 0, 0);
    let posted = 0;
    for (let t = 1; t < parts; t++) {
      const r0 = Math.min(rows, t * chunk);
      const r1 = Math.min(rows, (t + 1) * chunk);
      ws[t - 1]!.postMessage({ bw, r0, r1, sCols, qmin, qmax, useWasm: wasm !== null });
      posted++;
    }
    intPanelKernel(b.panel, bw, 0, Math.min(rows, chunk), b.h, b.rowSel, b.colSel, sCols, b.scales, b.zps, qmin, qmax, b.codes, b.err, b.loss, wasm);
    let waited = 0;
    for (let done = Atomics.load(ctrl, 0); done < posted; done = Atomics.load(ctrl, 0)) {
      if (Atomics.wait(ctrl, 0, done, 1000) === "timed-out" && ++waited > 600)
        throw new Error(`llmq internal: GPTQ worker threads stopped responding (${poolError ?? "no error reported"})`);
    }
  };
  return { buffers, threads: parts, simd: wasm !== null, run };
};
