import type { ModelInfo, OnlineTransform } from "@llmq/observers";
import { type TransformConfig, type TransformLocation, formatSchemeError, isIgnored, isOnlineLocation, matchesTarget } from "@llmq/schemes";
import * as E from "fp-ts/lib/Either.js";
import { type TransformMatrix, transformFactory, transformSize } from "./transform-matrices.js";

// compressed-tensors' apply_transform_config as a plan: for each scheme (config_groups order), each TransformArgs, each
// matching module in model order (CT's match_named_modules), the matrix its factory gives (drawing on first use of a
// size). Offline steps are fused into weights in exactly this order; online ones stay as run-time transforms whose
// weights are saved once, under the first module (model order, then registration order) holding them.

// ----- model -----

/** A module a transform can target: the embedding, a decoder linear or the head. */
export interface RotationModule {
  readonly name: string;
  /** An attention module takes only the online q_attn / k_cache transforms (SpinQuant R3), sized by head_dim. */
  readonly kind: "linear" | "embedding" | "attention";
  readonly className: string;
  /** Decoder layer, or null (embedding, head). */
  readonly layer: number | null;
  /** Linear: in/out features; Embedding: num_embeddings / embedding_dim. */
  readonly inFeatures: number;
  readonly outFeatures: number;
}

export interface RotationStep {
  readonly scheme: string;
  readonly location: TransformLocation;
  readonly module: RotationModule;
  /** The matrix as applied (CT's weight, or its transpose / inverse for `inverse: true`). */
  readonly matrix: TransformMatrix;
}

/** An online transform weight as saved: `<module>.<scheme>_<location>.weight`, ±1 (or the random matrix), unnormalized. */
export interface SavedTransform {
  readonly tensor: string;
  readonly n: number;
  readonly data: Float64Array | Float32Array;
}

export interface RotationPlan {
  readonly config: TransformConfig;
  /** Fused steps in application order. */
  readonly offline: ReadonlyArray<RotationStep>;
  /** Full module name → its online transforms in registration order. */
  readonly online: ReadonlyMap<string, ReadonlyArray<OnlineTransform>>;
  /** Full module name → the transform weights saved under it. */
  readonly saved: ReadonlyMap<string, ReadonlyArray<SavedTransform>>;
}

// ----- planning -----

/** The modules of a model in HF named_modules order: embedding, decoder linears, head. */
export const rotationModules = (model: ModelInfo): E.Either<string, ReadonlyArray<RotationModule>> => {
  const r = model.rotation;
  if (r === undefined) return E.left("this model gives no rotation geometry (embedding, head_dim); it cannot be rotated");
  const linears = model.linears.map((m): RotationModule => ({ ...m, kind: "linear" }));
  // named_modules order: a layer's self_attn comes before its projections
  const layerModules = (i: number): ReadonlyArray<RotationModule> => {
    const own = linears.filter((m) => m.layer === i);
    const attn = own.find((m) => m.name.endsWith(".self_attn.q_proj"));
    const attention: ReadonlyArray<RotationModule> =
      attn === undefined ? [] : [{ name: attn.name.slice(0, -".q_proj".length), kind: "attention", className: "LlamaAttention", layer: i, inFeatures: 0, outFeatures: 0 }];
    return [...attention, ...own];
  };
  return E.right([
    { name: r.embedding, kind: "embedding", className: "Embedding", layer: null, inFeatures: r.vocabSize, outFeatures: r.hiddenSize },
    ...Array.from({ length: model.numLayers }, (_, i) => layerModules(i)).flat(),
    ...linears.filter((m) => m.layer === null),
  ]);
};

const matched = (modules: ReadonlyArray<RotationModule>, targets: ReadonlyArray<string>, ignore: ReadonlyArray<string>): E.Either<string, ReadonlyArray<RotationModule>> => {
  const out: RotationModule[] = [];
  for (const m of modules) {
    for (const t of targets) {
      const hit = matchesTarget(m.name, [m.className], t);
      if (E.isLeft(hit)) return E.left(formatSchemeError(hit.left));
      if (!hit.right) continue;
      const ig = isIgnored(m.name, [m.className], ignore);
      if (E.isLeft(ig)) return E.left(formatSchemeError(ig.left));
      if (!ig.right) out.push(m);
      break;
    }
  }
  return E.right(out);
};

const featuresAt = (m: RotationModule, location: TransformLocation): number => (location === "input" || location === "weight_input" ? m.inFeatures : m.outFeatures);

