import { spawnSync } from "node:child_process";
import { createRequire } from "node:module";
import { describe, expect, it } from "vitest";
import { NATIVE_ISAS, wrapNativeAddon } from "./backend-native.js";
import { activeBackend, kernelsFor, nativeAddon, nativeError } from "./backend.js";

// The N-API boundary: bad calls must throw JS errors (from the TS wrapper, and from the C++ checks behind it when
// the raw addon is called directly) and never reach the kernels.

const addon = nativeAddon();
const required = process.env.LLMQ_REQUIRE_NATIVE === "1";
const skip = !addon && !required;
const reason = `native addon not built (${nativeError() ?? "unknown"})`;
const addonPath = new URL("../build/Release/llmq_tensor.node", import.meta.url).pathname;
// biome-ignore lint/suspicious/noExplicitAny: the raw module is exercised with deliberately wrong arguments
const raw = (): any => createRequire(import.meta.url)(addonPath);

const f32 = (n: number) => new Float32Array(n);
const f64 = (n: number) => new Float64Array(n);

/** Every bad call, as [description, call on a kernel table]; each must throw with a message naming the kernel. */
// biome-ignore lint/suspicious/noExplicitAny: deliberately wrong argument types
const badCalls: [string, string, (k: any) => unknown][] = [
  ["sgemm a too short", "sgemm", (k) => k.sgemm(2, 2, 3, f32(5), false, f32(6), false, f32(4), 1, 0)],
  ["sgemm c too short", "sgemm", (k) => k.sgemm(2, 2, 3, f32(6), false, f32(6), false, f32(3), 1, 0)],
  ["sgemm f64 operand", "sgemm", (k) => k.sgemm(2, 2, 2, f64(4), false, f32(4), false, f32(4), 1, 0)],
  ["sgemm negative m", "sgemm", (k) => k.sgemm(-1, 2, 2, f32(4), false, f32(4), false, f32(4), 1, 0)],
  ["sgemm fractional k", "sgemm", (k) => k.sgemm(2, 2, 1.5, f32(4), false, f32(4), false, f32(4), 1, 0)],
  ["sgemm NaN n", "sgemm", (k) => k.sgemm(2, Number.NaN, 2, f32(4), false, f32(4), false, f32(4), 1, 0)],
  ["sgemm huge sizes", "sgemm", (k) => k.sgemm(2 ** 40, 2 ** 40, 2, f32(4), false, f32(4), false, f32(4), 1, 0)],
  ["dgemm f32 operand", "dgemm", (k) => k.dgemm(2, 2, 2, f64(4), false, f64(4), false, f32(4), 1, 0)],
  ["ssyrk h too short", "ssyrk", (k) => k.ssyrk(3, 4, f32(12), f32(15), 1)],
  ["dsyrk x too short", "dsyrk", (k) => k.dsyrk(3, 4, f64(11), f64(16), 1)],
  ["spotrf a too short", "spotrf", (k) => k.spotrf(f32(8), 3)],
  ["dpotri l is f32", "dpotri", (k) => k.dpotri(f32(9), 3)],
  ["strsm bad side", "strsm", (k) => k.strsm("middle", "lower", false, false, 2, 2, f32(4), f32(4))],
  ["strsm bad uplo", "strsm", (k) => k.strsm("left", "diag", false, false, 2, 2, f32(4), f32(4))],
  ["dtrsm t too short (right side uses n)", "dtrsm", (k) => k.dtrsm("right", "lower", false, false, 2, 3, f64(4), f64(6))],
  ["fwht n not a power of two", "fwht", (k) => k.fwht(f32(12), 2, 6)],
  ["fwht x too short", "fwht", (k) => k.fwht(f32(7), 2, 4)],
  ["groupMinMax groupSize does not divide cols", "groupMinMax", (k) => k.groupMinMax(f32(12), 2, 6, 4, f32(4), f32(4))],
  ["groupMinMax outMax too short", "groupMinMax", (k) => k.groupMinMax(f32(12), 2, 6, 3, f32(4), f32(3))],
  ["quantizeGroups zp too short", "quantizeGroups", (k) => k.quantizeGroups(f32(8), 2, 4, 2, f32(4), f32(3), -8, 7, false, f32(8))],
  ["quantizeGroups out too short", "quantizeGroups", (k) => k.quantizeGroups(f32(8), 2, 4, 2, f32(4), null, -8, 7, false, f32(7))],
  ["quantizeGroups groupSize 0", "quantizeGroups", (k) => k.quantizeGroups(f32(8), 2, 4, 0, f32(4), null, -8, 7, false, f32(8))],
  ["siluMul out too short", "siluMul", (k) => k.siluMul(f32(8), f32(8), 8, f32(7))],
  ["causalAttention heads not a multiple of kvHeads", "causalAttention", (k) => k.causalAttention(f32(12), f32(8), f32(8), 2, 0, 3, 2, 2, 0, 1, f32(12))],
  ["causalAttention k too short", "causalAttention", (k) => k.causalAttention(f32(8), f32(3), f32(4), 2, 0, 2, 1, 2, 0, 1, f32(8))],
];

