import { cpSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Tensor, castFromNumbers } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { afterAll, describe, expect, it } from "vitest";
import { writeRejected } from "./errors.js";
import { openCheckpoint } from "./safetensors-reader.js";
import { createShardedWriter, parseShardSize, withShardedWriter } from "./sharded-writer.js";
import { FIXTURES, hex, readJson } from "./test-support/fixtures.js";

const right = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected Right, got ${JSON.stringify(r.left)}`);
  return r.right;
};
const tmp = mkdtempSync(join(tmpdir(), "llmq-shard-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const snapshot = (dir: string): Record<string, string> =>
  Object.fromEntries(readdirSync(dir).sort().map((f) => [f, hex(new Uint8Array(readFileSync(join(dir, f))))]));

const t = (n: number, v = 1): Tensor => castFromNumbers("f32", new Array(n).fill(v), [n]);

describe("sharded checkpoints", () => {
  const order = readJson<{ max_shard_size: string; order: string[]; total_parameters: number }>("sharded/order.json");

  it("reads transformers' sharded save through the index", async () => {
    const ck = right(await openCheckpoint(join(FIXTURES, "sharded"))());
    expect([...ck.names].sort()).toEqual([...order.order].sort());
    expect(ck.files.length).toBe(4);
    expect(ck.indexMetadata).toEqual({ total_parameters: order.total_parameters, total_size: expect.any(Number) });
    const w = right(await ck.read("model.layers.1.mlp.down_proj.weight")());
    expect(w.dtype).toBe("bf16");
    expect(w.shape).toEqual([32, 48]);
    await ck.close();
  });

  it("writes the same shard files and index as transformers' save_pretrained (streaming, in state-dict order)", async () => {
    const src = right(await openCheckpoint(join(FIXTURES, "sharded"))());
    const out = join(tmp, "resave");
    const w = right(await createShardedWriter(out, { maxShardSize: order.max_shard_size })());
    for (const name of order.order) right(await w.add(name, right(await src.read(name)()))());
    const res = right(await w.close()());
    await src.close();
    expect(res.files).toEqual([1, 2, 3, 4].map((i) => `model-0000${i}-of-00004.safetensors`));
    const expected = snapshot(join(FIXTURES, "sharded"));
    delete expected["order.json"];
    expect(snapshot(out)).toEqual(expected);
  });

  it("puts a tensor larger than max_shard_size in its own shard before the open one (huggingface_hub's order)", async () => {
    const out = join(tmp, "oversize");
    right(
      await withShardedWriter(out, { maxShardSize: 100 }, (w) =>
        TE.sequenceSeqArray([w.add("a", t(5)), w.add("big", t(40)), w.add("c", t(5)), w.add("d", t(20)), w.add("e", t(1))]),
      )(),
    );
    const index = JSON.parse(readFileSync(join(out, "model.safetensors.index.json"), "utf8"));
    expect(index.weight_map).toEqual({
      big: "model-00001-of-00003.safetensors",
      a: "model-00002-of-00003.safetensors",
      c: "model-00002-of-00003.safetensors",
      d: "model-00003-of-00003.safetensors",
      e: "model-00003-of-00003.safetensors",
    });
    expect(index.metadata).toEqual({ total_parameters: 71, total_size: 284 });
  });

  it("writes one model.safetensors when everything fits, and removes a stale index and stale shards", async () => {
    const out = join(tmp, "single");
    right(await withShardedWriter(out, { maxShardSize: 100 }, (w) => TE.sequenceSeqArray([w.add("a", t(5)), w.add("b", t(40)), w.add("c", t(5))]))());
    expect(readdirSync(out).sort()).toEqual(["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors", "model.safetensors.index.json"]);
    right(await withShardedWriter(out, { maxShardSize: "1KB" }, (w) => w.add("x", t(3)))());
    expect(readdirSync(out).sort()).toEqual(["model.safetensors"]);
    const ck = right(await openCheckpoint(out)());
    expect(ck.names).toEqual(["x"]);
    await ck.close();
  });

  it("an aborted or failed save leaves the previous directory untouched and no temporary files", async () => {
    const out = join(tmp, "atomic");
    cpSync(join(FIXTURES, "sharded"), out, { recursive: true });
    writeFileSync(join(out, "config.json"), "{}");
    const before = snapshot(out);

    const w = right(await createShardedWriter(out, { maxShardSize: 64 })());
    for (let i = 0; i < 6; i++) right(await w.add(`t${i}`, t(10, i))());
    await w.abort();
    expect(snapshot(out)).toEqual(before);
    expect(E.isLeft(await w.add("late", t(1))())).toBe(true);

    const failed = await withShardedWriter(out, { maxShardSize: 64 }, (w2) =>
      TE.sequenceSeqArray([w2.add("a", t(10)), w2.add("b", t(10)), w2.add("c", t(10)), TE.left(writeRejected(out, "c", "producer failed"))]),
    )();
    expect(E.isLeft(failed) && failed.left._tag).toBe("WriteRejected");
    expect(snapshot(out)).toEqual(before);

    await expect(
      withShardedWriter(out, { maxShardSize: 64 }, (w3) => async () => {
        await w3.add("a", t(10))();
        await w3.add("b", t(10))();
        throw new Error("producer crashed");
      })(),
    ).rejects.toThrow("producer crashed");
    expect(snapshot(out)).toEqual(before);
  });

  it("prefers model.safetensors over an index when both exist, as transformers does", async () => {
    const out = join(tmp, "both");
    cpSync(join(FIXTURES, "sharded"), out, { recursive: true });
    right(await withShardedWriter(join(tmp, "both-single"), {}, (w) => w.add("only", t(2)))());
    cpSync(join(tmp, "both-single", "model.safetensors"), join(out, "model.safetensors"));
    const ck = right(await openCheckpoint(out)());
    expect(ck.names).toEqual(["only"]);
    await ck.close();
  });

  it("removes temporaries left by a killed save (dead pid) but not those of a live process", async () => {
    const out = join(tmp, "stale");
    right(await withShardedWriter(out, {}, (w) => w.add("a", t(1)))());
    const dead = `.model.safetensors-spool.llmq-tmp-999999999-0123456789ab`;
    const live = `.model.safetensors-spool.llmq-tmp-${process.ppid}-0123456789ab`;
    writeFileSync(join(out, dead), "x");
    writeFileSync(join(out, live), "x");
    right(await withShardedWriter(out, {}, (w) => w.add("a", t(2)))());
    expect(readdirSync(out).sort()).toEqual([live, "model.safetensors"].sort());
  });

  it("rejects duplicate names and unsupported dtypes, naming the tensor", async () => {
    const w = right(await createShardedWriter(join(tmp, "rej"), {})());
    right(await w.add("a", t(1))());
    const dup = await w.add("a", t(1))();
    expect(E.isLeft(dup) && dup.left.tensor).toBe("a");
    const i4 = await w.add("q", castFromNumbers("i4", [1, 2], [2]))();
    expect(E.isLeft(i4) && i4.left._tag === "UnsupportedDType" && i4.left.tensor).toBe("q");
    await w.abort();
  });

  it("parses max_shard_size like huggingface_hub (decimal units, int truncation)", () => {
    expect(parseShardSize("5GB")).toEqual(E.right(5_000_000_000));
    expect(parseShardSize(" 1.5mb ")).toEqual(E.right(1_500_000));
    expect(parseShardSize("12KB")).toEqual(E.right(12_000));
    expect(parseShardSize(1234)).toEqual(E.right(1234));
    expect(E.isLeft(parseShardSize("5GiB"))).toBe(true);
    expect(E.isLeft(parseShardSize("GB"))).toBe(true);
  });
});
