#!/usr/bin/env node
// Builds the native SIMD addon (build/Release/llmq_tensor.node) with node-gyp. Run by this package's `install`
// script. A failed build is not fatal (the pure-TypeScript backend takes over) unless LLMQ_REQUIRE_NATIVE=1, which
// CI sets so that a broken addon fails the run instead of silently falling back.
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, statSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const pkgDir = join(dirname(fileURLToPath(import.meta.url)), "..");
const verbose = process.argv.includes("--verbose");
const force = process.argv.includes("--force");
const required = process.env.LLMQ_REQUIRE_NATIVE === "1";

// node-gyp is bundled with both npm and pnpm; the package managers say where through npm_config_node_gyp.
const findNodeGyp = () => {
  const candidates = [process.env.npm_config_node_gyp];
  try {
    candidates.push(createRequire(import.meta.url).resolve("node-gyp/bin/node-gyp.js"));
  } catch {
    // not installed as a package: fall through to the copies bundled with npm and pnpm
  }
  const prefix = join(dirname(process.execPath), "..", "lib", "node_modules");
  candidates.push(
    join(prefix, "npm", "node_modules", "node-gyp", "bin", "node-gyp.js"),
    join(prefix, "pnpm", "dist", "node_modules", "node-gyp", "bin", "node-gyp.js"),
  );
  return candidates.find((c) => c && existsSync(c));
};

const fail = (why) => {
  const msg = `llmq: native tensor addon not built (${why}); the pure-TypeScript backend will be used`;
  if (required) {
    console.error(`${msg}. LLMQ_REQUIRE_NATIVE=1, so this is an error.`);
    process.exit(1);
  }
  console.warn(msg);
  process.exit(0);
};

if (process.env.LLMQ_SKIP_NATIVE === "1" && !required) fail("LLMQ_SKIP_NATIVE=1");

// `pnpm install` runs this script on every install; rebuilding an up-to-date addon would delete it for a moment
// under any process that is using it, so skip when the binary is newer than every source.
const binary = join(pkgDir, "build", "Release", "llmq_tensor.node");
const sources = [join(pkgDir, "binding.gyp"), fileURLToPath(import.meta.url), ...readdirSync(join(pkgDir, "native")).map((f) => join(pkgDir, "native", f))];
if (!force && existsSync(binary) && sources.every((s) => statSync(s).mtimeMs < statSync(binary).mtimeMs)) {
  if (verbose) console.log("llmq: build/Release/llmq_tensor.node is up to date (--force rebuilds)");
  process.exit(0);
}
const gyp = findNodeGyp();
if (!gyp) fail("node-gyp not found");
const args = [gyp, "rebuild", "--release"];
// Offline machines have the Node headers under /usr (npm_config_nodedir=/usr); node-gyp would otherwise download them.
const nodedir = process.env.npm_config_nodedir ?? (existsSync("/usr/include/node/node_api.h") ? "/usr" : undefined);
if (nodedir) args.push(`--nodedir=${nodedir}`);
if (!verbose) args.push("--silent");
const r = spawnSync(process.execPath, args, { cwd: pkgDir, stdio: verbose ? "inherit" : ["ignore", "pipe", "pipe"], encoding: "utf8" });
if (r.status !== 0) {
  const out = `${r.stdout ?? ""}${r.stderr ?? ""}`.trim().split("\n");
  const firstError = out.find((l) => /error/i.test(l)) ?? out.at(-1) ?? `exit ${r.status}`;
  if (!verbose && out.length > 0 && required) console.error(out.slice(-40).join("\n"));
  fail(`node-gyp exited with ${r.status ?? r.signal}: ${firstError}`);
}
if (!existsSync(binary)) fail("build/Release/llmq_tensor.node missing after node-gyp");
if (verbose) console.log("llmq: built build/Release/llmq_tensor.node");
