import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { beforeAll, describe, expect, it } from "vitest";
import { convertCommand } from "./convert-command.js";

// Every ```ts block of the README runs as written, in a directory where `.demo/stories260K` and `fixtures/` exist.

const root = new URL("../../../", import.meta.url).pathname;
const cwd = mkdtempSync(join(tmpdir(), "llmq-readme-"));
const blocks = [...readFileSync(join(root, "README.md"), "utf8").matchAll(/```ts\n([\s\S]*?)```/g)].map((m) => m[1]!);

beforeAll(async () => {
  mkdirSync(join(cwd, ".demo"), { recursive: true });
  // As if `llmq` were installed: node_modules/llmq → this package (its own dependencies resolve from its real path).
  mkdirSync(join(cwd, "node_modules"), { recursive: true });
  symlinkSync(join(root, "packages/llmq"), join(cwd, "node_modules/llmq"), "dir");
  // The bundled data, as in a checkout (the calibration example reads fixtures/wikitext-2).
  symlinkSync(join(root, "fixtures"), join(cwd, "fixtures"), "dir");
  const r = await convertCommand({
    from: "llama2c",
    model: join(root, "fixtures/stories260K/stories260K.bin"),
    tokenizer: join(root, "fixtures/stories260K/tok512.bin"),
    output: join(cwd, ".demo/stories260K"),
    overwrite: false,
  })();
  expect(E.isRight(r)).toBe(true);
});

describe("README examples", () => {
  it("has at least one TypeScript example", () => expect(blocks.length).toBeGreaterThan(0));
  for (const [i, code] of blocks.entries())
    it(`block ${i + 1} runs`, () => {
      const file = join(cwd, `readme-${i}.mts`);
      writeFileSync(file, code);
      const r = spawnSync(process.execPath, ["--conditions=@llmq/source", "--import", join(root, "node_modules/tsx/dist/loader.mjs"), file], {
        cwd,
        encoding: "utf8",
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/35 modules, format (int|pack)-quantized/);
    });
});
