#!/usr/bin/env node
// The size budget of `pnpm lint`: no function in a package's src (tests excluded) spans more than MAX_LINES lines.
// Functions that were longer when the budget came in are listed in tooling/size-budget.json with the length they
// had; they may shrink, never grow, and a new long function fails. Run with --update to rewrite the list after a
// long function was split (the list only ever loses entries or lowers them).
import { readFileSync, readdirSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const MAX_LINES = 60;
const root = new URL("..", import.meta.url).pathname;
const budgetFile = join(root, "tooling/size-budget.json");
const budget = JSON.parse(readFileSync(budgetFile, "utf8"));

const files = (dir) =>
  readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) return f === "node_modules" || f === "dist" ? [] : files(p);
    return /\.ts$/.test(f) && !/\.test\.ts$|\.d\.ts$/.test(f) ? [p] : [];
  });

const nameOf = (node) => {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  const p = node.parent;
  if (p && ts.isVariableDeclaration(p) && ts.isIdentifier(p.name)) return p.name.text;
  if (p && ts.isPropertyAssignment(p) && (ts.isIdentifier(p.name) || ts.isStringLiteral(p.name))) return p.name.text;
  return null;
};

const found = {};
for (const pkg of readdirSync(join(root, "packages"))) {
  const src = join(root, "packages", pkg, "src");
  try {
    statSync(src);
  } catch {
    continue;
  }
  for (const file of files(src)) {
    const text = readFileSync(file, "utf8");
    const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    // Anonymous functions (callbacks) are named after the nearest named function around them.
    const visit = (node, outer) => {
      let here = outer;
      if (ts.isFunctionDeclaration(node) || ts.isArrowFunction(node) || ts.isFunctionExpression(node) || ts.isMethodDeclaration(node)) {
        const start = sf.getLineAndCharacterOfPosition(node.getStart(sf)).line;
        const end = sf.getLineAndCharacterOfPosition(node.getEnd()).line;
        const lines = end - start + 1;
        const own = nameOf(node);
        here = own ?? `${outer}/(anonymous)`;
        if (lines > MAX_LINES) {
          const key = `${relative(root, file)}:${here}`;
          found[key] = Math.max(found[key] ?? 0, lines);
        }
      }
      ts.forEachChild(node, (c) => visit(c, here));
    };
    visit(sf, "(module)");
  }
}

if (process.argv.includes("--update")) {
  const next = Object.fromEntries(Object.entries(found).filter(([k, n]) => budget[k] !== undefined && n <= budget[k]).sort());
  writeFileSync(budgetFile, `${JSON.stringify(next, null, 2)}\n`);
  console.log(`size budget: ${Object.keys(next).length} grandfathered functions`);
  process.exit(0);
}

const over = Object.entries(found).filter(([k, n]) => budget[k] === undefined || n > budget[k]);
if (over.length > 0) {
  for (const [k, n] of over)
    console.error(`${k}: ${n} lines (budget ${budget[k] ?? MAX_LINES}); split it into named functions of at most ${MAX_LINES} lines`);
  process.exit(1);
}
console.log(`size budget: ok (functions ≤ ${MAX_LINES} lines; ${Object.keys(budget).length} older ones at most their recorded length)`);
