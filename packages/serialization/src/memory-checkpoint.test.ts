import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { castFromNumbers } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { memoryCheckpoint, memoryShardedWriter } from "./memory-checkpoint.js";
import { openCheckpoint } from "./safetensors-reader.js";
import { createShardedWriter } from "./sharded-writer.js";
import { FIXTURES, readJson } from "./test-support/fixtures.js";

const right = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected Right, got ${JSON.stringify(r.left)}`);
  return r.right;
};
const tmp = mkdtempSync(join(tmpdir(), "llmq-memck-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("in-memory checkpoints", () => {
  const order = readJson<{ order: string[] }>("sharded/order.json").order;

  it("the memory writer's model.safetensors is byte-identical to the file writer's, and reads back tensor by tensor", async () => {
    const src = right(await openCheckpoint(join(FIXTURES, "sharded"))());
    const file = right(await createShardedWriter(join(tmp, "file"))());
    const mem = right(memoryShardedWriter("memory"));
    for (const name of order) {
      const t = right(await src.read(name)());
      right(await file.add(name, t)());
      right(await mem.add(name, t)());
    }
    right(await file.close()());
    expect(right(await mem.close()())).toEqual({ dir: "memory", files: ["model.safetensors"], totalSize: expect.any(Number), index: null });
    const bytes = mem.files().get("model.safetensors")!;
    expect(Buffer.from(bytes).equals(readFileSync(join(tmp, "file", "model.safetensors")))).toBe(true);
    const back = right(memoryCheckpoint("memory", bytes));
    expect([...back.names].sort()).toEqual([...order].sort());
    for (const name of order) expect(right(await back.read(name)()).bytes()).toEqual(right(await src.read(name)()).bytes());
    await src.close();
  });

  it("refuses a checkpoint larger than max_shard_size, a second add of a name, and adds after close", async () => {
    const t = castFromNumbers("f32", [1, 2, 3], [3]);
    const w = right(memoryShardedWriter("memory", { maxShardSize: 20 }));
    right(await w.add("a", t)());
    expect(await w.add("a", t)()).toMatchObject({ _tag: "Left", left: { detail: "the name was already added" } });
    expect(await w.add("b", t)()).toMatchObject({ _tag: "Left", left: { tensor: "b" } });
    right(await w.close()());
    expect(await w.add("c", t)()).toMatchObject({ _tag: "Left", left: { detail: "the writer is closed" } });
  });
});
