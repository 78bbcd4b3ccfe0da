import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { decodeQuantizationConfig } from "./decode-quantization-config.js";
import { decodeQuantizationScheme } from "./decode-quantization-scheme.js";
import { encodeQuantizationArgs, encodeQuantizationConfig, encodeQuantizationScheme } from "./encode-quantization.js";
import { type SchemeError, formatSchemeError } from "./errors.js";
import { inferModuleFormat, modelFormat } from "./infer-format.js";
import { PRESET_NAMES, presetScheme } from "./preset-schemes.js";
import { readFixture } from "./test-support/fixture-io.js";

// Decoders/encoders against compressed-tensors 0.20.0's own model_dump() and exceptions (fixtures/args.json).

interface Bad {
  readonly input: unknown;
  readonly error: string;
  readonly loc: string;
  readonly message: string;
}
interface Fx {
  readonly meta: { readonly compressed_tensors: string };
  readonly presets: Record<string, unknown>;
  readonly args: ReadonlyArray<{ readonly input: unknown; readonly dump: unknown }>;
  readonly configs: ReadonlyArray<{ readonly input: unknown; readonly dump: unknown }>;
  readonly invalid_args: ReadonlyArray<Bad>;
  readonly invalid_schemes: ReadonlyArray<Bad>;
  readonly invalid_configs: ReadonlyArray<Bad>;
  readonly formats: ReadonlyArray<{ readonly name: string; readonly scheme: unknown; readonly format: string }>;
}

const fx = readFixture<Fx>("args.json");

const pathOf = (e: SchemeError): string | undefined => ("path" in e ? e.path : undefined);

const expectRejected = (r: E.Either<SchemeError, unknown>, bad: Bad) => {
  expect(E.isLeft(r), `${JSON.stringify(bad.input)} must be rejected (CT: ${bad.error}: ${bad.message})`).toBe(true);
  if (E.isRight(r)) return;
  const msg = formatSchemeError(r.left);
  expect(msg.length).toBeGreaterThan(0);
  if (bad.loc !== "") {
    const p = pathOf(r.left) ?? "";
    expect(p === bad.loc || p.startsWith(`${bad.loc}.`), `error path ${p} should be at ${bad.loc} (${msg})`).toBe(true);
  }
};

describe(`decoders/encoders vs compressed-tensors ${fx.meta.compressed_tensors}`, () => {
  it("lists the presets in CT's order", () => {
    expect([...PRESET_NAMES]).toEqual(Object.keys(fx.presets));
  });
  for (const [name, dump] of Object.entries(fx.presets)) {
    it(`preset ${name} dumps like preset_name_to_scheme`, () => {
      const s = presetScheme(name.toLowerCase(), ["Linear"]);
      expect(E.isRight(s)).toBe(true);
      if (E.isRight(s)) expect(encodeQuantizationScheme(s.right)).toEqual(dump);
    });
  }
  it("rejects an unknown preset listing the valid names", () => {
    const s = presetScheme("W4A17", ["Linear"], "scheme");
    expect(E.isLeft(s) && s.left._tag === "UnknownPreset").toBe(true);
    if (E.isLeft(s)) expect(formatSchemeError(s.left)).toContain("W4A16_ASYM");
  });
  fx.args.forEach((a, i) => {
    it(`args #${i} ${JSON.stringify(a.input)}`, () => {
      const r = decodeQuantizationArgs(a.input);
      if (E.isLeft(r)) throw new Error(formatSchemeError(r.left));
      expect(encodeQuantizationArgs(r.right)).toEqual(a.dump);
      // the dump decodes to args that dump identically (idempotent round trip)
      const again = decodeQuantizationArgs(a.dump);
      expect(E.isRight(again) && encodeQuantizationArgs(again.right)).toEqual(a.dump);
    });
  });
  fx.configs.forEach((c, i) => {
    it(`config #${i}`, () => {
      const r = decodeQuantizationConfig(c.input);
      if (E.isLeft(r)) throw new Error(formatSchemeError(r.left));
      expect(encodeQuantizationConfig(r.right)).toEqual(c.dump);
      const wrapped = decodeQuantizationConfig({ quantization_config: c.input });
      expect(E.isRight(wrapped) && encodeQuantizationConfig(wrapped.right)).toEqual(c.dump);
    });
  });
  for (const f of fx.formats) {
    it(`infer_module_format ${f.name} → ${f.format}`, () => {
      const s = decodeQuantizationScheme(f.scheme);
      if (E.isLeft(s)) throw new Error(formatSchemeError(s.left));
      expect(inferModuleFormat(s.right)).toBe(f.format);
    });
  }
  it("flattens module formats like _flatten_formats", () => {
    expect(modelFormat([])).toBe("dense");
    expect(modelFormat(["dense", "pack-quantized", "pack-quantized"])).toBe("pack-quantized");
    expect(modelFormat(["pack-quantized", "int-quantized"])).toBe("mixed-precision");
  });
  fx.invalid_args.forEach((b, i) => {
    it(`invalid args #${i} ${JSON.stringify(b.input)}`, () => expectRejected(decodeQuantizationArgs(b.input), b));
  });
  fx.invalid_schemes.forEach((b, i) => {
    it(`invalid scheme #${i} ${JSON.stringify(b.input)}`, () => expectRejected(decodeQuantizationScheme(b.input), b));
  });
  fx.invalid_configs.forEach((b, i) => {
    it(`invalid config #${i} ${JSON.stringify(b.input)}`, () => expectRejected(decodeQuantizationConfig(b.input), b));
  });
});
