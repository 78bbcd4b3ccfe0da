import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { stageDirectory } from "./staged-directory.js";

describe("stageDirectory", () => {
  const root = mkdtempSync(join(tmpdir(), "llmq-stage-"));

  it("refuses a non-empty target unless overwrite, and commit replaces it whole", async () => {
    const out = join(root, "out");
    mkdirSync(out);
    writeFileSync(join(out, "old.txt"), "old");
    expect(await stageDirectory(out)()).toEqual(E.left({ _tag: "OutputExists", file: out, tensor: null }));
    const s = await stageDirectory(out, { overwrite: true })();
    if (E.isLeft(s)) throw new Error("stage");
    writeFileSync(join(s.right.staging, "new.txt"), "new");
    expect(readFileSync(join(out, "old.txt"), "utf8")).toBe("old"); // untouched until commit
    expect(E.isRight(await s.right.commit()())).toBe(true);
    expect(readdirSync(out)).toEqual(["new.txt"]);
    expect(readdirSync(root)).toEqual(["out"]); // no staging or old directory left
  });

  it("discard leaves nothing behind and no target", async () => {
    const out = join(root, "never");
    const s = await stageDirectory(out)();
    if (E.isLeft(s)) throw new Error("stage");
    writeFileSync(join(s.right.staging, "x"), "x");
    await s.right.discard();
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(root).filter((f) => f.includes("never"))).toEqual([]);
  });
});
