import type * as NodeModule from "node:module";
import { jsKernels } from "./backend-js.js";
import { type NativeIsa, wrapNativeAddon } from "./backend-native.js";
import type { BackendName, Kernels } from "./kernels.js";
import { nodeBuiltin } from "./node-builtin.js";

// ----- native loading -----

/** What the native addon exports: a partial kernel table plus build facts. */
export interface NativeAddon {
  readonly kernels: Partial<Kernels>;
  /** The SIMD level in effect: "avx512" | "avx2" | "scalar" (the best the CPU has, lowered by LLMQ_ISA / setIsa). */
  readonly isa: string;
  /** The best level this CPU supports. */
  readonly supportedIsa: NativeIsa;
  /** Worker threads of the native pool (default: online CPUs, or LLMQ_THREADS). */
  readonly threads: number;
  readonly setThreads: (n: number) => void;
  /** Forces a SIMD level ≤ supportedIsa for the whole process (tests use it to run every code path). */
  readonly setIsa: (isa: NativeIsa) => NativeIsa;
}

let nativeState: { addon: NativeAddon | null; error: string | null } | undefined;
let warned = false;

/** Loader injected by the native entry (see native-loader.ts); kept indirect so browsers never touch node:module. */
const loadNative = (): NativeAddon | null => {
  if (nativeState) return nativeState.addon;
  try {
    const req = nodeBuiltin<typeof NodeModule>("node:module").createRequire(import.meta.url);
    const paths = ["../build/Release/llmq_tensor.node", "../../build/Release/llmq_tensor.node"];
    let lastErr: unknown = null;
    for (const p of paths) {
      try {
        // biome-ignore lint/suspicious/noExplicitAny: the addon's shape is checked below
        const raw: any = req(p);
        const addon = wrapAddon(raw);
        nativeState = { addon, error: null };
        return addon;
      } catch (e) {
        lastErr = e;
      }
    }
    nativeState = { addon: null, error: String((lastErr as Error)?.message ?? lastErr) };
  } catch (e) {
    nativeState = { addon: null, error: String((e as Error)?.message ?? e) };
  }
  return null;
};

/** Hook for the native module wrapper (backend-native.ts checks every kernel's arguments before the addon runs). */
// biome-ignore lint/suspicious/noExplicitAny: raw addon object
let wrapAddon: (raw: any) => NativeAddon = wrapNativeAddon;

/** Installs the function that turns the raw addon into a checked kernel table. */
// biome-ignore lint/suspicious/noExplicitAny: raw addon object
export const setNativeWrapper = (f: (raw: any) => NativeAddon): void => {
  wrapAddon = f;
};

/** The native addon if it loaded, or null (the reason is in `nativeError()`). */
export const nativeAddon = (): NativeAddon | null => loadNative();

export const nativeError = (): string | null => {
  loadNative();
  return nativeState?.error ?? null;
};

// ----- selection -----

let forced: BackendName | undefined;

/** Forces a backend for the whole process (overrides LLMQ_BACKEND). */
export const setBackend = (b: BackendName | undefined): void => {
  forced = b;
};

const envBackend = (): BackendName | undefined => {
  const v = typeof process !== "undefined" ? process.env?.LLMQ_BACKEND : undefined;
  return v === "js" || v === "native" ? v : undefined;
};

/** The backend in effect: forced, else LLMQ_BACKEND, else native when it loads, else js. */
export const activeBackend = (): BackendName => {
  const want = forced ?? envBackend();
  if (want === "js") return "js";
  if (loadNative()) return "native";
  if (!warned) {
    warned = true;
    const why = nativeState?.error ?? "not built";
    const msg = `llmq: native tensor addon unavailable (${why.split("\n")[0]}); using the pure-TypeScript backend (slower)`;
    if (want === "native") throw new Error(msg);
    if (typeof process !== "undefined") process.emitWarning?.(msg);
  }
  return "js";
};

/** The kernel table of a backend. Native fills the kernels it does not implement from js. */
export const kernelsFor = (b: BackendName = activeBackend()): Kernels => {
  if (b === "js") return jsKernels;
  const addon = loadNative();
  if (!addon) throw new Error(`llmq: native backend requested but unavailable: ${nativeState?.error ?? "not built"}`);
  return { ...jsKernels, ...addon.kernels };
};

/** The kernels of the active backend. */
export const kernels = (): Kernels => kernelsFor();
