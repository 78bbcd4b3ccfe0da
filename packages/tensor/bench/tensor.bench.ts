// `pnpm -s bench tensor [--json] [--quick] [--rounds=R]`: the hot kernels of @llmq/tensor against numpy/OpenBLAS measured in the
// same run. With --json, stdout carries one JSON object per line and nothing else (DESIGN.md §6).
//
// Peer: a child `python` (LLMQ_PYTHON, else /work/pyenv/bin/python, else python3 when it has numpy) run with
// OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed from its environment (so OpenBLAS picks its own kernel for this
// CPU; the kernel it ran is reported as peer_kernel, from threadpoolctl) and OPENBLAS_NUM_THREADS = our threads.
// - matmul: numpy `A @ B` (sgemm).  - xtx: numpy `X.T @ X` (numpy routes this to ssyrk).
// - cholesky+inverse: LAPACK ?potrf then ?potri through scipy.linalg.lapack when scipy is installed (the same
//   two routines our native backend implements); without scipy, numpy.linalg.cholesky then inv(L) and inv(L)ᵀ·inv(L)
//   (more flops, so a weaker peer; the JSON says which ran). Both sides are counted as n³ flops (potrf n³/3 + potri 2n³/3).
// - fwht and fake-quant have no numpy equivalent; they report GB/s of f32 data transformed (bytes of x / time).
// Timing: best of N wall-clock runs after a warm-up, on both sides; each case runs ours then the peer back to back,
// `--rounds=R` times (default 2), keeping the best of each, so both sides see the same machine load.
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { jsKernels } from "../src/backend-js.js";
import { nativeAddon, nativeError } from "../src/backend.js";

const json = process.argv.includes("--json");
const quick = process.argv.includes("--quick");
const addon = nativeAddon();
const threads = addon?.threads ?? 1;

interface Row {
  bench: "tensor";
  op: string;
  shape: number[];
  dtype: string;
  backend: "native" | "js";
  threads: number;
  value: number;
  unit: "GFLOP/s" | "GB/s";
  peer?: string;
  peer_value?: number;
  ratio?: number;
  peer_kernel?: string;
  isa?: string;
  target?: string;
}

const rows: Row[] = [];
const log = (msg: string): void => {
  if (!json) console.error(msg);
};

// ----- data -----

const fill = <A extends Float32Array | Float64Array>(a: A, seed: number): A => {
  let s = seed >>> 0 || 1;
  for (let i = 0; i < a.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    a[i] = (s >>> 0) / 4294967296 - 0.5;
  }
  return a;
};

const bestOf = (n: number, f: () => void, before?: () => void): number => {
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r <= n; r++) {
    before?.();
    const t = performance.now();
    f();
    const dt = (performance.now() - t) / 1000;
    if (r > 0 || n === 0) best = Math.min(best, dt); // the first run is a warm-up
  }
  return best;
};

/** An SPD matrix XᵀX/m + I of size n (well conditioned), built with the native syrk when available. */
const spd = <C extends typeof Float32Array | typeof Float64Array>(ctor: C, n: number): InstanceType<C> => {
  const m = n;
  const x = fill(new ctor(m * n), 7);
  const a = new ctor(n * n);
  const k = addon?.kernels ?? jsKernels;
  if (ctor === Float32Array) k.ssyrk!(m, n, x as Float32Array, a as Float32Array, 1 / m);
  else k.dsyrk!(m, n, x as Float64Array, a as Float64Array, 1 / m);
  for (let i = 0; i < n; i++) a[i * n + i]! += 1;
  return a as InstanceType<C>;
};

// ----- the numpy peer -----

const PEER_PY = `
import json, sys, time
import numpy as np
cases = json.loads(sys.argv[1])
try:
    import scipy.linalg.lapack as lapack
except Exception:
    lapack = None
try:
    import threadpoolctl
    info = threadpoolctl.threadpool_info()
except Exception:
    info = []
def kernel(lib):
    for e in info:
        if lib in e.get("filepath", ""):
            return "%s %s %s" % (e.get("internal_api"), e.get("version"), e.get("architecture"))
    return "unknown"
rng = np.random.default_rng(0)
def best(n, f):
    f()
    b = float("inf")
    for _ in range(n):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b
out = []
for c in cases:
    dt = np.float32 if c["dtype"] == "f32" else np.float64
    r = {"id": c["id"]}
    if c["op"] == "matmul":
        m, n, k = c["shape"]
        a = rng.standard_normal((m, k)).astype(dt); b = rng.standard_normal((k, n)).astype(dt)
        r["time"] = best(c["reps"], lambda: a @ b); r["peer"] = "numpy"; r["peer_kernel"] = kernel("numpy.libs")
    elif c["op"] == "xtx":
        m, n = c["shape"]
        x = rng.standard_normal((m, n)).astype(dt)
        r["time"] = best(c["reps"], lambda: x.T @ x); r["peer"] = "numpy X.T @ X"; r["peer_kernel"] = kernel("numpy.libs")
    elif c["op"] == "cholesky+inverse":
        n = c["shape"][0]
        x = rng.standard_normal((n, n)).astype(dt)
        a = (x.T @ x) / n + np.eye(n, dtype=dt)
        if lapack is not None:
            potrf, potri = lapack.get_lapack_funcs(("potrf", "potri"), (a,))
            def run():
                l, info1 = potrf(a, lower=1)
                inv, info2 = potri(l, lower=1)
                assert info1 == 0 and info2 == 0
            r["peer"] = "scipy.linalg.lapack %spotrf+%spotri" % ((("s",) * 2) if dt == np.float32 else (("d",) * 2))
            r["peer_kernel"] = kernel("scipy.libs")
        else:
            def run():
                l = np.linalg.cholesky(a); li = np.linalg.inv(l); li.T @ li
            r["peer"] = "numpy cholesky+inv(L)+inv(L).T@inv(L)"
            r["peer_kernel"] = kernel("numpy.libs")
        r["time"] = best(c["reps"], run)
    out.append(r)
print(json.dumps(out))
`;

