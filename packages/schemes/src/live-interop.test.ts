import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { encodeQuantizationArgs } from "./encode-quantization.js";
import { formatSchemeError } from "./errors.js";
import { type Case, checkCase } from "./test-support/check-case.js";

// Optional live comparison on random cases against the real compressed-tensors 0.20.0, run only when LLMQ_PYTHON
// names a python with torch + compressed-tensors 0.20.0 (+ llmcompressor for its observer). LLMQ_CT_PATH may point
// at a --target install of compressed-tensors 0.20.0 that is put first on PYTHONPATH.

const python = process.env.LLMQ_PYTHON;
const script = new URL("../../../tools/gen_scheme_fixtures.py", import.meta.url).pathname;

const load = (seed: number, count: number): Case[] => {
  const env = { ...process.env };
  const ct = process.env.LLMQ_CT_PATH;
  if (ct !== undefined && existsSync(ct)) env.PYTHONPATH = ct + (env.PYTHONPATH ? `:${env.PYTHONPATH}` : "");
  const r = spawnSync(python!, [script, "--live", String(seed), String(count)], { env, encoding: "utf8", maxBuffer: 1 << 28 });
  if (r.status !== 0) throw new Error(`${python} ${script} --live failed: ${r.stderr}`);
  const out = r.stdout;
  return (JSON.parse(out.slice(out.indexOf('{"meta"'))) as { cases: Case[] }).cases;
};

describe.skipIf(python === undefined)("live interop with compressed-tensors (LLMQ_PYTHON)", () => {
  const seed = Number(process.env.LLMQ_SEED ?? Date.now() % 100000);
  it(`random weight and activation cases, seed ${seed}`, () => {
    const cases = load(seed, 150);
    expect(cases.length).toBe(300);
    for (const c of cases) {
      try {
        checkCase(c);
      } catch (e) {
        throw new Error(`${c.name} (seed ${seed}): ${(e as Error).message}`);
      }
    }
  });
});

interface LiveArgs {
  readonly input: unknown;
  readonly dump?: unknown;
  readonly error?: string;
  readonly loc?: string;
  readonly message?: string;
}

describe.skipIf(python === undefined)("live decoder interop with compressed-tensors (LLMQ_PYTHON)", () => {
  const seed = Number(process.env.LLMQ_SEED ?? Date.now() % 100000);
  it(`random QuantizationArgs inputs, seed ${seed}`, () => {
    const env = { ...process.env };
    const ct = process.env.LLMQ_CT_PATH;
    if (ct !== undefined && existsSync(ct)) env.PYTHONPATH = ct + (env.PYTHONPATH ? `:${env.PYTHONPATH}` : "");
    const r = spawnSync(python!, [script, "--live-args", String(seed), "600"], { env, encoding: "utf8", maxBuffer: 1 << 26 });
    if (r.status !== 0) throw new Error(`${python} ${script} --live-args failed: ${r.stderr}`);
    const all = (JSON.parse(r.stdout.slice(r.stdout.indexOf('{"meta"'))) as { args: LiveArgs[] }).args;
    const wrong: string[] = [];
    for (const a of all) {
      const d = decodeQuantizationArgs(a.input);
      if (a.dump !== undefined) {
        if (E.isLeft(d)) wrong.push(`${JSON.stringify(a.input)}: CT accepts, we reject: ${formatSchemeError(d.left)}`);
        else if (JSON.stringify(encodeQuantizationArgs(d.right)) !== JSON.stringify(a.dump))
          wrong.push(`${JSON.stringify(a.input)}: dump ${JSON.stringify(encodeQuantizationArgs(d.right))} vs CT ${JSON.stringify(a.dump)}`);
      } else if (E.isRight(d)) wrong.push(`${JSON.stringify(a.input)}: CT rejects (${a.error}: ${a.message}), we accept`);
      else if (a.loc) {
        const p = "path" in d.left ? d.left.path : "";
        if (p !== a.loc && !p.startsWith(`${a.loc}.`)) wrong.push(`${JSON.stringify(a.input)}: error at ${p}, CT at ${a.loc} (${a.message})`);
      }
    }
    expect(wrong.slice(0, 20)).toEqual([]);
  });
});
