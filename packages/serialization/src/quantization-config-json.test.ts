import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { dumpPythonJson, parsePythonJson, pyFloatRepr, pyJsonString } from "./python-json.js";
import { decodeQuantizationConfig } from "@llmq/schemes";
import { encodeQuantizationConfigJson, quantizationConfigJson, readModelConfig, updateConfigJson } from "./quantization-config-json.js";
import { FIXTURES, readJson } from "./test-support/fixtures.js";

const right = <A>(r: E.Either<unknown, A>): A => {
  if (E.isLeft(r)) throw new Error(`expected Right, got ${JSON.stringify(r.left)}`);
  return r.right;
};
const tmp = mkdtempSync(join(tmpdir(), "llmq-cfg-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("Python json module compatibility (values from CPython)", () => {
  const pj = readJson<{ floats: [string, string, string][]; strings: [string, string][] }>("config/python-json.json");
  it(`repr() of ${pj.floats.length} floats`, () => {
    for (const [bits, repr, dumped] of pj.floats) {
      const x = Buffer.from(bits, "hex").readDoubleLE(0);
      expect(pyFloatRepr(x)).toBe(repr);
      expect(pyFloatRepr(x)).toBe(dumped);
    }
  });
  it("ensure_ascii string escapes", () => {
    for (const [utf16, dumped] of pj.strings) {
      const s = Buffer.from(utf16, "hex").toString("utf16le");
      expect(pyJsonString(s)).toBe(dumped);
    }
  });
});

describe("config.json quantization_config as compressed-tensors 0.20.0 writes it", () => {
  const manifest = readJson<Record<string, Record<string, unknown>>>("config/manifest.json");
  for (const [name, dump] of Object.entries(manifest)) {
    it(`${name}: update_config output byte for byte`, () => {
      const before = readFileSync(join(FIXTURES, "config", name, "config.before.json"), "utf8");
      const expected = readFileSync(join(FIXTURES, "config", name, "config.json"), "utf8");
      const qc = encodeQuantizationConfigJson(dump);
      expect(right(updateConfigJson(before, qc))).toBe(expected);
    });
    it(`${name}: decoded by @llmq/schemes and re-encoded, still byte for byte`, () => {
      const before = readFileSync(join(FIXTURES, "config", name, "config.before.json"), "utf8");
      const expected = readFileSync(join(FIXTURES, "config", name, "config.json"), "utf8");
      const qc = quantizationConfigJson(right(decodeQuantizationConfig(dump)));
      expect(right(updateConfigJson(before, qc))).toBe(expected);
    });
    it(`${name}: parse → dump round trip keeps ints, floats and escapes`, () => {
      const text = readFileSync(join(FIXTURES, "config", name, "config.json"), "utf8");
      expect(dumpPythonJson(right(parsePythonJson(text)), { indent: 2, sortKeys: true })).toBe(text);
    });
    it(`${name}: readModelConfig finds the quantization_config`, async () => {
      const cfg = right(await readModelConfig(join(FIXTURES, "config", name))());
      expect(cfg.quantizationConfig?.format).toBe((dump as { format: string }).format);
      expect(cfg.quantization).toEqual(right(decodeQuantizationConfig(dump)));
    });
  }

  it("rejects a non-object config and a foreign quant_method with the file named", async () => {
    const d = join(tmp, "bad");
    mkdirSync(d);
    writeFileSync(join(d, "config.json"), "[1]");
    const r = await readModelConfig(d)();
    expect(E.isLeft(r) && r.left._tag === "InvalidConfig" && r.left.file.endsWith("config.json")).toBe(true);
    writeFileSync(join(d, "config.json"), JSON.stringify({ quantization_config: { quant_method: "gptq", bits: 4 } }));
    const r2 = await readModelConfig(d)();
    expect(E.isLeft(r2) && r2.left._tag === "InvalidConfig" && r2.left.path).toBe("quantization_config.quant_method");
  });

  it("rejects an unknown key inside a scheme's args, naming the field path", async () => {
    const d = join(tmp, "unknown-key");
    mkdirSync(d);
    const qc = {
      quant_method: "compressed-tensors",
      format: "pack-quantized",
      config_groups: { group_0: { targets: ["Linear"], weights: { num_bits: 4, type: "int", symmetric: true, strategy: "channel", bogus: 1 } } },
    };
    writeFileSync(join(d, "config.json"), JSON.stringify({ quantization_config: qc }));
    const r = await readModelConfig(d)();
    if (E.isRight(r)) throw new Error("expected an error");
    expect(r.left._tag).toBe("InvalidConfig");
    expect(r.left._tag === "InvalidConfig" && r.left.path).toContain("config_groups.group_0.weights");
  });

  it("reads an unquantized config as quantizationConfig null", async () => {
    const d = join(tmp, "plain");
    mkdirSync(d);
    writeFileSync(join(d, "config.json"), '{"hidden_size": 8, "rms_norm_eps": 1e-06}');
    const r = right(await readModelConfig(d)());
    expect(r.quantizationConfig).toBeNull();
    expect(dumpPythonJson(r.config)).toBe('{"hidden_size": 8, "rms_norm_eps": 1e-06}');
  });
});