describe.skipIf(skip)(`native boundary checks${skip ? ` (skipped: ${reason})` : ""}`, () => {
  it("loads and reports isa and threads", () => {
    expect(addon, reason).not.toBeNull();
    expect(NATIVE_ISAS).toContain(addon!.isa);
    expect(NATIVE_ISAS).toContain(addon!.supportedIsa);
    expect(addon!.threads).toBeGreaterThanOrEqual(1);
    expect(activeBackend()).toBe(process.env.LLMQ_BACKEND === "js" ? "js" : "native");
    expect(kernelsFor("native").sgemm).toBe(addon!.kernels.sgemm);
  });

  for (const [what, kernel, call] of badCalls) {
    it(`throws for ${what} (wrapper and C++)`, () => {
      expect(() => call(addon!.kernels)).toThrow(new RegExp(`^${kernel}: `));
      // The C++ layer checks the same on its own (bypassing the TS wrapper).
      expect(() => call(raw().kernels)).toThrow(new RegExp(`^${kernel}: `));
    });
  }

  it("rejects wrong argument kinds and counts in C++", () => {
    const k = raw().kernels;
    expect(() => k.sgemm(2, 2, 2, [1, 2, 3, 4], false, f32(4), false, f32(4), 1, 0)).toThrow(TypeError);
    expect(() => k.sgemm(2, 2, 2, f32(4), 0, f32(4), false, f32(4), 1, 0)).toThrow(/transA must be a boolean/);
    expect(() => k.sgemm(2, 2)).toThrow(/expected 10 arguments/);
    expect(() => k.quantizeGroups(f32(2), 1, 2, 2, f32(1), null, 0.1, 7, false, f32(2))).toThrow(/exactly representable in f32/);
    // A subarray view covers only its own elements.
    const big = f32(16);
    expect(() => k.sgemm(2, 2, 2, big.subarray(13), false, f32(4), false, f32(4), 1, 0)).toThrow(/has 3 elements/);
  });

  it("a valid call through a subarray view writes only inside the view", () => {
    const buf = new Float32Array(10).fill(-1);
    const c = buf.subarray(3, 7);
    addon!.kernels.sgemm!(2, 2, 2, Float32Array.of(1, 2, 3, 4), false, Float32Array.of(1, 0, 0, 1), false, c, 1, 0);
    expect(Array.from(buf)).toEqual([-1, -1, -1, 1, 2, 3, 4, -1, -1, -1]);
  });

  it("setThreads and setIsa take effect and are validated", () => {
    const t0 = addon!.threads;
    addon!.setThreads(1);
    expect(addon!.threads).toBe(1);
    addon!.setThreads(t0);
    expect(addon!.threads).toBe(t0);
    expect(() => raw().setThreads(0)).toThrow(/setThreads: n must be in \[1, 256\]/);
    expect(addon!.setIsa("scalar")).toBe("scalar");
    expect(addon!.isa).toBe("scalar");
    expect(addon!.setIsa(addon!.supportedIsa)).toBe(addon!.supportedIsa);
    expect(() => raw().setIsa("sse9")).toThrow(/isa must be/);
    if (addon!.supportedIsa !== "avx512") expect(() => addon!.setIsa("avx512")).toThrow(/does not support/);
  });

  it("LLMQ_ISA and LLMQ_THREADS are honoured at load", () => {
    const script = `const a=require(${JSON.stringify(addonPath)});console.log(a.getIsa()+" "+a.getThreads())`;
    for (const isa of NATIVE_ISAS.slice(NATIVE_ISAS.indexOf(addon!.supportedIsa))) {
      const r = spawnSync(process.execPath, ["-e", script], { env: { ...process.env, LLMQ_ISA: isa, LLMQ_THREADS: "3" }, encoding: "utf8" });
      expect(r.stdout.trim()).toBe(`${isa} 3`);
    }
  });

  it("runs concurrently from a worker thread and the main thread (shared pool) with correct results", async () => {
    const { Worker } = await import("node:worker_threads");
    const n = 384;
    const code = `
      const { parentPort } = require("node:worker_threads");
      const a = require(${JSON.stringify(addonPath)});
      const n = ${n}, x = new Float32Array(n * n), c = new Float32Array(n * n);
      for (let i = 0; i < n * n; i++) x[i] = ((i * 7919) % 13) - 6;
      let sum = 0;
      for (let r = 0; r < 20; r++) { a.kernels.sgemm(n, n, n, x, false, x, true, c, 1, 0); sum += c[5 * n + 7]; }
      parentPort.postMessage(sum);`;
    const x = new Float32Array(n * n);
    for (let i = 0; i < n * n; i++) x[i] = ((i * 7919) % 13) - 6;
    let want = 0;
    for (let p = 0; p < n; p++) want += x[5 * n + p]! * x[7 * n + p]!;
    const w = new Worker(code, { eval: true });
    const done = new Promise<number>((res, rej) => {
      w.on("message", res);
      w.on("error", rej);
    });
    const c = new Float32Array(n * n);
    for (let r = 0; r < 20; r++) {
      addon!.kernels.sgemm!(n, n, n, x, false, x, true, c, 1, 0);
      expect(c[5 * n + 7]).toBe(want); // small integers: exact in f32
    }
    expect(await done).toBe(20 * want);
    await w.terminate();
  });

  it("wrapNativeAddon refuses a module that is not the kernel addon", () => {
    expect(() => wrapNativeAddon({})).toThrow(/expected kernel table/);
  });
});

describe("without the addon", () => {
  it("skips cleanly unless LLMQ_REQUIRE_NATIVE=1", (ctx) => {
    if (addon) ctx.skip("the addon is built here");
    expect(required, `LLMQ_REQUIRE_NATIVE=1 but ${reason}`).toBe(false);
  });
});