interface Drawn {
  readonly step: RotationStep;
  readonly online: boolean;
  /** The parameter CT registers (shared between modules): the weight, or the inverse for random-matrix inverse args. */
  readonly param: TransformMatrix;
  readonly order: number;
}

/** Draws every step's matrix in CT's order; refuses what llmq cannot run (attention locations, online embedding/head). */
const drawSteps = (config: TransformConfig, modules: ReadonlyArray<RotationModule>): E.Either<string, ReadonlyArray<Drawn>> => {
  const out: Drawn[] = [];
  for (const [name, scheme] of Object.entries(config.config_groups)) {
    if (scheme.randomize) return E.left(`${name}: randomize true is not supported (llm-compressor 0.14 refuses it too)`);
    if (scheme.requires_grad) return E.left(`${name}: requires_grad true needs training (learnable rotations), which llmq does not do`);
    const factory = transformFactory(scheme);
    for (const args of scheme.apply) {
      const ms = matched(modules, args.targets, args.ignore);
      if (E.isLeft(ms)) return E.left(`${name}: ${ms.left}`);
      const online = isOnlineLocation(args.location);
      const onAttention = args.location === "q_attn" || args.location === "k_cache";
      for (const m of ms.right) {
        if (onAttention !== (m.kind === "attention"))
          return E.left(`${name}: a ${args.location} transform on ${m.name} is not supported (q_attn / k_cache act on attention modules only)`);
        if (online && (m.kind === "embedding" || m.layer === null))
          return E.left(`${name}: an online ${args.location} transform on ${m.name} is not supported by llmq (only decoder-layer linears and attention)`);
        if (m.kind === "attention" && scheme.head_dim === null) return E.left(`${name}: transforms on ${m.name} need head_dim (compressed-tensors refuses them too)`);
        const size = transformSize(m.kind === "attention" ? scheme.head_dim! : featuresAt(m, args.location), scheme.head_dim);
        if (E.isLeft(size)) return E.left(`${name} (${m.name}, ${args.location}): ${size.left}`);
        const w = factory.weight(size.right, online ? scheme.precision : "torch.float64");
        if (E.isLeft(w)) return E.left(`${name} (${m.name}): ${w.left}`);
        const matrix = args.inverse ? factory.inverse(w.right) : w;
        if (E.isLeft(matrix)) return E.left(`${name} (${m.name}): ${matrix.left}`);
        const param = args.inverse && scheme.type === "random-matrix" ? matrix.right : w.right;
        out.push({ step: { scheme: name, location: args.location, module: m, matrix: matrix.right }, online, param, order: out.length });
      }
    }
  }
  return E.right(out);
};

/** The plan of a transform config on a model: every matrix drawn, fused and online steps, saved weights. */
export const planRotations = (config: TransformConfig, model: ModelInfo): E.Either<string, RotationPlan> => {
  const modules = rotationModules(model);
  if (E.isLeft(modules)) return modules;
  const drawn = drawSteps(config, modules.right);
  if (E.isLeft(drawn)) return drawn;
  const index = new Map(modules.right.map((m, i) => [m.name, i] as const));
  const onlineSteps = drawn.right.filter((d) => d.online).sort((a, b) => index.get(a.step.module.name)! - index.get(b.step.module.name)! || a.order - b.order);
  const online = new Map<string, OnlineTransform[]>();
  const saved = new Map<string, SavedTransform[]>();
  const first = new Map<TransformMatrix, string>();
  for (const d of onlineSteps) {
    const { module, scheme, location, matrix } = d.step;
    const sub = `${scheme}_${location}`;
    const tensor = first.get(d.param) ?? `${module.name}.${sub}.weight`;
    const source = { tensor, transposed: matrix !== d.param };
    const t: OnlineTransform = { name: sub, location: location as OnlineTransform["location"], n: matrix.n, matrix: matrix.data, scale: matrix.scale, source, ...(matrix.structure ? { structure: matrix.structure } : {}) };
    online.set(module.name, [...(online.get(module.name) ?? []), t]);
    if (first.has(d.param)) continue;
    first.set(d.param, tensor);
    saved.set(module.name, [...(saved.get(module.name) ?? []), { tensor, n: d.param.n, data: d.param.data }]);
  }
  return E.right({ config, offline: drawn.right.filter((d) => !d.online).map((d) => d.step), online, saved });
};
