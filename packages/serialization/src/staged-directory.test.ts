import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { formatSerializationError, ioError } from "./errors.js";
import { lockPathOf } from "./output-lock.js";
import { abandonStagedDirectoriesSync, stageDirectory } from "./staged-directory.js";

const must = <A>(e: E.Either<unknown, A>): A => {
  if (E.isLeft(e)) throw new Error(JSON.stringify(e.left));
  return e.right;
};

/** The pid of a process that has exited (the kernel does not reuse it this fast). */
const deadPid = (): number => {
  const r = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  return Number(r.stdout);
};

describe("stageDirectory", () => {
  const root = mkdtempSync(join(tmpdir(), "llmq-stage-"));

  it("refuses a non-empty target unless overwrite, and commit replaces it whole", async () => {
    const out = join(root, "out");
    mkdirSync(out);
    writeFileSync(join(out, "old.txt"), "old");
    expect(await stageDirectory(out)()).toEqual(E.left({ _tag: "OutputExists", file: out, tensor: null }));
    const s = must(await stageDirectory(out, { overwrite: true })());
    writeFileSync(join(s.staging, "new.txt"), "new");
    expect(readFileSync(join(out, "old.txt"), "utf8")).toBe("old"); // untouched until commit
    expect(E.isRight(await s.commit()())).toBe(true);
    expect(readdirSync(out)).toEqual(["new.txt"]);
    expect(readdirSync(root)).toEqual(["out"]); // no staging, old directory or lock left
  });

  it("discard leaves nothing behind and no target", async () => {
    const out = join(root, "never");
    const s = must(await stageDirectory(out)());
    writeFileSync(join(s.staging, "x"), "x");
    await s.discard();
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((f) => f.includes("never"))).toEqual([]);
  });

  it("refuses an output that equals, contains or lies inside a protected path, links resolved", async () => {
    const model = join(root, "model");
    mkdirSync(model);
    writeFileSync(join(model, "config.json"), "{}");
    symlinkSync(model, join(root, "model-link"));
    const cases: Array<[string, string]> = [
      [model, "equals"],
      [root, "contains"],
      [join(model, "sub", "out"), "inside"],
      [join(root, "model-link"), "equals"],
      [join(root, "model-link", "q"), "inside"],
      [join(root, "model", "..", "model"), "equals"],
    ];
    for (const [target, relation] of cases) {
      const r = await stageDirectory(target, { overwrite: true, protect: [model] })();
      expect(r, target).toEqual(E.left(expect.objectContaining({ _tag: "OutputOverlaps", other: model, relation })));
    }
    expect(readdirSync(model)).toEqual(["config.json"]);
    expect(readdirSync(root).filter((f) => f.startsWith("."))).toEqual([]); // no lock taken for a refused output
  });

  it("a second stage of the same target fails while the first holds the lock, and succeeds after", async () => {
    const out = join(root, "locked");
    const first = must(await stageDirectory(out)());
    const second = await stageDirectory(out)();
    expect(second).toEqual(E.left(expect.objectContaining({ _tag: "OutputLocked", pid: process.pid })));
    writeFileSync(join(first.staging, "done"), "done");
    expect(E.isRight(await first.commit()())).toBe(true);
    expect(existsSync(lockPathOf(out))).toBe(false);
    expect(await stageDirectory(out)()).toEqual(E.left(expect.objectContaining({ _tag: "OutputExists" })));
  });

  it("takes over the lock of a dead process and removes its staging", async () => {
    const out = join(root, "stale");
    const pid = deadPid();
    writeFileSync(lockPathOf(out), `${pid}\n`);
    const leftover = join(root, `.stale.staging.llmq-tmp-${pid}-0123456789ab`);
    mkdirSync(leftover);
    writeFileSync(join(leftover, "model.safetensors"), "partial");
    const s = must(await stageDirectory(out)());
    expect(existsSync(leftover)).toBe(false);
    expect(readFileSync(lockPathOf(out), "utf8").trim().split(" ")[0]).toBe(String(process.pid));
    await s.discard();
    expect(readdirSync(root).filter((f) => f.includes("stale"))).toEqual([]);
  });

  it.skipIf(!existsSync("/proc/self/stat"))("a live pid that started at another time than the lock says is a reused pid: the lock is stale", async () => {
    const child = spawn("sleep", ["30"]);
    try {
      const pid = child.pid!;
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const started = stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19];
      const out = join(root, "reused");
      writeFileSync(lockPathOf(out), `${pid} ${started}\n`);
      expect(await stageDirectory(out)()).toEqual(E.left(expect.objectContaining({ _tag: "OutputLocked", pid })));
      writeFileSync(lockPathOf(out), `${pid} 1\n`);
      const s = must(await stageDirectory(out)());
      await s.discard();
      expect(existsSync(lockPathOf(out))).toBe(false);
    } finally {
      child.kill("SIGKILL");
    }
  });

  it("puts back a previous output that a killed commit had moved aside", async () => {
    const out = join(root, "restored");
    const aside = join(root, `.restored.old.llmq-tmp-${deadPid()}-0123456789ab`);
    mkdirSync(aside);
    writeFileSync(join(aside, "config.json"), "previous");
    expect(await stageDirectory(out)()).toEqual(E.left(expect.objectContaining({ _tag: "OutputExists" })));
    expect(readFileSync(join(out, "config.json"), "utf8")).toBe("previous");
    expect(existsSync(aside)).toBe(false);
  });

  it("commit without overwrite refuses a target that another writer filled meanwhile, and keeps it", async () => {
    const out = join(root, "raced");
    const s = must(await stageDirectory(out)());
    writeFileSync(join(s.staging, "mine"), "mine");
    mkdirSync(out);
    writeFileSync(join(out, "theirs"), "theirs");
    expect(await s.commit()()).toEqual(E.left(expect.objectContaining({ _tag: "OutputExists" })));
    expect(readdirSync(out)).toEqual(["theirs"]);
    await s.discard();
    expect(readdirSync(root).filter((f) => f.includes("raced"))).toEqual(["raced"]);
  });

  it("a file, a link or a pipe at the target is never replaced, even with overwrite", async () => {
    const file = join(root, "a-file");
    writeFileSync(file, "keep");
    const link = join(root, "a-link");
    symlinkSync(root, link);
    const fifo = join(root, "a-fifo");
    spawnSync("mkfifo", [fifo]);
    for (const [p, kind] of [
      [file, "file"],
      [link, "symbolic link"],
      [fifo, "pipe"],
    ] as const) {
      if (!existsSync(p) && kind === "pipe") continue; // no mkfifo on this system
      expect(await stageDirectory(p, { overwrite: true })(), p).toEqual(E.left(expect.objectContaining({ _tag: "OutputNotDirectory", kind })));
    }
    expect(readFileSync(file, "utf8")).toBe("keep");
    expect(readdirSync(root).filter((f) => f.includes("llmq"))).toEqual([]);
  });

  it("an empty existing directory is not in the way", async () => {
    const out = join(root, "empty");
    mkdirSync(out);
    const s = must(await stageDirectory(out)());
    writeFileSync(join(s.staging, "a"), "a");
    expect(E.isRight(await s.commit()())).toBe(true);
    expect(readdirSync(out)).toEqual(["a"]);
  });

  it("abandonStagedDirectoriesSync removes staging and lock at once", async () => {
    const out = join(root, "abandoned");
    const s = must(await stageDirectory(out)());
    writeFileSync(join(s.staging, "x"), "x");
    abandonStagedDirectoriesSync();
    expect(readdirSync(root).filter((f) => f.includes("abandoned"))).toEqual([]);
    await s.discard(); // still safe afterwards
  });

  it("I/O errors carry the errno code and say it in words", () => {
    const e = ioError("/x/model.safetensors", "write", Object.assign(new Error("ENOSPC: no space left on device, write"), { code: "ENOSPC" }));
    expect(e).toMatchObject({ _tag: "IoError", code: "ENOSPC" });
    expect(formatSerializationError(e)).toBe("/x/model.safetensors: write failed: no space left on the device (ENOSPC)");
    expect(formatSerializationError(ioError("/r", "open", Object.assign(new Error("x"), { code: "EROFS" })))).toMatch(/read-only \(EROFS\)/);
    expect(formatSerializationError(ioError("/r", "open", new Error("odd failure")))).toMatch(/odd failure/);
  });
});
