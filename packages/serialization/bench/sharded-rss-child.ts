// Child process of serialization.bench.ts: streams `total` bytes of bf16 tensors (produced one at a time, dropped
// after add) through createShardedWriter and prints its peak RSS (MB) and wall time as JSON on stdout.
import { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { createShardedWriter } from "../src/index.js";

const [dir, totalStr, tensorStr, shardSize] = process.argv.slice(2) as [string, string, string, string];
const total = Number(totalStr);
const tensorBytes = Number(tensorStr);
const n = Math.ceil(total / tensorBytes);
const t0 = performance.now();
const w = await createShardedWriter(dir, { maxShardSize: shardSize })();
if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
for (let i = 0; i < n; i++) {
  const data = new Uint16Array(tensorBytes / 2);
  data.fill(0x3f80 + (i % 64));
  const r = await w.right.add(`model.layers.${i}.weight`, new Tensor("bf16", [tensorBytes / 2 / 1024, 1024], data))();
  if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
}
const c = await w.right.close()();
if (E.isLeft(c)) throw new Error(JSON.stringify(c.left));
process.stdout.write(
  `${JSON.stringify({ peak_rss_mb: process.resourceUsage().maxRSS / 1024, seconds: (performance.now() - t0) / 1000, files: c.right.files.length, bytes: c.right.totalSize })}\n`,
);
