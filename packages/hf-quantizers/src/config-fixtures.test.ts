import { readFileSync } from "node:fs";
import { type PyJson, type PyJsonObject, dumpPythonJson, parsePythonJson } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import {
  AqlmConfig,
  AwqConfig,
  BitsAndBytesConfig,
  CompressedTensorsConfig,
  EetqConfig,
  FbgemmFp8Config,
  GPTQConfig,
  HqqConfig,
  type QuantizationConfigClass,
  QuantoConfig,
  TorchAoConfig,
  autoQuantizationConfig,
  toDict,
  toDiffDict,
  toJsonString,
} from "./index.js";

// tools/gen_hf_config_fixtures.py: transformers 5.24's own classes on each input.
const fixture = parsePythonJson(readFileSync(new URL("../fixtures/hf-configs.json", import.meta.url), "utf8"));
if (E.isLeft(fixture)) throw new Error(fixture.left);
const cases = (fixture.right as PyJsonObject).cases as ReadonlyArray<PyJsonObject>;

const CLASSES: Readonly<Record<string, QuantizationConfigClass>> = Object.fromEntries(
  [BitsAndBytesConfig, GPTQConfig, AwqConfig, HqqConfig, QuantoConfig, EetqConfig, FbgemmFp8Config, TorchAoConfig, AqlmConfig, CompressedTensorsConfig].map((c) => [c.name, c]),
);

const build = (c: PyJsonObject) => {
  const input = c.input as PyJsonObject;
  if (c.how === "auto") return autoQuantizationConfig(input);
  const cls = CLASSES[c.class as string] as QuantizationConfigClass;
  return c.how === "from_dict" ? cls.fromDict(input) : cls.create(input);
};

const dump = (v: PyJson) => dumpPythonJson(v, { indent: 1 });

describe("transformers' config classes (fixtures from transformers 5.24)", () => {
  it("covers every class the issue names, with errors", () => {
    expect(new Set(cases.map((c) => c.class))).toEqual(new Set([...Object.keys(CLASSES), null]));
    expect(cases.filter((c) => c.error !== undefined).length).toBeGreaterThan(30);
  });

  for (const [i, c] of cases.entries()) {
    const label = `${i} ${String(c.class)} ${String(c.how)} ${dumpPythonJson(c.input as PyJson).slice(0, 90)}`;
    it(label, () => {
      const r = build(c);
      if (c.error !== undefined) {
        const want = c.error as PyJsonObject;
        expect(E.isLeft(r), "transformers raised here").toBe(true);
        if (E.isRight(r)) return;
        if (r.left._tag === "UnknownQuantMethod") {
          // transformers lists its own methods; llmq lists the ones it has config classes for.
          expect(r.left.message.split(" - ")[0]).toBe((want.message as string).split(" - ")[0]);
          return;
        }
        expect(r.left._tag).toBe("InvalidHfConfig");
        expect(r.left.message).toBe(want.message);
        if (r.left._tag === "InvalidHfConfig") expect(r.left.pythonType).toBe(want.type);
        return;
      }
      if (E.isLeft(r)) throw new Error(`llmq refused what transformers accepted: ${r.left.message}`);
      expect(r.right.className).toBe(c.result_class);
      // Unsorted dumps: the attribute order is transformers' too, and ints stay ints, floats floats.
      expect(dump(toDict(r.right))).toBe(dump(c.to_dict as PyJson));
      expect(dump(toDiffDict(r.right))).toBe(dump(c.to_diff_dict as PyJson));
      expect(toJsonString(r.right)).toBe(c.to_json_string);
      expect(toJsonString(r.right, false)).toBe(c.to_json_string_full);
    });
  }
});
