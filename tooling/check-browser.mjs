#!/usr/bin/env node
// Browser safety of every package's core entry (the "." export), in two ways:
//  1. source lint: no file reachable from src/index.ts imports a Node built-in with a value import (`import type`
//     is erased and allowed; Node-only code reaches built-ins through @llmq/tensor's nodeBuiltin at run time);
//  2. with --bundle (CI, after the build): esbuild bundles each dist/index.js with --platform=browser, and the bundle
//     is evaluated in a context with only browser globals (no process, Buffer, require), so a module's top level that
//     touches Node fails here rather than in a page.
import { builtinModules } from "node:module";
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import vm from "node:vm";

const root = new URL("..", import.meta.url).pathname;
const pkgsDir = join(root, "packages");
const builtins = new Set(builtinModules);
const isBuiltin = (spec) => spec.startsWith("node:") || builtins.has(spec.split("/")[0]);

// Static imports/re-exports (not `import type` / `export type`), side-effect imports and dynamic imports.
const valueImportRe = /(?:^|[\n;])\s*(?:import|export)\s+(?!type\s)(?:[^'";]*?\sfrom\s*)?["']([^"']+)["']|(?<!typeof\s)import\(\s*["']([^"']+)["']\s*\)/g;

const coreEntries = () =>
  readdirSync(pkgsDir).flatMap((d) => {
    const pj = join(pkgsDir, d, "package.json");
    if (!existsSync(pj)) return [];
    const pkg = JSON.parse(readFileSync(pj, "utf8"));
    const dot = pkg.exports?.["."];
    if (dot === undefined) return [];
    return [{ dir: join(pkgsDir, d), name: pkg.name, src: join(pkgsDir, d, dot["@llmq/source"]), dist: join(pkgsDir, d, dot.import.default) }];
  });

const resolveLocal = (from, spec) => {
  const base = resolve(dirname(from), spec);
  for (const c of [base.replace(/\.js$/, ".ts"), base, `${base}.ts`, join(base, "index.ts")]) if (existsSync(c)) return c;
  return null;
};

const lintEntry = (entry) => {
  const errors = [];
  const seen = new Set();
  const stack = [entry.src];
  while (stack.length > 0) {
    const file = stack.pop();
    if (seen.has(file)) continue;
    seen.add(file);
    const text = readFileSync(file, "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/[^\n]*/g, "");
    for (const m of text.matchAll(valueImportRe)) {
      const spec = m[1] ?? m[2];
      if (isBuiltin(spec)) errors.push(`${relative(root, file)}: imports the Node built-in "${spec}" (core entry of ${entry.name}); use nodeBuiltin from @llmq/tensor or a /node entry`);
      else if (spec.startsWith(".")) {
        const next = resolveLocal(file, spec);
        if (next !== null) stack.push(next);
      }
    }
  }
  return errors;
};

const bundleEntry = async (esbuild, entry) => {
  if (!existsSync(entry.dist)) return [`${entry.name}: ${relative(root, entry.dist)} is missing (build first)`];
  try {
    const out = await esbuild.build({ entryPoints: [entry.dist], bundle: true, platform: "browser", format: "iife", globalName: "entry", write: false, logLevel: "silent" });
    const browserGlobals = { TextEncoder, TextDecoder, console, atob, btoa, WebAssembly, URL, setTimeout, clearTimeout, queueMicrotask, performance, crypto: globalThis.crypto };
    const ctx = vm.createContext(browserGlobals);
    try {
      vm.runInContext(out.outputFiles[0].text, ctx);
    } catch (e) {
      return [`${entry.name}: its browser bundle fails at load without Node globals: ${e?.message ?? e}`];
    }
    return [];
  } catch (e) {
    return (e.errors ?? [{ text: String(e) }]).map((x) => `${entry.name}: esbuild --platform=browser: ${x.text}${x.location ? ` (${x.location.file}:${x.location.line})` : ""}`);
  }
};

const entries = coreEntries();
const errors = entries.flatMap(lintEntry);
if (process.argv.includes("--bundle")) {
  const esbuild = await import("esbuild");
  for (const e of entries) errors.push(...(await bundleEntry(esbuild, e)));
}
if (errors.length > 0) {
  for (const e of errors) console.error(e);
  console.error(`check-browser: ${errors.length} problem(s)`);
  process.exit(1);
}
console.log(`check-browser: ${entries.length} core entries browser-safe${process.argv.includes("--bundle") ? " (esbuild --platform=browser bundles)" : ""}`);
