import type { Options } from "tsup";

/** Shared tsup settings: ESM + CJS + .d.ts for Node 20 and browsers. */
export const baseTsup = (entry: Record<string, string> = { index: "src/index.ts" }): Options => ({
  entry,
  format: ["esm", "cjs"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "node20",
  treeshake: true,
  splitting: false,
  shims: true,
});
