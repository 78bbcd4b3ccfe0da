// GGUF dequantization throughput for `pnpm -s bench serialization`: `mb` MB of random Q4_0 / Q4_K / Q6_K blocks (fp16
// scales made finite) dequantized to f32 by dequantizeGguf, vs the `gguf` Python package's gguf.quants.dequantize
// (numpy) on the same bytes in the same run; best of 3 each. GB/s counts the quantized input bytes.
import { spawnSync } from "node:child_process";
import { existsSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { dequantizeGguf, ggmlTypeById } from "../src/index.js";

/** Byte offsets of the fp16 scales in each block, set to 0x1c00 (2^-8) so every value is finite. */
const HALVES: Readonly<Record<string, ReadonlyArray<number>>> = { Q4_0: [0], Q4_K: [0, 2], Q6_K: [208] };
const TYPES = [
  ["Q4_0", 2],
  ["Q4_K", 12],
  ["Q6_K", 14],
] as const;

const PEER = `
import json, sys, time, numpy as np, gguf
from importlib.metadata import version
from gguf.quants import dequantize
out = {}
for name, path in json.loads(sys.argv[1]).items():
    q = getattr(gguf.GGMLQuantizationType, name)
    raw = np.fromfile(path, dtype=np.uint8)
    block, size = gguf.GGML_QUANT_SIZES[q]
    raw = raw.reshape(-1, size)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter(); dequantize(raw, q); best = min(best, time.perf_counter() - t0)
    out[name] = best
print(json.dumps({"seconds": out, "gguf": version("gguf"), "numpy": np.__version__}))
`;

export const ggufDequantBench = (dir: string, mb: number, emit: (o: Record<string, unknown>) => void, log: (s: string) => void): void => {
  const files: Record<string, string> = {};
  const ours: Record<string, number> = {};
  const sizes: Record<string, number> = {};
  for (const [name, id] of TYPES) {
    const type = ggmlTypeById(id)!;
    const blocks = Math.floor((mb * 1e6) / type.typeSize);
    const bytes = new Uint8Array(blocks * type.typeSize);
    let x = 0x9e3779b9;
    for (let i = 0; i < bytes.length; i++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      bytes[i] = x & 0xff;
    }
    for (let b = 0; b < blocks; b++) for (const h of HALVES[name]!) bytes.set([0x00, 0x1c], b * type.typeSize + h);
    const out = new Float32Array(blocks * type.blockSize);
    let best = Infinity;
    for (let k = 0; k < 3; k++) {
      const t0 = performance.now();
      dequantizeGguf(type, bytes, out);
      best = Math.min(best, (performance.now() - t0) / 1000);
    }
    files[name] = join(dir, `${name}.bin`);
    writeFileSync(files[name]!, bytes);
    ours[name] = best;
    sizes[name] = bytes.length;
  }
  const python = process.env.LLMQ_PYTHON ?? "/work/pyenv/bin/python";
  let peer: { seconds: Record<string, number>; gguf: string; numpy: string } | null = null;
  if (existsSync(python)) {
    const r = spawnSync(python, ["-c", PEER, JSON.stringify(files)], { encoding: "utf8", maxBuffer: 1 << 20 });
    if (r.status === 0) peer = JSON.parse(r.stdout.trim().split("\n").pop()!);
    else log(`gguf peer failed (pip install gguf==0.19.0): ${r.stderr.split("\n").slice(-2).join(" ")}`);
  } else log(`no python at ${python} (set LLMQ_PYTHON): no gguf peer`);
  for (const [name] of TYPES) {
    const gbps = (s: number): number => Number((sizes[name]! / 1e9 / s).toFixed(3));
    const p = peer?.seconds[name];
    emit({
      op: "gguf_dequantize",
      dtype: name,
      bytes: sizes[name],
      value: gbps(ours[name]!),
      unit: "GB/s",
      ...(p === undefined ? {} : { peer: `gguf ${peer!.gguf} (numpy ${peer!.numpy})`, peer_value: gbps(p), ratio: Number((p / ours[name]!).toFixed(3)) }),
    });
  }
};
