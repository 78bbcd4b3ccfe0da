import type { LayerState, ModuleInfo, QuantizedModule } from "@llmq/observers";
import { type ModelHandle, formatModelError } from "@llmq/models";
import type { ShardedWriter, formatSerializationError } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { compressModule } from "./checkpoint-format.js";
import { type LlmqError, modelError, outputFailure, quantizationError } from "./errors.js";
import type { LayerIO } from "./pipeline.js";

// The in-memory model's way in and out: decoder layers (and the head) are read once, in their stored dtype, into the
// LayerState the modifiers edit; when the last pass is done with a layer, exactly that state is written: quantized
// modules compressed, every other tensor as the modifiers left it. Tensors outside the layers (the embedding) are
// held once and written when the last pass starts.

// ----- model -----

export interface CheckpointIO extends LayerIO {
  /** The quantized modules written so far, in module order, without their tensors (for config.json). */
  readonly written: () => ReadonlyArray<Pick<QuantizedModule, "module" | "scheme" | "modifier">>;
}

// ----- constructors -----

const modulesOf = (h: ModelHandle, index: number, prefix: string): ReadonlyMap<string, ModuleInfo> =>
  new Map(
    h
      .linearModules()
      .filter((m) => (m.layer ?? h.numLayers) === index)
      .map((m) => [m.name.slice(prefix.length), m] as const),
  );

const readAll = async (h: ModelHandle, names: ReadonlyArray<string>): Promise<E.Either<LlmqError, ReadonlyMap<string, Tensor>>> => {
  const out = new Map<string, Tensor>();
  for (const n of names) {
    const t = await h.readTensor(n)();
    if (E.isLeft(t)) return E.left(modelError(formatModelError(t.left)));
    out.set(n, t.right);
  }
  return E.right(out);
};

/** Tensors outside the decoder layers and the head (the embedding…): held until written, then let go. */
export interface GlobalTensors {
  current: ReadonlyMap<string, Tensor>;
}

/** The tensors outside the decoder layers and the head, as stored, in checkpoint order. */
export const loadGlobals = async (h: ModelHandle): Promise<E.Either<LlmqError, GlobalTensors>> =>
  E.map((current: ReadonlyMap<string, Tensor>) => ({ current }))(
    await readAll(
      h,
      h.tensorNames().filter((n) => h.architecture.layerOf(n) === null && !isHeadTensor(h, n)),
    ),
  );

const isHeadTensor = (h: ModelHandle, n: string): boolean => n === h.architecture.finalNorm || n.startsWith(`${h.architecture.head}.`);

/** A stale quantization: a modifier edited a weight after another had quantized it. */
const checkFresh = (layer: LayerState): E.Either<LlmqError, void> => {
  for (const [local, q] of layer.quantized)
    if (layer.tensors.get(`${local}.weight`) !== q.source)
      return E.left(quantizationError(q.module.name, `its weight was edited after ${q.modifier} quantized it; put the editing modifier before ${q.modifier} in the recipe`));
  return E.right(undefined);
};

/** Layer i from disk, and its way to the writer. */
export const checkpointIO = (h: ModelHandle, globals: GlobalTensors, writer: ShardedWriter, output: string, onWrite: () => void): CheckpointIO => {
  const written: Array<Pick<QuantizedModule, "module" | "scheme" | "modifier">> = [];
  const add = async (name: string, t: Tensor): Promise<E.Either<LlmqError, void>> =>
    E.mapLeft((e: Parameters<typeof formatSerializationError>[0]) => outputFailure(output, e))(await writer.add(name, t)());
  const names = h.tensorNames();
  const load = async (index: number): Promise<E.Either<LlmqError, LayerState>> => {
    if (index < h.numLayers) {
      const t = await h.loadLayerTensors(index)();
      const prefix = h.architecture.layerPrefix(index);
      return E.isLeft(t)
        ? E.left(modelError(`layer ${index}: ${formatModelError(t.left)}`))
        : E.right({ index, prefix, tensors: t.right, quantized: new Map(), modules: modulesOf(h, index, prefix) });
    }
    const head = await readAll(h, names.filter((n) => isHeadTensor(h, n)));
    return E.map((tensors: ReadonlyMap<string, Tensor>): LayerState => ({ index, prefix: "", tensors, quantized: new Map(), modules: modulesOf(h, index, "") }))(head);
  };
  const save = async (layer: LayerState): Promise<E.Either<LlmqError, void>> => {
    const fresh = checkFresh(layer);
    if (E.isLeft(fresh)) return fresh;
    const stored = names.filter((n) => (layer.index < h.numLayers ? h.architecture.layerOf(n) === layer.index : isHeadTensor(h, n))).map((n) => n.slice(layer.prefix.length));
    const locals = [...stored, ...[...layer.tensors.keys()].filter((k) => !stored.includes(k))];
    const quantizedWeights = new Set([...layer.quantized.keys()].map((l) => `${l}.weight`));
    for (const local of locals) {
      const t = layer.tensors.get(local);
      if (t === undefined || quantizedWeights.has(local)) continue;
      const r = await add(layer.prefix + local, t);
      if (E.isLeft(r)) return r;
    }
    for (const local of layer.modules.keys()) {
      const q = layer.quantized.get(local);
      if (q === undefined) continue;
      const c = compressModule(q);
      if (E.isLeft(c)) return c;
      for (const [n, t] of c.right.tensors) {
        const r = await add(n, t);
        if (E.isLeft(r)) return r;
      }
      written.push({ module: q.module, scheme: q.scheme, modifier: q.modifier });
    }
    onWrite();
    return E.right(undefined);
  };
  const beforeSave = async (): Promise<E.Either<LlmqError, void>> => {
    const all = globals.current;
    globals.current = new Map();
    for (const [n, t] of all) {
      const r = await add(n, t);
      if (E.isLeft(r)) return r;
    }
    return E.right(undefined);
  };
  return { load, save, beforeSave, written: () => written };
};