const findPython = (): string | null => {
  const candidates = [process.env.LLMQ_PYTHON, "/work/pyenv/bin/python", "python3"].filter((p): p is string => !!p);
  for (const p of candidates) {
    if (p.includes("/") && !existsSync(p)) continue;
    const r = spawnSync(p, ["-c", "import numpy"], { encoding: "utf8" });
    if (r.status === 0) return p;
  }
  return null;
};

interface PeerCase {
  id: number;
  op: string;
  shape: number[];
  dtype: string;
  reps: number;
}
interface PeerResult {
  id: number;
  time: number;
  peer: string;
  peer_kernel: string;
}

const runPeer = (cases: PeerCase[]): Map<number, PeerResult> => {
  const py = findPython();
  const out = new Map<number, PeerResult>();
  if (!py) {
    log("numpy peer: no python with numpy (set LLMQ_PYTHON); peer fields omitted");
    return out;
  }
  const env: NodeJS.ProcessEnv = { ...process.env, OPENBLAS_NUM_THREADS: String(threads) };
  delete env.OPENBLAS_CORETYPE;
  delete env.OPENBLAS_L2_SIZE;
  const r = spawnSync(py, ["-c", PEER_PY, JSON.stringify(cases)], { env, encoding: "utf8", maxBuffer: 1 << 24 });
  if (r.status !== 0) {
    log(`numpy peer failed: ${r.stderr.trim().split("\n").at(-1)}`);
    return out;
  }
  for (const res of JSON.parse(r.stdout) as PeerResult[]) out.set(res.id, res);
  return out;
};

// ----- cases -----

interface Case {
  op: string;
  shape: number[];
  dtype: "f32" | "f64";
  backend: "native" | "js";
  unit: "GFLOP/s" | "GB/s";
  work: number; // flops or bytes
  reps: number;
  target?: string;
  run: () => { time: number };
}

const cases: Case[] = [];
const nat = addon?.kernels;

if (addon && nat) {
  for (const n of quick ? [1024] : [1024, 4096]) {
    cases.push({
      op: "matmul",
      shape: [n, n, n],
      dtype: "f32",
      backend: "native",
      unit: "GFLOP/s",
      work: 2 * n ** 3,
      reps: n <= 1024 ? 10 : 3,
      target: "ratio ≥ 0.9",
      run() {
        const a = fill(new Float32Array(n * n), 1);
        const b = fill(new Float32Array(n * n), 2);
        const c = new Float32Array(n * n);
        return { time: bestOf(this.reps, () => nat.sgemm!(n, n, n, a, false, b, false, c, 1, 0)) };
      },
    });
  }
  {
    const [m, n] = quick ? [2048, 1024] : [8192, 4096];
    cases.push({
      op: "xtx",
      shape: [m, n],
      dtype: "f32",
      backend: "native",
      unit: "GFLOP/s",
      work: m * n * n, // the symmetric product: n² m multiply-adds... counted once, like syrk
      reps: 3,
      target: "ratio ≥ 0.9",
      run() {
        const x = fill(new Float32Array(m * n), 3);
        const h = new Float32Array(n * n);
        return { time: bestOf(this.reps, () => nat.ssyrk!(m, n, x, h, 1), () => h.fill(0)) };
      },
    });
  }
  for (const dtype of ["f32", "f64"] as const) {
    const n = quick ? 1024 : 4096;
    cases.push({
      op: "cholesky+inverse",
      shape: [n, n],
      dtype,
      backend: "native",
      unit: "GFLOP/s",
      work: n ** 3,
      reps: 3,
      target: "ratio ≥ 0.7",
      run() {
        if (dtype === "f32") {
          const a = spd(Float32Array, n);
          const w = new Float32Array(n * n);
          return {
            time: bestOf(
              this.reps,
              () => {
                if (nat.spotrf!(w, n) !== -1) throw new Error("spotrf failed on an SPD matrix");
                nat.spotri!(w, n);
              },
              () => w.set(a),
            ),
          };
        }
        const a = spd(Float64Array, n);
        const w = new Float64Array(n * n);
        return {
          time: bestOf(
            this.reps,
            () => {
              if (nat.dpotrf!(w, n) !== -1) throw new Error("dpotrf failed on an SPD matrix");
              nat.dpotri!(w, n);
            },
            () => w.set(a),
          ),
        };
      },
    });
  }
  {
    const [r, n] = [quick ? 1024 : 8192, 4096];
    cases.push({
      op: "fwht",
      shape: [r, n],
      dtype: "f32",
      backend: "native",
      unit: "GB/s",
      work: r * n * 4,
      reps: 5,
      target: "≥ 5 GB/s",
      run() {
        const x0 = fill(new Float32Array(r * n), 4);
        const x = new Float32Array(r * n);
        return { time: bestOf(this.reps, () => nat.fwht!(x, r, n), () => x.set(x0)) };
      },
    });
  }
  {
    const [r, c, g] = [quick ? 1024 : 8192, 4096, 128];
    cases.push({
      op: "fake-quant int4 g128",
      shape: [r, c],
      dtype: "f32",
      backend: "native",
      unit: "GB/s",
      work: r * c * 4,
      reps: 5,
      target: "≥ 5 GB/s",
      run() {
        const x = fill(new Float32Array(r * c), 5);
        const groups = r * (c / g);
        const mn = new Float32Array(groups);
        const mx = new Float32Array(groups);
        nat.groupMinMax!(x, r, c, g, mn, mx);
        const scale = Float32Array.from(mn, (lo, i) => Math.max(Math.abs(lo), Math.abs(mx[i]!)) / 7.5 || 1);
        const out = new Float32Array(r * c);
        return { time: bestOf(this.reps, () => nat.quantizeGroups!(x, r, c, g, scale, null, -8, 7, true, out)) };
      },
    });
  }
} else {
  log(`native addon unavailable (${nativeError()}); only the js backend is measured`);
}

