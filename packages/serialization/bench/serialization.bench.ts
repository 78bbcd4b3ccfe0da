// `pnpm -s bench serialization [--json] [--gb 1] [--sharded-gb 4]`
// - read: `--gb` GB of f32 tensors (64 tensors) from a page-cached safetensors file with openSafetensors/read, vs
//   Python `safetensors.numpy.load_file` on the same file in the same run (child process, LLMQ_PYTHON or
//   /work/pyenv/bin/python); best of 3 each.
// - write: writeSafetensors of the same tensors (temp sibling + fsync + rename), vs `safetensors.numpy.save_file`.
// - sharded write: peak RSS of a child process that streams `--sharded-gb` GB of bf16 tensors through
//   createShardedWriter (max_shard_size 1GB).
// - pack-quantized compress/decompress of one 4096×4096 int4 group-128 asymmetric layer (codes, bf16 scales, zero
//   points → weight_packed/zero points and back to the dequantized weight) vs compressed-tensors 0.20.0's
//   pack_to_int32 + PackedQuantizationCompressor.decompress on the same inputs (torch CPU, 2 threads).
// - GGUF dequantization GB/s of Q4_0 / Q4_K / Q6_K (`--gguf-mb`, default 64) vs the gguf Python package
//   (bench/gguf-dequant.ts); `--gguf-only 1` runs just that part.
// Everything lives in a temp dir that is deleted at the end.
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { Tensor, castFromNumbers } from "@llmq/tensor";
import { compressModule, decompressModule, openSafetensors, writeSafetensors } from "../src/index.js";
import { benchArgs } from "../../../tooling/bench-args.js";
import { ggufDequantBench } from "./gguf-dequant.js";

const { json, num: opt, log } = benchArgs();
const gb = opt("gb", 1);
const shardedGb = opt("sharded-gb", 4);
const emit = (o: Record<string, unknown>): void => {
  if (json) process.stdout.write(`${JSON.stringify({ bench: "serialization", ...o })}\n`);
  else log(JSON.stringify(o));
};
const fail = (what: string, e: unknown): never => {
  throw new Error(`${what}: ${JSON.stringify(e)}`);
};
const unwrap = <A>(what: string, r: E.Either<unknown, A>): A => (E.isLeft(r) ? fail(what, r.left) : r.right);
interface PackPeer {
  readonly compress: number;
  readonly decompress: number;
  readonly torch: string;
}
interface Peer {
  readonly read: number;
  readonly write: number;
  readonly version: string;
}

const dir = mkdtempSync(join(tmpdir(), "llmq-ser-bench-"));
try {
  ggufDequantBench(dir, opt("gguf-mb", 64), emit, log);
  if (opt("gguf-only", 0) !== 1) await ioBenches();
} finally {
  rmSync(dir, { recursive: true, force: true });
}

