import { spawnSync } from "node:child_process";

// Command-line handling shared by the `pnpm bench <name>` scripts: `--json` (JSON lines on stdout only) and
// `--name value` options.

export interface BenchArgs {
  /** `--json`: stdout carries one JSON object per line and nothing else. */
  readonly json: boolean;
  /** `--name <number>`, or `dflt`. */
  readonly num: (name: string, dflt: number) => number;
  /** `--name <string>`, or `dflt`. */
  readonly str: (name: string, dflt: string) => string;
  /** A line on stderr (progress and human notes never go to stdout). */
  readonly log: (s: string) => void;
}

export const benchArgs = (argv: ReadonlyArray<string> = process.argv.slice(2)): BenchArgs => {
  const value = (name: string): string | undefined => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 ? argv[i + 1] : undefined;
  };
  return {
    json: argv.includes("--json"),
    num: (name, dflt) => {
      const v = value(name);
      return v === undefined ? dflt : Number(v);
    },
    str: (name, dflt) => value(name) ?? dflt,
    log: (s) => {
      process.stderr.write(`${s}\n`);
    },
  };
};

/**
 * Runs a Python peer script (`python -c script ...args`) on `threads` BLAS threads and returns the JSON object its last
 * stdout line holds; on failure prints the peer's stderr tail and exits 2.
 */
export const runPythonPeer = <T>(script: string, args: ReadonlyArray<string>, threads: number, log: (s: string) => void): T => {
  const python = process.env.LLMQ_PYTHON ?? "/work/pyenv/bin/python";
  const env = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
  const p = spawnSync(python, ["-c", script, ...args], { env, encoding: "utf8", maxBuffer: 64 << 20 });
  const last = p.stdout.trim().split("\n").pop() ?? "";
  if (p.status !== 0 || !last.startsWith("{")) {
    log(p.stderr.slice(-4000));
    process.exit(2);
  }
  return JSON.parse(last) as T;
};
