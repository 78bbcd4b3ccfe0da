#!/usr/bin/env node
// Every changeset in .changeset/ names packages of this workspace with a valid bump, so that `changeset version`
// (and `changeset status`) cannot fail at release time on a misspelt name (the umbrella is `llmq`, not `@llmq/llmq`).
import { existsSync, readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
const names = new Set();
for (const base of ["packages", "examples"]) {
  const dir = join(root, base);
  if (!existsSync(dir)) continue;
  for (const d of readdirSync(dir)) {
    const pj = join(dir, d, "package.json");
    if (existsSync(pj)) names.add(JSON.parse(readFileSync(pj, "utf8")).name);
  }
}
const problems = [];
const dir = join(root, ".changeset");
for (const f of readdirSync(dir).filter((f) => f.endsWith(".md") && f !== "README.md")) {
  const text = readFileSync(join(dir, f), "utf8");
  const m = /^---\n([\s\S]*?)\n---\n/.exec(text);
  if (!m) {
    problems.push(`${f}: no front matter`);
    continue;
  }
  for (const line of m[1].split("\n").filter((l) => l.trim() !== "")) {
    const e = /^\s*"?([^":]+)"?\s*:\s*(major|minor|patch)\s*$/.exec(line);
    if (!e) problems.push(`${f}: cannot read "${line}" (want "package": major|minor|patch)`);
    else if (!names.has(e[1])) problems.push(`${f}: "${e[1]}" is not a package of this workspace`);
  }
}
if (problems.length > 0) {
  console.error(`changesets:\n  ${problems.join("\n  ")}`);
  process.exit(1);
}
console.log(`changesets: ok (${readdirSync(dir).filter((f) => f.endsWith(".md") && f !== "README.md").length} files)`);
