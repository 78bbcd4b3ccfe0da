import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Dataset } from "./dataset.js";
import { evaluate } from "./evaluate.js";
import { oneshot } from "./oneshot.js";
import { oneshotFiles } from "./oneshot-files.js";
import { openModelDir, openModelFiles } from "./open-model.js";
import { recipeFromYaml } from "./recipe.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// oneshot over files in memory (what examples/web runs in a browser) against oneshot over directories: the same
// checkpoint bytes, file by file, and the same evaluation of the result opened from memory or from disk.

let tmp = "";
let fp = "";

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-oneshot-files-"));
  fp = join(tmp, "fp");
  await convertStories(fp);
}, 60_000);

afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const filesOf = (dir: string): Map<string, Uint8Array> => new Map(readdirSync(dir).map((f) => [f, new Uint8Array(readFileSync(join(dir, f)))]));

const recipe = (file: string) => must(recipeFromYaml(readFileSync(join(ROOT, "fixtures/recipes", file), "utf8")));

describe("oneshotFiles", () => {
  for (const file of ["stories260k-w4a16-g32.yaml", "stories260k-w8a8.yaml"])
    it(`${file}: the checkpoint in memory is byte-identical to oneshot's directory, and evaluates the same`, async () => {
      const out = join(tmp, file);
      must(await oneshot({ model: fp, output: out, recipe: recipe(file) })());
      const mem = must(await oneshotFiles({ files: filesOf(fp), name: "stories260K", recipe: recipe(file) })());
      expect(mem.result.modules).toBeGreaterThan(0);
      expect([...mem.files.keys()].sort()).toEqual(readdirSync(out).sort());
      for (const [name, bytes] of filesOf(out)) expect(Buffer.from(mem.files.get(name)!).equals(Buffer.from(bytes)), name).toBe(true);
      const windows = [Int32Array.of(1, 403, 407, 261, 378, 261, 285, 320, 266, 293, 413, 402)];
      const data: Dataset = { path: "ids", kind: "tokens", windows, tokens: windows[0]!.length };
      const [ref, fromDisk, fromMemory] = [must(await openModelDir(fp)()), must(await openModelDir(out)()), must(await openModelFiles(mem.files)())];
      const a = must(await evaluate(fromDisk, ref, data)());
      const b = must(await evaluate(fromMemory, ref, data)());
      expect({ ...b, model: a.model }).toEqual(a);
      expect(a.kld!.mean).toBeGreaterThan(0);
      await Promise.all([ref, fromDisk, fromMemory].map((h) => h.close()));
    }, 60_000);

  it("refuses a model without model.safetensors, and a GPTQ-style quant_method given as files, by name", async () => {
    const files = filesOf(fp);
    files.delete("model.safetensors");
    const r = await openModelFiles(files, "x")();
    expect(E.isLeft(r) && r.left).toMatchObject({ _tag: "ModelError" });
    expect(JSON.stringify(r)).toContain("x/model.safetensors: not found");
    const g = filesOf(fp);
    g.set("config.json", new TextEncoder().encode(JSON.stringify({ ...JSON.parse(readFileSync(join(fp, "config.json"), "utf8")), quantization_config: { quant_method: "gptq", config_groups: {} } })));
    expect(JSON.stringify(await openModelFiles(g, "y")())).toContain('quant_method \\"gptq\\" is read from a directory only');
  });
});
