// A directory quantized by a registered third-party quantizer (@llmq/hf-quantizers' registerQuantizer): a lazy
// WeightSource whose quantized linears are dequantized by the quantizer's own dequantizeLinear.
import { type HfQuantizationConfig, type Quantizer, autoQuantizationConfig, autoQuantizer, formatHfQuantizerError } from "@llmq/hf-quantizers";
import { type ModelError, type ModelHandle, type WeightSource, checkpointError, formatModelError, modelFromSource } from "@llmq/models";
import { type Checkpoint, type PyJsonObject, formatSerializationError, llmqDTypeOf, openCheckpoint } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { decodeQuantizationArgs, formatSchemeError } from "@llmq/schemes";
import type { InputQuantSpec } from "./activation-quant.js";
import { type LlmqError, modelError } from "./errors.js";

/** The registered quantizer that can read this quantization_config back, or null (built-in methods, unknown ones). */
export const registeredReader = (qc: unknown): { readonly config: HfQuantizationConfig; readonly quantizer: Quantizer } | null => {
  if (typeof qc !== "object" || qc === null || Array.isArray(qc)) return null;
  const c = autoQuantizationConfig(qc as PyJsonObject);
  if (E.isLeft(c)) return null;
  const q = autoQuantizer(c.right);
  return E.isRight(q) && q.right.storedParts !== undefined && q.right.dequantizeLinear !== undefined ? { config: c.right, quantizer: q.right } : null;
};

const registeredSource = (ck: Checkpoint, c: HfQuantizationConfig, q: Quantizer): WeightSource => {
  const parts = q.storedParts!;
  const marker = `.${parts[0]}`;
  const modules = new Set(ck.names.filter((n) => n.endsWith(marker)).map((n) => n.slice(0, -marker.length)));
  const owned = new Set([...modules].flatMap((m) => parts.map((p) => `${m}.${p}`)));
  const names = [...ck.names.filter((n) => !owned.has(n)), ...[...modules].map((m) => `${m}.weight`)];
  const denseOf = (m: string) => q.denseShape?.(new Map(parts.map((p) => [p, ck.info(`${m}.${p}`)?.info.shape ?? []])), c);
  const fromSer = (e: Parameters<typeof formatSerializationError>[0]): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));
  const read = (name: string): TE.TaskEither<ModelError, Tensor> => {
    const m = name.endsWith(".weight") ? name.slice(0, -".weight".length) : "";
    if (!modules.has(m)) return pipe(ck.read(name), TE.mapLeft(fromSer));
    return async () => {
      const got = new Map<string, Tensor>();
      for (const p of parts) {
        const t = await ck.read(`${m}.${p}`)();
        if (E.isLeft(t)) return E.left(fromSer(t.left));
        got.set(p, t.right);
      }
      const w = q.dequantizeLinear!(c, got);
      return E.isLeft(w) ? E.left(checkpointError(ck.dir, name, formatHfQuantizerError(w.left))) : E.right(w.right);
    };
  };
  return {
    names: () => names,
    shape: (name) => (name.endsWith(".weight") && modules.has(name.slice(0, -7)) ? denseOf(name.slice(0, -7)) : ck.info(name)?.info.shape),
    dtype: (name) => {
      if (name.endsWith(".weight") && modules.has(name.slice(0, -7))) return "f32";
      const d = ck.info(name)?.info.dtype;
      return d === undefined ? undefined : (llmqDTypeOf(d) ?? d);
    },
    read,
  };
};

/** The quantizer's run-time input quantization on each of its quantized linears (none for weight-only methods). */
const inputSpecs = (ck: Checkpoint, r: NonNullable<ReturnType<typeof registeredReader>>): E.Either<LlmqError, ReadonlyMap<string, InputQuantSpec>> => {
  const own = r.quantizer.inputQuantizer?.(r.config) ?? E.right(null);
  if (E.isLeft(own)) return E.left(modelError(formatHfQuantizerError(own.left)));
  if (own.right === null) return E.right(new Map());
  // What compressed-tensors would call it, for display: 8-bit int, dynamic, per token.
  const args = decodeQuantizationArgs({ num_bits: 8, type: "int", symmetric: true, strategy: "token", dynamic: true });
  if (E.isLeft(args)) return E.left(modelError(formatSchemeError(args.left)));
  const marker = `.${r.quantizer.storedParts![0]}`;
  const spec: InputQuantSpec = { args: args.right, scale: null, zeroPoint: null, globalScale: null, own: own.right };
  return E.right(new Map(ck.names.filter((n) => n.endsWith(marker)).map((n) => [n.slice(0, -marker.length), spec])));
};

/** Opens a directory a registered quantizer wrote: the handle and the run-time input quantization of its linears. */
export const openRegisteredDir = (
  dir: string,
  raw: Record<string, unknown>,
  r: NonNullable<ReturnType<typeof registeredReader>>,
): TE.TaskEither<LlmqError, { readonly handle: ModelHandle; readonly inputs: ReadonlyMap<string, InputQuantSpec> }> =>
  pipe(
    openCheckpoint(dir),
    TE.mapLeft((e) => modelError(formatSerializationError(e))),
    TE.chain((ck) =>
      pipe(
        E.Do,
        E.bind("inputs", () => inputSpecs(ck, r)),
        E.bind("handle", () => pipe(modelFromSource(dir, raw, registeredSource(ck, r.config, r.quantizer), dir, () => ck.close()), E.mapLeft((e) => modelError(formatModelError(e))))),
        E.fold(
          (e) => pipe(TE.fromTask(() => ck.close()), TE.chain(() => TE.left(e))),
          (x) => TE.right(x),
        ),
      ),
    ),
  );
