import * as E from "fp-ts/lib/Either.js";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { decodeQuantizationScheme } from "./decode-quantization-scheme.js";
import { type SchemeError, invalidField, missingField } from "./errors.js";
import { presetScheme } from "./preset-schemes.js";
import { QUANTIZATION_STATUSES, type QuantizationConfig, type QuantizationScheme, type QuantizationStatus } from "./quantization-args.js";
import { has, isPlainObject, join, readEnum, readString, readStringList } from "./wire.js";

/**
 * Validates an unknown JSON value as compressed-tensors 0.20.0 `QuantizationConfig` (`extra="ignore"`: writer keys
 * such as `version`, `sparsity_config`, `transform_config` are skipped). A whole config.json or a wrapper
 * `{"quantization_config": {...}}` is unwrapped; a group whose value is a list of targets and whose name is a preset
 * (`"W4A16": ["Linear"]`) is expanded to that preset, as `model_post_init` does.
 */
export const decodeQuantizationConfig = (u0: unknown, path = ""): E.Either<SchemeError, QuantizationConfig> => {
  let u = u0;
  let base = path;
  if (isPlainObject(u) && !has(u, "config_groups") && has(u, "quantization_config")) {
    base = join(path, "quantization_config");
    u = u.quantization_config;
  }
  if (!isPlainObject(u)) return E.left(invalidField(base, "an object with config_groups (a compressed-tensors quantization_config)", u));
  const p = (k: string) => join(base, k);
  if (!has(u, "config_groups")) return E.left(missingField(p("config_groups")));
  const cg = u.config_groups;
  if (!isPlainObject(cg)) return E.left(invalidField(p("config_groups"), "an object mapping group names to schemes or target lists", cg));
  const groups: Record<string, QuantizationScheme> = {};
  for (const [name, g] of Object.entries(cg)) {
    const gp = join(p("config_groups"), name);
    let r: E.Either<SchemeError, QuantizationScheme>;
    if (Array.isArray(g)) {
      const t = readStringList(g, gp);
      if (E.isLeft(t)) return t;
      r = presetScheme(name, t.right, gp);
    } else r = decodeQuantizationScheme(g, gp);
    if (E.isLeft(r)) return r;
    groups[name] = r.right;
  }
  const quantMethod = has(u, "quant_method") ? readEnum(u.quant_method, ["compressed-tensors"] as const, p("quant_method")) : E.right("compressed-tensors" as const);
  if (E.isLeft(quantMethod)) return quantMethod;
  const kv = !has(u, "kv_cache_scheme") || u.kv_cache_scheme === null ? E.right(null) : decodeQuantizationArgs(u.kv_cache_scheme, p("kv_cache_scheme"));
  if (E.isLeft(kv)) return kv;
  const format = has(u, "format") ? readString(u.format, p("format")) : E.right("fakequant");
  if (E.isLeft(format)) return format;
  const status = has(u, "quantization_status")
    ? readEnum<QuantizationStatus>(u.quantization_status, QUANTIZATION_STATUSES, p("quantization_status"))
    : E.right<SchemeError, QuantizationStatus>("initialized");
  if (E.isLeft(status)) return status;
  const gcr = u.global_compression_ratio;
  if (gcr !== undefined && gcr !== null && typeof gcr !== "number")
    return E.left(invalidField(p("global_compression_ratio"), "a number or null", gcr));
  // CT keeps `ignore: null` as None; every consumer treats it as empty, so it decodes to [].
  const ignore = !has(u, "ignore") || u.ignore === null ? E.right([] as ReadonlyArray<string>) : readStringList(u.ignore, p("ignore"));
  if (E.isLeft(ignore)) return ignore;
  const moe = u.moe_sparsity_config;
  if (moe !== undefined && moe !== null && !isPlainObject(moe)) return E.left(invalidField(p("moe_sparsity_config"), "an object or null", moe));
  return E.right({
    config_groups: groups,
    quant_method: quantMethod.right,
    kv_cache_scheme: kv.right,
    format: format.right,
    quantization_status: status.right,
    global_compression_ratio: typeof gcr === "number" ? gcr : null,
    ignore: ignore.right,
    ...(moe !== undefined ? { moe_sparsity_config: (moe as Record<string, unknown> | null) ?? null } : {}),
  });
};
