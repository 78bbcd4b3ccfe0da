// `pnpm -s bench schemes [--json] [--rows 4096] [--cols 11008] [--group 128]`
// Per-group int4 RTN of an f32 weight [rows, cols]: memoryless min-max statistics + calculate_qparams + quantize to
// int8 codes (llmq `rtnQuantizeWeight`), in GB/s of f32 input. Peer (same run, same tensor, 2 threads): torch through
// compressed-tensors 0.20.0 — amin/amax per group, calculate_qparams, fake_quantize. The backend used is printed; the
// js backend is the fallback when the native addon is absent.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tensor, activeBackend, nativeAddon } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { decodeQuantizationArgs, formatSchemeError, rtnQuantizeWeight } from "../src/index.js";
import { benchArgs } from "../../../tooling/bench-args.js";

const { json, num: opt, log } = benchArgs();
const rows = opt("rows", 4096);
const cols = opt("cols", 11008);
const group = opt("group", 128);
const threads = 2;
const reps = 3;

let seed = 0x2545f491;
const uniform = (): number => {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return ((seed >>> 0) + 0.5) / 4294967296;
};
const w = new Float32Array(rows * cols);
for (let i = 0; i < w.length; i++) w[i] = (uniform() + uniform() + uniform() - 1.5) * 0.05;
const weight = new Tensor("f32", [rows, cols], w);
const argsR = decodeQuantizationArgs({ num_bits: 4, type: "int", symmetric: true, strategy: "group", group_size: group });
if (E.isLeft(argsR)) throw new Error(formatSchemeError(argsR.left));
const args = argsR.right;

const native = nativeAddon();
const backend = activeBackend();
if (native !== null) native.setThreads(threads);
const run = (): number => {
  const t = performance.now();
  const r = rtnQuantizeWeight(weight, args);
  const s = (performance.now() - t) / 1000;
  if (E.isLeft(r)) throw new Error(formatSchemeError(r.left));
  return s;
};
run(); // warm-up (JIT)
let best = Infinity;
for (let k = 0; k < reps; k++) best = Math.min(best, run());
const gbs = (w.byteLength / best) / 1e9;
log(`llmq rtnQuantizeWeight int4 g${group} [${rows}×${cols}] f32: ${best.toFixed(3)} s = ${gbs.toFixed(2)} GB/s (backend ${backend}${native ? `, ${native.isa}, ${native.threads} threads` : ""}, best of ${reps})`);

let peer: { seconds: number; torch: string; threads: number } | null = null;
const python = process.env.LLMQ_PYTHON ?? "/work/pyenv/bin/python";
if (existsSync(python)) {
  const dir = mkdtempSync(join(tmpdir(), "llmq-schemes-bench-"));
  writeFileSync(join(dir, "W.f32"), w);
  const script = `
import json, sys, time, numpy as np, torch
torch.set_num_threads(${threads})
import compressed_tensors
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.lifecycle.forward import fake_quantize
from compressed_tensors.quantization.utils import calculate_qparams
d = sys.argv[1]
W = torch.from_numpy(np.fromfile(d + "/W.f32", dtype=np.float32).reshape(${rows}, ${cols}))
args = QuantizationArgs(num_bits=4, type="int", symmetric=True, strategy="group", group_size=${group})
def step():
    t = time.perf_counter()
    g = W.unflatten(-1, (${cols} // ${group}, ${group}))
    scale, zp = calculate_qparams(torch.amin(g, dim=-1), torch.amax(g, dim=-1), args)
    fake_quantize(W, scale, zp, args)
    return time.perf_counter() - t
step()
secs = min(step() for _ in range(${reps}))
json.dump({"seconds": secs, "torch": torch.__version__, "ct": compressed_tensors.__version__, "threads": torch.get_num_threads()}, open(d + "/peer.json", "w"))
`;
  const env = { ...process.env };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  if (!env.LLMQ_PYTHON && existsSync("/work/ct020/compressed_tensors")) env.PYTHONPATH = `/work/ct020${env.PYTHONPATH ? `:${env.PYTHONPATH}` : ""}`;
  const r = spawnSync(python, ["-c", script, dir], { env, encoding: "utf8" });
  if (r.status === 0) {
    peer = JSON.parse(readFileSync(join(dir, "peer.json"), "utf8"));
    log(`peer torch ${peer!.torch} (compressed-tensors ${(peer as unknown as { ct: string }).ct}) amin/amax + calculate_qparams + fake_quantize: ${peer!.seconds.toFixed(3)} s = ${(w.byteLength / peer!.seconds / 1e9).toFixed(2)} GB/s on ${peer!.threads} threads`);
  } else log(`peer failed (${python}): ${(r.stderr ?? "").split("\n").slice(-3).join(" ")}`);
  rmSync(dir, { recursive: true, force: true });
} else log(`no python at ${python} (set LLMQ_PYTHON): peer skipped`);

const line: Record<string, unknown> = {
  bench: "schemes",
  op: `rtn_int4_g${group}`,
  shape: [rows, cols],
  dtype: "f32",
  backend,
  threads,
  value: Number(gbs.toFixed(3)),
  unit: "GB/s",
};
if (peer !== null) {
  const pv = w.byteLength / peer.seconds / 1e9;
  line.peer = "torch";
  line.peer_value = Number(pv.toFixed(3));
  line.ratio = Number((gbs / pv).toFixed(3));
}
if (json) process.stdout.write(`${JSON.stringify(line)}\n`);
else log(JSON.stringify(line));
