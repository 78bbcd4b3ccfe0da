#!/usr/bin/env node
// Enforces the package dependency DAG of DESIGN.md §2: a package may import only the packages listed for it.
// Both package.json dependencies and import specifiers in src/ are checked, so an edge cannot sneak in through
// a hoisted node_modules.
import { readFileSync, readdirSync, existsSync, statSync } from "node:fs";
import { join, relative } from "node:path";

export const ALLOWED = {
  "@llmq/tensor": [],
  "@llmq/schemes": ["@llmq/tensor"],
  "@llmq/observers": ["@llmq/tensor", "@llmq/schemes"],
  "@llmq/gptq": ["@llmq/tensor", "@llmq/schemes", "@llmq/observers"],
  "@llmq/transforms": ["@llmq/tensor", "@llmq/schemes", "@llmq/observers"],
  "@llmq/kv-cache": ["@llmq/tensor", "@llmq/schemes", "@llmq/observers"],
  "@llmq/serialization": ["@llmq/tensor", "@llmq/schemes"],
  // models names modules and matches targets, which needs the scheme vocabulary (schemes sits below serialization).
  "@llmq/models": ["@llmq/tensor", "@llmq/schemes", "@llmq/serialization"],
  // runtime-gpu reads the safetensors bytes of a checkpoint itself (a browser has no directory to hand to models), and
  // takes a checkpoint's kv_cache_scheme and k/v scales as kv-cache reads them (the quantized KV cache on the GPU).
  "@llmq/runtime-gpu": ["@llmq/tensor", "@llmq/schemes", "@llmq/serialization", "@llmq/models", "@llmq/kv-cache"],
  // QAT differentiates the Llama forward (models' config and RoPE tables) and drives modifiers (observers' contract).
  "@llmq/train": ["@llmq/tensor", "@llmq/schemes", "@llmq/observers", "@llmq/models"],
  // transformers' quantization configs and HfQuantizer contract: configs are JSON (serialization's Python JSON), the
  // quantize-on-load writers store tensors in the layouts transformers reads.
  "@llmq/hf-quantizers": ["@llmq/tensor", "@llmq/schemes", "@llmq/serialization"],
  llmq: [
    "@llmq/tensor", "@llmq/schemes", "@llmq/observers", "@llmq/gptq", "@llmq/transforms",
    "@llmq/kv-cache", "@llmq/serialization", "@llmq/models", "@llmq/runtime-gpu", "@llmq/train", "@llmq/hf-quantizers",
  ],
};

const root = new URL("..", import.meta.url).pathname;
const pkgsDir = join(root, "packages");
const isWorkspaceName = (n) => n === "llmq" || n.startsWith("@llmq/");

const walk = (dir) =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? walk(p) : /\.(ts|mts|cts|js|mjs)$/.test(f) ? [p] : [];
  });

const importRe = /(?:import|export)\s[^'"]*?from\s*["']([^"']+)["']|import\(\s*["']([^"']+)["']\s*\)|require\(\s*["']([^"']+)["']\s*\)/g;
// Tests may import a package of the table that is only a devDependency (e.g. llmq's tests run @llmq/runtime-gpu).
const isTestFile = (file) => /\.test\.[cm]?[jt]s$/.test(file) || file.includes("/test-support/");
const pkgOf = (spec) => (spec.startsWith("@") ? spec.split("/").slice(0, 2).join("/") : spec.split("/")[0]);

const errors = [];
for (const d of readdirSync(pkgsDir)) {
  const pj = join(pkgsDir, d, "package.json");
  if (!existsSync(pj)) continue;
  const meta = JSON.parse(readFileSync(pj, "utf8"));
  const name = meta.name;
  if (meta.private && !(name in ALLOWED)) continue; // private helpers (test utils) are outside the DAG
  const allowed = ALLOWED[name];
  if (!allowed) {
    errors.push(`${name}: not in the dependency table of tooling/check-deps.mjs (DESIGN.md §2); add it there first`);
    continue;
  }
  const deps = { ...meta.dependencies, ...meta.peerDependencies, ...meta.optionalDependencies };
  for (const dep of Object.keys(deps).filter(isWorkspaceName)) {
    if (!allowed.includes(dep)) errors.push(`${name} must not depend on ${dep} (package.json): allowed are ${allowed.join(", ") || "none"}`);
  }
  const src = join(pkgsDir, d, "src");
  if (!existsSync(src)) continue;
  for (const file of walk(src)) {
    const text = readFileSync(file, "utf8");
    for (const m of text.matchAll(importRe)) {
      const spec = m[1] ?? m[2] ?? m[3];
      if (!spec || spec.startsWith(".") || spec.startsWith("node:")) continue;
      const dep = pkgOf(spec);
      if (!isWorkspaceName(dep) || dep === name) continue;
      if (!allowed.includes(dep)) {
        errors.push(`${name} must not import ${dep} (${relative(root, file)}): allowed are ${allowed.join(", ") || "none"}`);
      } else if (!(dep in deps) && !(isTestFile(file) && dep in (meta.devDependencies ?? {}))) {
        errors.push(`${name} imports ${dep} (${relative(root, file)}) without declaring it in package.json`);
      }
    }
  }
}

if (errors.length > 0) {
  console.error(`dependency DAG check failed (DESIGN.md §2):\n  ${errors.join("\n  ")}`);
  process.exit(1);
}
console.log("dependency DAG check: ok");
