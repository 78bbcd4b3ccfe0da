#!/usr/bin/env node
// Bundles the page for browsers (esbuild --platform=browser) into dist/: index.html + main.js.
import { copyFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import * as esbuild from "esbuild";

const here = new URL(".", import.meta.url).pathname;

/** Builds the page into `out` (default dist/). */
export const buildPage = async (out = join(here, "dist")) => {
  mkdirSync(out, { recursive: true });
  await esbuild.build({ entryPoints: [join(here, "src/main.ts")], bundle: true, platform: "browser", conditions: ["@llmq/source"], format: "esm", target: "es2022", outfile: join(out, "main.js"), loader: { ".yaml": "text" }, logLevel: "warning" });
  copyFileSync(join(here, "index.html"), join(out, "index.html"));
  return out;
};

if (process.argv[1] === new URL(import.meta.url).pathname) await buildPage();
