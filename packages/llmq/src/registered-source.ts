// A directory quantized by a registered third-party quantizer (@llmq/hf-quantizers' registerQuantizer): a lazy
// WeightSource whose quantized linears are dequantized by the quantizer's own dequantizeLinear.
import { type HfQuantizationConfig, type Quantizer, autoQuantizationConfig, autoQuantizer, formatHfQuantizerError } from "@llmq/hf-quantizers";
import { type ModelError, type ModelHandle, type WeightSource, checkpointError, formatModelError, modelFromSource } from "@llmq/models";
import { type Checkpoint, type PyJsonObject, formatSerializationError, llmqDTypeOf, openCheckpoint } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
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
  const denseOf = (m: string) => q.denseShape?.(new Map(parts.map((p) => [p, ck.info(`${m}.${p}`)?.info.shape ?? []])));
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

/** Opens a directory a registered quantizer wrote. */
export const openRegisteredDir = (dir: string, raw: Record<string, unknown>, r: NonNullable<ReturnType<typeof registeredReader>>): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    openCheckpoint(dir),
    TE.mapLeft((e) => modelError(formatSerializationError(e))),
    TE.chain((ck) =>
      pipe(
        modelFromSource(dir, raw, registeredSource(ck, r.config, r.quantizer), dir, () => ck.close()),
        E.fold(
          (e) => pipe(TE.fromTask(() => ck.close()), TE.chain(() => TE.left(modelError(formatModelError(e))))),
          (h) => TE.right(h),
        ),
      ),
    ),
  );
