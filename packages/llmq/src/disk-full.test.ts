import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { expectFailure, isCompleteCheckpoint, leftovers, llmq, llmqLines } from "./test-support/hostile.js";
import { ROOT, convertStories } from "./test-support/stories260k.js";

// A full disk and a read-only one, for real: a small tmpfs (root can mount one; elsewhere the suite is skipped with a
// message). The free space is stepped through the size of a save so that ENOSPC strikes at every write of it — the
// safetensors spool, its rename, config.json, recipe.yaml, the copied tokenizer files — and every time the run must
// exit 1 with one line naming the file and the reason, leave nothing partial, and leave an existing output unchanged.

const tmp = mkdtempSync(join(tmpdir(), "llmq-diskfull-"));
const disk = join(tmp, "disk");
const rodisk = join(tmp, "rodisk");
const fp = join(tmp, "fp");
const W4 = join(ROOT, "fixtures/recipes/stories260k-w4a16-g32.yaml");

const mount = (dir: string, opts: string): boolean => {
  mkdirSync(dir, { recursive: true });
  return spawnSync("mount", ["-t", "tmpfs", "-o", opts, "tmpfs", dir], { stdio: "ignore" }).status === 0;
};
const canMount = process.platform === "linux" && process.getuid?.() === 0 && mount(disk, "size=2m");
if (!canMount) console.warn("disk-full suite skipped: mounting a tmpfs needs root on Linux");

/** Fills the tmpfs so that about `free` bytes stay available. */
const leaveFree = (free: number): void => {
  rmSync(join(disk, "filler"), { force: true });
  const s = statfsSync(disk);
  writeFileSync(join(disk, "filler"), Buffer.alloc(Math.max(0, s.bavail * s.bsize - free)));
};

const snapshot = (dir: string): string =>
  readdirSync(dir)
    .sort()
    .map((f) => `${f}:${readFileSync(join(dir, f)).toString("base64").slice(0, 64)}:${readFileSync(join(dir, f)).length}`)
    .join("|");

describe.skipIf(!canMount)("full and read-only disks (tmpfs)", () => {
  beforeAll(async () => {
    await convertStories(fp);
  }, 60_000);
  afterAll(() => {
    spawnSync("umount", [disk]);
    spawnSync("umount", [rodisk]);
  });

  // The checkpoint is ~330 kB (a 283 kB safetensors spooled then copied into place, tokenizer 20 kB, small JSON files), a
  // save needs ~650 kB at its peak; 32 kB steps up to 800 kB cross each write.
  const levels = Array.from({ length: 26 }, (_, k) => k * 32 * 1024);
  const outcomes: Record<number, number | null> = {};

  it.each(levels)("with %i bytes free: exit 1 and nothing partial, or a complete checkpoint", (free) => {
    rmSync(join(disk, "out"), { recursive: true, force: true });
    leaveFree(free);
    const r = llmq(["quantize", "--model", fp, "--output", join(disk, "out"), "--recipe", W4, "-q"], tmp);
    outcomes[free] = r.code;
    if (r.code === 0) expect(isCompleteCheckpoint(join(disk, "out"))).toBe(true);
    else {
      expectFailure(r, 1, /no space left on the device \(ENOSPC\) \(free some space or choose an output on another disk\)/);
      expect(existsSync(join(disk, "out"))).toBe(false);
    }
    expect(leftovers(disk)).toEqual([]);
  });

  it("the levels cross the save: the smallest fail with ENOSPC, the largest succeed", () => {
    console.log(`disk-full outcomes by free bytes: ${JSON.stringify(outcomes)}`);
    expect(outcomes[0]).toBe(1);
    expect(outcomes[levels[levels.length - 1]!]).toBe(0);
  });

  it.each(levels.slice(0, 20))("--overwrite with %i bytes free leaves the existing output unchanged when it fails", (free) => {
    const out = join(disk, "kept");
    rmSync(join(disk, "filler"), { force: true });
    if (!existsSync(out)) expect(llmq(["quantize", "--model", fp, "--output", out, "--recipe", W4, "-q"], tmp).code).toBe(0);
    const before = snapshot(out);
    leaveFree(free);
    const r = llmq(["quantize", "--model", fp, "--output", out, "--recipe", W4, "-q", "--overwrite"], tmp);
    if (r.code !== 0) {
      expectFailure(r, 1, /ENOSPC/);
      expect(snapshot(out)).toBe(before);
    }
    expect(isCompleteCheckpoint(out)).toBe(true);
    expect(leftovers(disk)).toEqual([]);
  });

  // Out of inodes, each file a save creates fails in turn (lock, staging directory, weights, config.json, recipe.yaml,
  // each tokenizer file): the writes are crossed one by one, not just the large one.
  const inodeLevels = Array.from({ length: 11 }, (_, k) => k + 2);
  const failedAt = new Set<string>();
  it.each(inodeLevels)("with %i inodes: exit 1 naming the file and ENOSPC, nothing partial; or a complete checkpoint", (n) => {
    const dir = join(tmp, `inodes-${n}`);
    expect(mount(dir, `size=4m,nr_inodes=${n}`)).toBe(true);
    try {
      const r = llmq(["quantize", "--model", fp, "--output", join(dir, "out"), "--recipe", W4, "-q"], tmp);
      if (r.code === 0) expect(isCompleteCheckpoint(join(dir, "out"))).toBe(true);
      else {
        expectFailure(r, 1, /no space left on the device \(ENOSPC\)/);
        const [where, why] = llmqLines(r.stderr)[0]!.slice("llmq: ".length).split(" — ");
        failedAt.add(`${where!.replace(dir, "")}: ${why!.split(":")[0]}`);
        expect(existsSync(join(dir, "out"))).toBe(false);
        expect(readdirSync(dir)).toEqual([]);
      }
    } finally {
      spawnSync("umount", [dir]);
    }
  });

  it("the inode levels fail at many different writes", () => {
    console.log(`inode failures at: ${[...failedAt].join(" | ")}`);
    expect(failedAt.size).toBeGreaterThanOrEqual(6);
  });

  it.each([3, 4, 5, 6, 7])("convert with %i inodes: exit 1 naming the file and ENOSPC, nothing partial", (n) => {
    const dir = join(tmp, `convert-inodes-${n}`);
    expect(mount(dir, `size=4m,nr_inodes=${n}`)).toBe(true);
    try {
      const bin = join(ROOT, "fixtures/stories260K");
      const r = llmq(["convert", "--from", "llama2c", join(bin, "stories260K.bin"), "--tokenizer", join(bin, "tok512.bin"), "--output", join(dir, "out")], tmp);
      expectFailure(r, 1, /out\/[a-z_.]+\.(json|safetensors) — .*no space left on the device \(ENOSPC\) \(free some space/);
      expect(readdirSync(dir)).toEqual([]);
    } finally {
      spawnSync("umount", [dir]);
    }
  });

  it("a read-only file system is reported as read-only, not as a missing file", () => {
    expect(mount(rodisk, "size=1m,ro")).toBe(true);
    expectFailure(llmq(["quantize", "--model", fp, "--output", join(rodisk, "out"), "--recipe", W4, "-q"], tmp), 1, /the file system is read-only \(EROFS\) \(choose a writable location\)/);
    expectFailure(
      llmq(["quantize", "--model", fp, "--output", join(tmp, "ro-report-out"), "--recipe", W4, "-q", "--report", join(rodisk, "r.html")], tmp),
      1,
      /r\.html — cannot write the report there: the file system is read-only \(EROFS\)/,
    );
    expect(existsSync(join(tmp, "ro-report-out"))).toBe(false);
  });
});
