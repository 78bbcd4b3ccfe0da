#!/usr/bin/env node
// Totals the per-package vitest JSON reports into one closing line: "tests: N passed, N failed, N skipped".
import { readdirSync, readFileSync, existsSync } from "node:fs";
import { join } from "node:path";

const root = new URL("..", import.meta.url).pathname;
let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
const dirs = ["packages", "examples"].flatMap((top) => (existsSync(join(root, top)) ? readdirSync(join(root, top)).map((d) => [top, d]) : []));
for (const [top, d] of dirs) {
  const pj = join(root, top, d, "package.json");
  if (!existsSync(pj) || !JSON.parse(readFileSync(pj, "utf8")).scripts?.test) continue;
  const f = join(root, top, d, "test-results.json");
  if (!existsSync(f)) {
    missing.push(d);
    continue;
  }
  const r = JSON.parse(readFileSync(f, "utf8"));
  passed += r.numPassedTests ?? 0;
  failed += r.numFailedTests ?? 0;
  skipped += (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0);
  console.log(`  ${d.padEnd(16)} ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${(r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)} skipped`);
}
if (missing.length) console.log(`  (no report from: ${missing.join(", ")})`);
console.log(`tests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
process.exit(failed > 0 || missing.length > 0 || passed === 0 ? 1 : 0);
