import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";

// What the real-model benches share: SmolLM2-135M-Instruct (tools/fetch_smollm2.sh) converted to an f32 HF directory,
// the Python peer, and timing whole processes with /usr/bin/time (wall seconds, peak RSS) so that both sides pay for
// their own start-up, loading and saving.

export const REPO = new URL("../../../", import.meta.url).pathname;
export const CLI = join(REPO, "packages/llmq/dist/cli.js");

/** The Python with llm-compressor / transformers: LLMQ_PYTHON, else /work/pyenv, else python3. */
export const peerPython = (): string => process.env.LLMQ_PYTHON ?? (existsSync("/work/pyenv/bin/python") ? "/work/pyenv/bin/python" : "python3");

export interface Timed {
  readonly seconds: number;
  readonly peakRssMb: number;
  /** CPU time / wall time, in % (200 = both cores busy the whole run). */
  readonly cpuPercent: number;
  readonly stdout: string;
}

/** Runs a command under /usr/bin/time; throws with its stderr tail when it fails. */
export const timed = (cmd: string, args: ReadonlyArray<string>, env: NodeJS.ProcessEnv = process.env): Timed => {
  const r = spawnSync("/usr/bin/time", ["-f", "%e %M %P", cmd, ...args], { encoding: "utf8", maxBuffer: 1 << 28, env, stdio: ["ignore", "pipe", "pipe"] });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(" ")} failed (${r.status}): ${r.stderr.slice(-3000)}`);
  const [s, kb, cpu] = r.stderr.trim().split("\n").pop()!.split(" ");
  return { seconds: Number(s), peakRssMb: Math.round(Number(kb) / 1024), cpuPercent: Number.parseInt(cpu ?? "", 10), stdout: r.stdout };
};

/** torch on the same number of threads as llmq's pool, and nothing else running on more. */
export const peerEnv = (threads: number): NodeJS.ProcessEnv => ({
  ...process.env,
  OMP_NUM_THREADS: String(threads),
  MKL_NUM_THREADS: String(threads),
  OPENBLAS_NUM_THREADS: String(threads),
  TQDM_DISABLE: "1",
  PYTHONPATH: join(REPO, "tools"),
});

/** SmolLM2 as an f32 HF directory in `dir`, or null (with the reason) when it cannot be fetched or the CLI is not built. */
export const smollm2Dir = (dir: string): { readonly fp: string } | { readonly skipped: string } => {
  if (!existsSync(CLI)) return { skipped: "packages/llmq is not built (pnpm build)" };
  const f = spawnSync("bash", [join(REPO, "tools/fetch_smollm2.sh")], { encoding: "utf8", env: { ...process.env, LLMQ_PYTHON: peerPython() } });
  if (f.status !== 0) return { skipped: `SmolLM2-135M could not be fetched: ${f.stderr.trim().split("\n").pop()}` };
  const fp = join(dir, "smollm2-fp");
  const c = spawnSync(process.execPath, [CLI, "convert", "--from", "gguf", join(REPO, f.stdout.trim()), "--output", fp, "--overwrite"], { encoding: "utf8" });
  if (c.status !== 0) throw new Error(`convert failed: ${c.stderr}`);
  return { fp };
};

/** The windows `llmq quantize/eval` would use, as JSON token ids for the peer (tools/dump_calibration_windows.mjs). */
export const dumpWindows = (fp: string, dataset: string, samples: number, seqLen: number, out: string, sampling: "shuffle" | "sequential" = "shuffle"): void => {
  const r = spawnSync(
    process.execPath,
    [join(REPO, "tools/dump_calibration_windows.mjs"), "--model", fp, "--dataset", dataset, "--num-samples", String(samples), "--seq-len", String(seqLen), "--sampling", sampling, "--out", out],
    { encoding: "utf8" },
  );
  if (r.status !== 0) throw new Error(`dump_calibration_windows failed: ${r.stderr}`);
};