for (const n of [256]) {
  cases.push({
    op: "matmul",
    shape: [n, n, n],
    dtype: "f32",
    backend: "js",
    unit: "GFLOP/s",
    work: 2 * n ** 3,
    reps: 3,
    run() {
      const a = fill(new Float32Array(n * n), 1);
      const b = fill(new Float32Array(n * n), 2);
      const c = new Float32Array(n * n);
      return { time: bestOf(this.reps, () => jsKernels.sgemm(n, n, n, a, false, b, false, c, 1, 0)) };
    },
  });
}

// ----- run: for each case ours then the peer right after (same machine conditions), `rounds` times, best kept -----

const roundsArg = process.argv.find((a) => a.startsWith("--rounds="));
const rounds = roundsArg ? Math.max(1, Number(roundsArg.slice(9))) : 2;
const hasPeer = (c: Case) => c.op === "matmul" || c.op === "xtx" || c.op === "cholesky+inverse";
const times: number[] = cases.map(() => Number.POSITIVE_INFINITY);
const peer = new Map<number, PeerResult>();
for (let round = 0; round < rounds; round++) {
  cases.forEach((c, id) => {
    log(`round ${round + 1}/${rounds}: ${c.op} ${c.shape.join("×")} ${c.dtype} (${c.backend})…`);
    times[id] = Math.min(times[id]!, c.run().time);
    if (!hasPeer(c)) return;
    const p = runPeer([{ id, op: c.op, shape: c.shape, dtype: c.dtype, reps: c.reps }]).get(id);
    const prev = peer.get(id);
    if (p && (!prev || p.time < prev.time)) peer.set(id, p);
  });
}

cases.forEach((c, id) => {
  const value = c.work / times[id]! / 1e9;
  const row: Row = {
    bench: "tensor",
    op: c.op,
    shape: c.shape,
    dtype: c.dtype,
    backend: c.backend,
    threads: c.backend === "js" ? 1 : threads,
    value: Number(value.toFixed(2)),
    unit: c.unit,
  };
  const p = peer.get(id);
  if (p) {
    const pv = c.work / p.time / 1e9;
    row.peer = p.peer;
    row.peer_value = Number(pv.toFixed(2));
    row.ratio = Number((value / pv).toFixed(3));
    row.peer_kernel = p.peer_kernel;
  }
  if (c.backend === "native" && addon) row.isa = addon.isa;
  if (c.target) row.target = c.target;
  rows.push(row);
});

if (json) {
  for (const r of rows) console.log(JSON.stringify(r));
} else {
  const fmt = (v: unknown, w: number) => String(v ?? "").padEnd(w);
  console.log(
    [fmt("op", 22), fmt("shape", 16), fmt("dtype", 6), fmt("backend", 8), fmt("thr", 4), fmt("value", 18), fmt("peer", 36), fmt("peer value", 12), fmt("ratio", 7), "target"].join(" "),
  );
  for (const r of rows)
    console.log(
      [
        fmt(r.op, 22),
        fmt(r.shape.join("×"), 16),
        fmt(r.dtype, 6),
        fmt(r.backend, 8),
        fmt(r.threads, 4),
        fmt(`${r.value} ${r.unit}`, 18),
        fmt(r.peer ? `${r.peer} [${r.peer_kernel}]` : "-", 36),
        fmt(r.peer_value ?? "-", 12),
        fmt(r.ratio ?? "-", 7),
        r.target ?? "",
      ].join(" "),
    );
}
