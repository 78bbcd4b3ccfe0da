import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliRun, isCompleteCheckpoint, leftovers, llmq, llmqChild, llmqLines } from "./test-support/hostile.js";
import { ROOT, convertStories } from "./test-support/stories260k.js";

// Quantize killed at random moments: once or twice with SIGINT, with SIGTERM, SIGHUP or SIGKILL. Afterwards the output
// is absent or complete, a handled signal leaves one `llmq:` line, its exit code and no staging or lock, and the next
// run on the same --output without --overwrite succeeds (or, if the killed run had already committed, refuses the
// complete output) and leaves no staging directory either — SIGKILL's leftovers included. LLMQ_SIGNAL_RUNS sets the
// number of kills (default 20, four per kind), LLMQ_SIGNAL_SEED the moments.

const RUNS = Number(process.env.LLMQ_SIGNAL_RUNS ?? 20);
const SEED = Number(process.env.LLMQ_SIGNAL_SEED ?? 20261206);
const KINDS = ["SIGINT", "SIGINT×2", "SIGTERM", "SIGHUP", "SIGKILL"] as const;
const EXIT: Readonly<Record<(typeof KINDS)[number], number | null>> = { SIGINT: 130, "SIGINT×2": 130, SIGTERM: 143, SIGHUP: 129, SIGKILL: null };

const tmp = mkdtempSync(join(tmpdir(), "llmq-signals-"));
const fp = join(tmp, "fp");
const ids = join(tmp, "ids.json");
const GPTQ = join(ROOT, "fixtures/recipes/stories260k-w4a16-g32-gptq.yaml");
const args = (out: string): string[] => ["quantize", "--model", fp, "--output", out, "--recipe", GPTQ, "--dataset", ids];

/** Deterministic moments (mulberry32), so a failure can be replayed with the same LLMQ_SIGNAL_SEED. */
const rng = (seed: number): (() => number) => {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 2 ** 32;
  };
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

const killAt = async (out: string, kind: (typeof KINDS)[number], delayMs: number): Promise<CliRun> => {
  const child = llmqChild(args(out), tmp);
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (d) => {
    stderr += String(d);
  });
  child.stdout.on("data", (d) => {
    stdout += String(d);
  });
  const closed = new Promise<CliRun>((resolve) => child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr })));
  await sleep(delayMs);
  if (kind === "SIGINT×2") {
    child.kill("SIGINT");
    await sleep(15);
    child.kill("SIGINT");
  } else child.kill(kind);
  return closed;
};

// The moments are fractions of one uninterrupted run, timed here, so they land in flight on fast and slow machines.
let baselineMs = 2000;

beforeAll(async () => {
  await convertStories(fp);
  writeFileSync(ids, JSON.stringify(Array.from({ length: 16 }, (_, k) => Array.from({ length: 128 }, (_, j) => (k * 131 + j * 7) % 512))));
  const t0 = performance.now();
  expect(llmq(args(join(tmp, "baseline")), tmp).code).toBe(0);
  baselineMs = performance.now() - t0;
}, 120_000);

describe(`quantize killed at ${RUNS} random moments (seed ${SEED}; LLMQ_SIGNAL_RUNS, LLMQ_SIGNAL_SEED)`, () => {
  const next = rng(SEED);
  const plan = Array.from({ length: RUNS }, (_, i) => ({ i, kind: KINDS[i % KINDS.length]!, at: Math.round((0.02 + next() * 0.93) * 100) }));

  const outcomes = { completed: 0, handled: 0, killed: 0 };
  afterAll(() => {
    console.log(`signal outcomes: ${JSON.stringify(outcomes)} (uninterrupted run ${Math.round(baselineMs)} ms)`);
    // The moments must hit runs in flight, or the suite tests nothing: most kills land before the commit.
    if (RUNS >= 10) expect(outcomes.handled + outcomes.killed, JSON.stringify(outcomes)).toBeGreaterThanOrEqual(RUNS / 2);
  });

  it.each(plan)("run $i: $kind at $at % of a run", async ({ i, kind, at }) => {
    const out = join(tmp, `out-${i}`);
    const r = await killAt(out, kind, (baselineMs * at) / 100);
    const completed = r.code === 0;
    outcomes[completed ? "completed" : r.signal !== null ? "killed" : "handled"]++;
    if (completed) expect(isCompleteCheckpoint(out), r.stderr).toBe(true);
    else if (r.signal !== null) {
      // Killed by the signal itself: SIGKILL, or a signal that arrived before the CLI installed its handlers.
      expect(r.signal === "SIGKILL" || kind !== "SIGKILL", r.stderr).toBe(true);
      expect(existsSync(out) ? isCompleteCheckpoint(out) : true).toBe(true);
    } else {
      expect(r.code, r.stderr).toBe(EXIT[kind]);
      expect(llmqLines(r.stderr), r.stderr).toHaveLength(1);
      expect(llmqLines(r.stderr)[0]).toMatch(/^llmq: interrupted — SIG(INT|TERM|HUP)(, then SIGINT)? received; no partial output was left \(run the command again/);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(existsSync(out), r.stderr).toBe(false);
      expect(leftovers(tmp).filter((f) => f.startsWith(`.out-${i}.`)), r.stderr).toEqual([]);
    }
    const committed = existsSync(out);
    const t0 = performance.now();
    const again = llmq(args(out), tmp);
    if (committed) expect(again.stderr).toMatch(/exists and is not empty/);
    else {
      expect(again.code, again.stderr).toBe(0);
      // The machine may have been busier when the baseline was timed: follow the fastest whole run seen, so the next
      // moments still land in flight (a baseline too long makes every late kill land after the commit).
      baselineMs = Math.min(baselineMs, performance.now() - t0);
    }
    expect(isCompleteCheckpoint(out)).toBe(true);
    expect(leftovers(tmp).filter((f) => f.startsWith(`.out-${i}.`))).toEqual([]);
  }, 120_000);
});
