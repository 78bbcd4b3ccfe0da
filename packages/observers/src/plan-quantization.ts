import { type QuantizationArgs, type QuantizationConfig, type QuantizationScheme, formatSchemeError, isIgnored, resolveSchemeForModule } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type ModifierError, type ModuleInfo, modifierError } from "./modifier.js";

// Which module gets which scheme, decided once before any work so that a scheme that does not fit a layer fails
// fast (before a single byte is written), naming the module — like compressed-tensors' apply_quantization_config.

// ----- model -----

export interface PlannedModule {
  readonly module: ModuleInfo;
  readonly group: string;
  readonly scheme: QuantizationScheme;
}

export interface QuantizationPlan {
  readonly config: QuantizationConfig;
  /** Planned modules by full name. */
  readonly modules: ReadonlyMap<string, PlannedModule>;
  /** Linear modules left unquantized (ignored or not targeted): written to `ignore` on save like CT does. */
  readonly unquantized: ReadonlyArray<string>;
}

// ----- validation -----

/** Checks that the weight args can quantize a [out, in] weight (the reshape rules of CT's forward helpers). */
export const checkWeightFits = (name: string, args: QuantizationArgs, inF: number, modifier = "QuantizationModifier"): E.Either<ModifierError, void> => {
  const quantizationError = (module: string, detail: string): ModifierError => modifierError(modifier, module, detail);
  switch (args.strategy) {
    case "group":
    case "tensor_group": {
      const gs = args.group_size ?? 0;
      if (inF % gs !== 0)
        return E.left(
          quantizationError(
            name,
            `group_size ${gs} does not divide the ${inF} input features (pick a divisor of ${inF}, or give this module its own config group, e.g. strategy "channel")`,
          ),
        );
      if (args.type === "float" && args.num_bits === 4 && inF % 2 !== 0) return E.left(quantizationError(name, `fp4 packing needs an even number of columns, got ${inF}`));
      return E.right(undefined);
    }
    case "token":
      return E.left(quantizationError(name, `strategy "token" applies to activations, not weights`));
    default:
      return E.right(undefined);
  }
};

// ----- constructors -----

/** Assigns each linear module its config group (CT precedence), skipping ignored ones, and validates the fit. */
export const planQuantization = (
  config: QuantizationConfig,
  linears: ReadonlyArray<ModuleInfo>,
  modifier = "QuantizationModifier",
): E.Either<ModifierError, QuantizationPlan> => {
  const schemeError = (detail: string): ModifierError => modifierError(modifier, null, detail);
  const modules = new Map<string, PlannedModule>();
  const unquantized: string[] = [];
  for (const m of linears) {
    const ignored = isIgnored(m.name, [m.className], config.ignore);
    if (E.isLeft(ignored)) return E.left(schemeError(formatSchemeError(ignored.left)));
    if (ignored.right) {
      unquantized.push(m.name);
      continue;
    }
    const r = resolveSchemeForModule(config, m.name, [m.className]);
    if (E.isLeft(r)) return E.left(schemeError(formatSchemeError(r.left)));
    if (r.right === null) {
      unquantized.push(m.name);
      continue;
    }
    const { group, scheme } = r.right;
    if (scheme.weights) {
      const fit = checkWeightFits(m.name, scheme.weights, m.inFeatures, modifier);
      if (E.isLeft(fit)) return fit;
    }
    modules.set(m.name, { module: m, group, scheme });
  }
  if (modules.size === 0) return E.left(schemeError(`no module matches the targets of any config group (targets: ${Object.values(config.config_groups).flatMap((g) => g.targets).join(", ")})`));
  return E.right({ config, modules, unquantized });
};
