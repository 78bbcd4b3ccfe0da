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
