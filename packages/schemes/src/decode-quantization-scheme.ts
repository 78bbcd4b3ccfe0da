import * as E from "fp-ts/lib/Either.js";
import { decodeQuantizationArgs } from "./decode-quantization-args.js";
import { type SchemeError, invalidArgs, invalidField, missingField } from "./errors.js";
import {
  COMPRESSION_FORMATS,
  type CompressionFormat,
  QUANTIZATION_SCHEME_FIELDS,
  type QuantizationArgs,
  type QuantizationScheme,
  type QuantizationStrategy,
} from "./quantization-args.js";
import { checkNoExtra, has, isPlainObject, join, readEnum, readStringList } from "./wire.js";

const ACTIVATION_STRATEGIES: ReadonlyArray<QuantizationStrategy> = ["token", "tensor", "group", "tensor_group", "attn_head"];

const optArgs = (o: Record<string, unknown>, k: string, path: string): E.Either<SchemeError, QuantizationArgs | null> =>
  !has(o, k) || o[k] === null || o[k] === undefined ? E.right(null) : decodeQuantizationArgs(o[k], join(path, k));

/**
 * Validates an unknown JSON value as compressed-tensors 0.20.0 `QuantizationScheme` (`extra="forbid"`): targets,
 * weights / input_activations / output_activations args, optional per-group format, and CT's scheme rules
 * (activation strategies, no actorder on activations, no "mixed-precision" format).
 */
export const decodeQuantizationScheme = (u: unknown, path = ""): E.Either<SchemeError, QuantizationScheme> => {
  if (!isPlainObject(u)) return E.left(invalidField(path, "an object of QuantizationScheme fields (targets, weights, input_activations, …)", u));
  if (!has(u, "targets")) return E.left(missingField(join(path, "targets")));
  const targets = readStringList(u.targets, join(path, "targets"));
  if (E.isLeft(targets)) return targets;
  const weights = optArgs(u, "weights", path);
  if (E.isLeft(weights)) return weights;
  const inputs = optArgs(u, "input_activations", path);
  if (E.isLeft(inputs)) return inputs;
  const outputs = optArgs(u, "output_activations", path);
  if (E.isLeft(outputs)) return outputs;
  const format =
    !has(u, "format") || u.format === null ? E.right(null) : readEnum<CompressionFormat>(u.format, COMPRESSION_FORMATS, join(path, "format"));
  if (E.isLeft(format)) return format;
  // pydantic: extra keys are reported after the field errors; the model rules run only when both are clean
  const ex = checkNoExtra(u, QUANTIZATION_SCHEME_FIELDS, path);
  if (E.isLeft(ex)) return ex;

  const i = inputs.right;
  if (i !== null) {
    if (!ACTIVATION_STRATEGIES.includes(i.strategy))
      return E.left(
        invalidArgs(
          join(path, "input_activations.strategy"),
          "activation_strategy",
          `strategy "${i.strategy}" is not supported for activation quantization; allowed: ${ACTIVATION_STRATEGIES.map((s) => `"${s}"`).join(", ")}`,
        ),
      );
    if (i.actorder !== null)
      return E.left(invalidArgs(join(path, "input_activations.actorder"), "activation_actorder", "cannot apply actorder to input activations; allowed: null"));
  }
  if (outputs.right !== null && outputs.right.actorder !== null)
    return E.left(invalidArgs(join(path, "output_activations.actorder"), "activation_actorder", "cannot apply actorder to output activations; allowed: null"));
  if (format.right === "mixed-precision")
    return E.left(
      invalidArgs(join(path, "format"), "mixed_precision_format", '"mixed-precision" cannot be the format of a single scheme; use a concrete format or null'),
    );
  return E.right({ targets: targets.right, weights: weights.right, input_activations: i, output_activations: outputs.right, format: format.right });
};
