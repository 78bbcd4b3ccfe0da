import { nodeBuiltin } from "@llmq/tensor";
import { type QuantizationConfig, type SchemeError, decodeQuantizationConfig, encodeQuantizationConfig, formatSchemeError } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type SerializationError, invalidConfig, ioError } from "./errors.js";
import { type PyJson, type PyJsonObject, PyFloat, dumpPythonJson, parsePythonJson, toPlainJson } from "./python-json.js";
const { readFile } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// ----- constants -----

/** compressed-tensors version whose writer this module reproduces (written as quantization_config.version). */
export const COMPRESSED_TENSORS_VERSION = "0.20.0";
export const QUANTIZATION_METHOD = "compressed-tensors";
export const CONFIG_NAME = "config.json";

// ----- encoding -----

export interface QuantizationConfigJsonOptions {
  /** TransformConfig.model_dump(), or {} (default) when there is none. */
  readonly transformConfig?: PyJsonObject;
  /** Default "0.20.0". */
  readonly version?: string;
}

/**
 * The `quantization_config` object ModelCompressor.update_config (compressed-tensors 0.20.0) writes:
 * { version, quant_method: "compressed-tensors", sparsity_config: {}, transform_config, ...QuantizationConfig dump
 * without quant_method }. `dump` is QuantizationConfig.model_dump() (e.g. @llmq/schemes' encodeQuantizationConfig);
 * pydantic float fields (global_compression_ratio) are marked so that 2 is written "2.0" as Python does.
 */
export const encodeQuantizationConfigJson = (dump: Readonly<Record<string, unknown>>, opts: QuantizationConfigJsonOptions = {}): PyJsonObject => {
  const out: Record<string, PyJson> = {
    version: opts.version ?? COMPRESSED_TENSORS_VERSION,
    quant_method: QUANTIZATION_METHOD,
    sparsity_config: {},
    transform_config: opts.transformConfig ?? {},
  };
  for (const [k, v] of Object.entries(dump)) {
    if (k === "quant_method") continue;
    out[k] = k === "global_compression_ratio" && typeof v === "number" ? new PyFloat(v) : (v as PyJson);
  }
  return out;
};

/** encodeQuantizationConfigJson of a decoded config (@llmq/schemes' encodeQuantizationConfig gives the dump). */
export const quantizationConfigJson = (config: QuantizationConfig, opts: QuantizationConfigJsonOptions = {}): PyJsonObject =>
  encodeQuantizationConfigJson(encodeQuantizationConfig(config), opts);

/**
 * config.json text after update_config: the existing config (read with Python's int/float distinction) gets
 * `quantization_config`, and the whole file is written as json.dump(indent=2, sort_keys=True) (no final newline).
 */
export const updateConfigJson = (existing: string | null, quantizationConfig: PyJsonObject, file = CONFIG_NAME): E.Either<SerializationError, string> => {
  const base = existing === null ? E.right<string, PyJson>({}) : parsePythonJson(existing);
  if (E.isLeft(base)) return E.left(invalidConfig(file, "", `not valid JSON: ${base.left}`));
  const v = base.right;
  if (v === null || typeof v !== "object" || Array.isArray(v) || v instanceof PyFloat) return E.left(invalidConfig(file, "", "config.json must be a JSON object"));
  return E.right(dumpPythonJson({ ...(v as PyJsonObject), quantization_config: quantizationConfig }, { indent: 2, sortKeys: true }));
};

// ----- reading -----

export interface ModelConfig {
  /** The whole config.json, with Python's int/float distinction kept. */
  readonly config: PyJsonObject;
  /** `quantization_config` as written (unwrapped if nested one level deeper), or null for an unquantized model. */
  readonly quantizationConfig: PyJsonObject | null;
  /** The same, decoded and validated by @llmq/schemes (compressed-tensors 0.20.0 rules), or null. */
  readonly quantization: QuantizationConfig | null;
}

const isObject = (v: PyJson | undefined): v is PyJsonObject => v !== null && typeof v === "object" && !Array.isArray(v) && !(v instanceof PyFloat);

/**
 * Shape check of a compressed-tensors quantization_config: an object with quant_method "compressed-tensors" (when
 * present) and config_groups an object. Full validation of the groups is @llmq/schemes' decodeQuantizationConfig.
 */
export const checkQuantizationConfigShape = (file: string, qc: PyJson): E.Either<SerializationError, PyJsonObject> => {
  if (!isObject(qc)) return E.left(invalidConfig(file, "quantization_config", "must be an object"));
  const inner = !("config_groups" in qc) && isObject(qc.quantization_config) ? qc.quantization_config : qc;
  const qm = inner.quant_method;
  if (qm !== undefined && qm !== QUANTIZATION_METHOD)
    return E.left(invalidConfig(file, "quantization_config.quant_method", `only "compressed-tensors" is supported, got ${JSON.stringify(qm)}`));
  if (!isObject(inner.config_groups)) return E.left(invalidConfig(file, "quantization_config.config_groups", "must be an object of group name → scheme"));
  return E.right(inner);
};

const schemeErrorPath = (e: SchemeError): string => ("path" in e ? e.path : "target" in e ? `target ${e.target}` : "");

/**
 * Reads `<dir>/config.json` and decodes its quantization_config with @llmq/schemes' decodeQuantizationConfig
 * (unknown keys in args/schemes rejected, top-level extras ignored, as compressed-tensors does).
 */
export const readModelConfig = (dir: string): TE.TaskEither<SerializationError, ModelConfig> => {
  const file = join(dir, CONFIG_NAME);
  return pipe(
    TE.tryCatch(
      () => readFile(file, "utf8"),
      (err) => ioError(file, "read", err),
    ),
    TE.chainEitherK((text) => {
      const parsed = parsePythonJson(text);
      if (E.isLeft(parsed)) return E.left(invalidConfig(file, "", `not valid JSON: ${parsed.left}`));
      const config = parsed.right;
      if (!isObject(config)) return E.left(invalidConfig(file, "", "config.json must be a JSON object"));
      const qc = config.quantization_config;
      if (qc === undefined || qc === null) return E.right({ config, quantizationConfig: null, quantization: null });
      return pipe(
        checkQuantizationConfigShape(file, qc),
        E.chain((q) =>
          pipe(
            decodeQuantizationConfig(toPlainJson(q)),
            E.mapLeft((e) => invalidConfig(file, `quantization_config.${schemeErrorPath(e)}`.replace(/\.$/, ""), formatSchemeError(e))),
            E.map((quantization) => ({ config, quantizationConfig: q, quantization })),
          ),
        ),
      );
    }),
  );
};
