import { spawn, spawnSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { deserializeSafetensors, serializeSafetensors } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import { expect } from "vitest";
import { ROOT, must } from "./stories260k.js";

// Shared by the hostile-input, signal and disk-full suites: the built CLI as a user runs it, the checks every case
// makes (exit code, exactly one `llmq:` line, no stack trace), and model directories broken on purpose.

/** The built CLI (turbo builds before it tests); fails with a clear message when it is missing. */
export const CLI = join(ROOT, "packages/llmq/dist/cli.js");

export interface CliRun {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stdout: string;
  readonly stderr: string;
}

export const llmq = (args: ReadonlyArray<string>, cwd: string): CliRun => {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run pnpm build first`);
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", cwd, env: { ...process.env, NO_COLOR: "1" }, timeout: 120_000 });
  return { code: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
};

/** The same, in the background (for races and signals). */
export const llmqChild = (args: ReadonlyArray<string>, cwd: string) => spawn(process.execPath, [CLI, ...args], { cwd, env: { ...process.env, NO_COLOR: "1" } });

/** The lines of stderr that start with `llmq:` (the CLI's messages; progress lines do not). */
export const llmqLines = (stderr: string): ReadonlyArray<string> => stderr.split("\n").filter((l) => l.startsWith("llmq:"));

/** A failed run as the contract wants it: this exit code, one `llmq:` line matching `re`, no stack trace. */
export const expectFailure = (r: CliRun, code: number, re: RegExp, label = ""): void => {
  const ctx = `${label}\n${r.stderr}`;
  expect(r.code, ctx).toBe(code);
  expect(llmqLines(r.stderr), ctx).toHaveLength(1);
  expect(llmqLines(r.stderr)[0], ctx).toMatch(re);
  expect(llmqLines(r.stderr)[0], ctx).toMatch(/^llmq: .+ — .+ \(.+\)$/);
  expect(r.stderr, ctx).not.toMatch(/\n\s+at |RangeError|TypeError|Error: /);
};

/** Names llmq leaves only while it runs: staging directories, temporary files, locks. */
export const leftovers = (dir: string): ReadonlyArray<string> =>
  existsSync(dir) ? readdirSync(dir).filter((f) => /llmq-tmp|llmq-lock|\.staging\./.test(f)) : [];

export interface ModelEdit {
  readonly config?: (c: Record<string, unknown>) => Record<string, unknown>;
  readonly tensors?: (t: Map<string, Tensor>) => Map<string, Tensor>;
}

/** A copy of the model directory `from` at `to`, with its config.json and/or tensors edited. */
export const modelVariant = (from: string, to: string, edit: ModelEdit): string => {
  rmSync(to, { recursive: true, force: true });
  cpSync(from, to, { recursive: true });
  if (edit.config) {
    const c = JSON.parse(readFileSync(join(from, "config.json"), "utf8")) as Record<string, unknown>;
    writeFileSync(join(to, "config.json"), JSON.stringify(edit.config(c), null, 2));
  }
  if (edit.tensors) {
    const d = must(deserializeSafetensors("model.safetensors", readFileSync(join(from, "model.safetensors"))));
    writeFileSync(join(to, "model.safetensors"), must(serializeSafetensors(edit.tensors(new Map(d.tensors)), { format: "pt" })));
  }
  return to;
};

/** A fresh empty directory under `root`. */
export const freshDir = (root: string, name: string): string => {
  const d = join(root, name);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  return d;
};

/** True when `dir` is a complete checkpoint: config.json with quantization_config, weights, recipe. */
export const isCompleteCheckpoint = (dir: string): boolean => {
  if (!existsSync(join(dir, "config.json")) || !existsSync(join(dir, "model.safetensors")) || !existsSync(join(dir, "recipe.yaml"))) return false;
  const cfg = JSON.parse(readFileSync(join(dir, "config.json"), "utf8")) as Record<string, unknown>;
  const bytes = readFileSync(join(dir, "model.safetensors"));
  return typeof cfg.quantization_config === "object" && cfg.quantization_config !== null && deserializeSafetensors("model.safetensors", bytes)._tag === "Right";
};
