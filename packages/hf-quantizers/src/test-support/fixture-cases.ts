import { readFileSync } from "node:fs";
import { type PyJsonObject, deserializeSafetensors, parsePythonJson } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { configFromUserDict } from "../config-registry.js";
import type { HfQuantizationConfig } from "../quantization-config.js";
import type { Quantizer } from "../quantizer.js";
import { autoQuantizer } from "../quantizer-registry.js";

/** A tools/fixture_cases.py directory: manifest.json (Python's JSON) and the tensors of cases.safetensors. */
export const loadFixtureCases = (dir: URL): { readonly manifest: PyJsonObject; readonly cases: PyJsonObject; readonly stored: ReadonlyMap<string, Tensor> } => {
  const manifest = parsePythonJson(readFileSync(new URL("manifest.json", dir), "utf8"));
  if (E.isLeft(manifest)) throw new Error(manifest.left);
  const file = deserializeSafetensors("cases.safetensors", new Uint8Array(readFileSync(new URL("cases.safetensors", dir))));
  if (E.isLeft(file)) throw new Error(JSON.stringify(file.left));
  const m = manifest.right as PyJsonObject;
  return { manifest: m, cases: m.cases as PyJsonObject, stored: file.right.tensors };
};

/** A tensor's bytes as hex (bit-exact comparisons with readable diffs). */
export const hexBytes = (t: Tensor): string => Buffer.from(t.bytes()).toString("hex");

/** A fixture case's config (its `config` dict through configFromUserDict) and the quantizer transformers picks for it. */
export const caseConfig = (want: PyJsonObject): { readonly config: HfQuantizationConfig; readonly quantizer: Quantizer } => {
  const config = configFromUserDict(want.config as PyJsonObject);
  if (E.isLeft(config)) throw new Error(config.left.message);
  const q = autoQuantizer(config.right);
  if (E.isLeft(q)) throw new Error(q.left.message);
  return { config: config.right, quantizer: q.right };
};