async function ioBenches(): Promise<void> {
  const count = 64;
  const perTensor = Math.floor((gb * 1e9) / count / 4 / 1024) * 1024; // f32 elements
  const entries: Array<[string, Tensor]> = [];
  for (let i = 0; i < count; i++) {
    const d = new Float32Array(perTensor);
    for (let j = 0; j < d.length; j += 1024) d[j] = i + j;
    entries.push([`model.layers.${i}.mlp.weight`, new Tensor("f32", [perTensor / 1024, 1024], d)]);
  }
  const bytes = count * perTensor * 4;
  const file = join(dir, "model.safetensors");

  // write (best of 3)
  let writeBest = Infinity;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    unwrap("write", await writeSafetensors(file, entries, { format: "pt" })());
    writeBest = Math.min(writeBest, (performance.now() - t0) / 1000);
  }
  entries.length = 0;

  // read (page cache warmed by the writes; best of 3)
  let readBest = Infinity;
  for (let k = 0; k < 3; k++) {
    const t0 = performance.now();
    const f1 = unwrap("open", await openSafetensors(file)());
    const held: Tensor[] = [];
    for (const n of f1.names) held.push(unwrap("read", await f1.read(n)()));
    await f1.close();
    readBest = Math.min(readBest, (performance.now() - t0) / 1000);
    held.length = 0;
  }

  // peer: Python safetensors (numpy) on the same file, same run
  const python = process.env.LLMQ_PYTHON ?? "/work/pyenv/bin/python";
  let peer = null as Peer | null;
  if (existsSync(python)) {
    const script = `
import json, sys, time, safetensors
from safetensors.numpy import load_file, save_file
p = sys.argv[1]
best_r = best_w = float("inf")
for _ in range(3):
    t = time.perf_counter(); d = load_file(p); best_r = min(best_r, time.perf_counter() - t)
for _ in range(3):
    t = time.perf_counter(); save_file(d, p + ".peer", metadata={"format": "pt"}); best_w = min(best_w, time.perf_counter() - t)
print(json.dumps({"read": best_r, "write": best_w, "version": safetensors.__version__}))
`;
    const env = { ...process.env };
    delete env.OPENBLAS_CORETYPE;
    delete env.OPENBLAS_L2_SIZE;
    const r = spawnSync(python, ["-c", script, file], { env, encoding: "utf8", maxBuffer: 1 << 20 });
    if (r.status === 0) peer = JSON.parse(r.stdout.trim().split("\n").pop()!) as Peer;
    else log(`peer failed: ${r.stderr}`);
    rmSync(`${file}.peer`, { force: true });
  } else log(`no python at ${python} (set LLMQ_PYTHON): no peer`);

  const gbps = (s: number): number => Number((bytes / 1e9 / s).toFixed(3));
  const shape = [count, perTensor / 1024, 1024];
  const peerName = peer === null ? "" : `safetensors ${peer.version} (numpy)`;
  emit({
    op: "read",
    shape,
    dtype: "f32",
    bytes,
    value: gbps(readBest),
    unit: "GB/s",
    ...(peer === null ? {} : { peer: `${peerName} load_file`, peer_value: gbps(peer.read), ratio: Number((peer.read / readBest).toFixed(3)) }),
  });
  emit({
    op: "write",
    shape,
    dtype: "f32",
    bytes,
    fsync: true,
    value: gbps(writeBest),
    unit: "GB/s",
    ...(peer === null ? {} : { peer: `${peerName} save_file`, peer_value: gbps(peer.write), ratio: Number((peer.write / writeBest).toFixed(3)) }),
  });
  rmSync(file, { force: true });

  // pack-quantized compress / decompress
  {
    const rows = opt("pack-rows", 4096);
    const cols = opt("pack-cols", 4096);
    const gsz = 128;
    const codes = new Tensor("i8", [rows, cols], Int8Array.from({ length: rows * cols }, (_, i) => ((i * 7919) % 16) - 8));
    const g = cols / gsz;
    const scale = castFromNumbers("bf16", Array.from({ length: rows * g }, (_, i) => 0.001 + (i % 97) * 1e-4), [rows, g]);
    const zp = new Tensor("i8", [rows, g], Int8Array.from({ length: rows * g }, (_, i) => (i % 16) - 8));
    const scheme = { weights: { num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: gsz } };
    const state = new Map<string, Tensor>([
      ["weight", codes],
      ["weight_scale", scale],
      ["weight_zero_point", zp],
    ]);
    const inputs = join(dir, "pack-inputs.safetensors");
    unwrap("write", await writeSafetensors(inputs, state)());
    let cBest = Infinity;
    let dBest = Infinity;
    for (let k = 0; k < 3; k++) {
      let t0 = performance.now();
      const c = unwrap("compress", compressModule("pack-quantized", scheme, state));
      cBest = Math.min(cBest, (performance.now() - t0) / 1000);
      t0 = performance.now();
      unwrap("decompress", decompressModule("pack-quantized", scheme, c));
      dBest = Math.min(dBest, (performance.now() - t0) / 1000);
    }
    let pc = null as PackPeer | null;
    if (existsSync(python)) {
      const script = `
import json, sys, time, torch
torch.set_num_threads(2)
from safetensors.torch import load_file
from compressed_tensors.compressors import BaseCompressor
from compressed_tensors.compressors.pack_quantized.helpers import pack_to_int32
from compressed_tensors.quantization import QuantizationArgs, QuantizationScheme
sd = load_file(sys.argv[1])
args = QuantizationArgs(num_bits=4, type="int", symmetric=False, strategy="group", group_size=${gsz})
scheme = QuantizationScheme(targets=["Linear"], weights=args)
comp = BaseCompressor.get_value_from_registry("pack-quantized")
bc = bd = float("inf")
for _ in range(3):
    t = time.perf_counter()
    packed = pack_to_int32(sd["weight"], 4)
    pzp = pack_to_int32(sd["weight_zero_point"], 4, packed_dim=0)
    bc = min(bc, time.perf_counter() - t)
    c = {"weight_packed": packed, "weight_scale": sd["weight_scale"], "weight_zero_point": pzp, "weight_shape": torch.tensor(sd["weight"].shape)}
    t = time.perf_counter()
    comp.decompress(c, scheme)
    bd = min(bd, time.perf_counter() - t)
print(json.dumps({"compress": bc, "decompress": bd, "torch": torch.__version__}))
`;
      const env = { ...process.env };
      delete env.OPENBLAS_CORETYPE;
      delete env.OPENBLAS_L2_SIZE;
      const r = spawnSync(python, ["-c", script, inputs], { env, encoding: "utf8", maxBuffer: 1 << 20 });
      if (r.status === 0) pc = JSON.parse(r.stdout.trim().split("\n").pop()!) as PackPeer;
      else log(`pack peer failed: ${r.stderr}`);
    }
    for (const [op, v, pv] of [
      ["pack_compress", cBest, pc?.compress],
      ["pack_decompress", dBest, pc?.decompress],
    ] as const) {
      emit({
        op,
        shape: [rows, cols],
        dtype: "int4",
        group_size: gsz,
        value: Number(v.toFixed(4)),
        unit: "s",
        ...(pv === undefined ? {} : { peer: `compressed-tensors 0.20.0 (torch ${pc!.torch}, 2 threads)`, peer_value: Number(pv.toFixed(4)), ratio: Number((pv / v).toFixed(3)) }),
      });
    }
    rmSync(inputs, { force: true });
  }

  // peak RSS of a streaming sharded save, in a fresh process
  const tsx = join(new URL("../../..", import.meta.url).pathname, "node_modules", ".bin", "tsx");
  const child = join(new URL(".", import.meta.url).pathname, "sharded-rss-child.ts");
  const out = join(dir, "sharded");
  const c = spawnSync(tsx, ["--conditions=@llmq/source", child, out, String(shardedGb * 1e9), String(64 << 20), "1GB"], {
    encoding: "utf8",
    maxBuffer: 1 << 20,
  });
  if (c.status !== 0) fail("sharded child", c.stderr);
  const res = JSON.parse(c.stdout.trim().split("\n").pop()!) as { peak_rss_mb: number; seconds: number; files: number; bytes: number };
  const first = res.files > 1 ? `model-00001-of-${String(res.files).padStart(5, "0")}.safetensors` : "model.safetensors";
  const onDisk = statSync(join(out, first)).size;
  log(`sharded save: ${res.files} files, ${res.bytes} tensor bytes, first shard ${onDisk} bytes, ${res.seconds.toFixed(1)} s`);
  emit({
    op: "sharded_write_peak_rss",
    shape: [res.bytes],
    dtype: "bf16",
    tensor_bytes: 64 << 20,
    max_shard_size: "1GB",
    files: res.files,
    seconds: Number(res.seconds.toFixed(2)),
    value: Number(res.peak_rss_mb.toFixed(1)),
    unit: "MB",
  });
}
