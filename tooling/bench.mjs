#!/usr/bin/env node
// `pnpm bench <name> [--json] [...]` runs packages/*/bench/<name>.ts (or the package whose bench dir has it).
import { readdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import { spawnSync } from "node:child_process";

const [name, ...rest] = process.argv.slice(2);
const root = new URL("..", import.meta.url).pathname;
const found = [];
for (const d of readdirSync(join(root, "packages"))) {
  const dir = join(root, "packages", d, "bench");
  if (!existsSync(dir)) continue;
  for (const f of readdirSync(dir)) {
    const m = /^(.*)\.bench\.ts$/.exec(f);
    if (m) found.push({ name: m[1], file: join(dir, f) });
  }
}
const hit = found.find((b) => b.name === name);
if (!hit) {
  console.error(`usage: pnpm bench <name> [--json]\navailable: ${found.map((b) => b.name).sort().join(", ") || "(none)"}`);
  process.exit(1);
}
const tsx = join(root, "node_modules", ".bin", "tsx");
const r = spawnSync(tsx, ["--conditions=@llmq/source", hit.file, ...rest], { stdio: "inherit" });
process.exit(r.status ?? 2);
