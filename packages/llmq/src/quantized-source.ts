// GPTQ / AWQ / bitsandbytes / FP8 / HQQ / AQLM directories and GGUF files opened for running (eval, inspect, quantize): a lazy
// WeightSource that dequantizes each quantized linear when the forward asks for it, exactly as `llmq convert` writes it.
import { type ModelError, type ModelHandle, type WeightSource, checkpointError, formatModelError, modelFromSource, openGgufModel } from "@llmq/models";
import {
  type Checkpoint,
  type QuantizedFormat,
  dequantizeModule,
  formatSerializationError,
  llmqDTypeOf,
  parseBnbQuantState,
  quantizedPartsOf,
} from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { pipe } from "fp-ts/lib/function.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { type LlmqError, modelError } from "./errors.js";

const lift = (e: ModelError): LlmqError => modelError(formatModelError(e));

/** The dense [out, in] shape of a quantized linear from its stored parts' shapes (bnb 4-bit, HQQ: read from a part). */
const denseShape = (fmt: QuantizedFormat, shapes: ReadonlyMap<string, ReadonlyArray<number>>, storedShape?: ReadonlyArray<number>): ReadonlyArray<number> | undefined => {
  const qw = shapes.get("qweight");
  switch (fmt.method) {
    case "gptq":
      return qw && [qw[1]!, fmt.options.bits === 3 ? (qw[0]! / 3) * 32 : (qw[0]! * 32) / fmt.options.bits];
    case "awq":
      return qw && (fmt.options.version === "gemm" ? [qw[1]! * 8, qw[0]!] : [qw[0]!, qw[1]! * 8]);
    case "bitsandbytes_4bit":
    case "hqq":
      return storedShape;
    case "eetq": {
      // EETQ stores the weight transposed: [in, out].
      const w = shapes.get("weight");
      return w && [w[1]!, w[0]!];
    }
    case "aqlm": {
      const [codes, books] = [shapes.get("codes"), shapes.get("codebooks")];
      return codes && books && [codes[0]! * books[2]!, codes[1]! * books[3]!];
    }
    default:
      return shapes.get("weight");
  }
};

/** A lazy dense view of a GPTQ / AWQ / bitsandbytes / FP8 checkpoint. */
export const quantizedSource = (ck: Checkpoint, fmt: QuantizedFormat): TE.TaskEither<LlmqError, WeightSource> => async () => {
  const parts = quantizedPartsOf(fmt, ck.names);
  const modules = new Map<string, Map<string, string>>();
  const names: string[] = [];
  for (const n of ck.names) {
    const p = parts.get(n);
    if (p === undefined) names.push(n);
    else {
      if (!modules.has(p[0])) names.push(`${p[0]}.weight`);
      modules.set(p[0], (modules.get(p[0]) ?? new Map()).set(p[1], n));
    }
  }
  const shapes = new Map<string, ReadonlyArray<number> | undefined>();
  for (const [prefix, ps] of modules) {
    // bnb 4-bit keeps the shape in its quant_state JSON, HQQ in a `shape` tensor: both small, read now.
    let stored: ReadonlyArray<number> | undefined;
    const holder = fmt.method === "bitsandbytes_4bit" ? ps.get("quant_state") : fmt.method === "hqq" ? ps.get("shape") : undefined;
    if (holder !== undefined) {
      const t = await ck.read(holder)();
      if (E.isLeft(t)) return E.left(modelError(formatSerializationError(t.left)));
      if (fmt.method === "hqq") stored = Array.from(t.right.data as ArrayLike<number | bigint>, Number);
      else {
        const st = parseBnbQuantState(t.right.data as Uint8Array);
        stored = E.isRight(st) ? st.right.shape : undefined;
      }
    }
    shapes.set(`${prefix}.weight`, denseShape(fmt, new Map([...ps].map(([part, n]) => [part, ck.info(n)?.info.shape ?? []])), stored));
  }
  const read = (name: string): TE.TaskEither<ModelError, Tensor> => {
    const prefix = name.endsWith(".weight") ? name.slice(0, -7) : "";
    const ps = modules.get(prefix);
    const fromSer = (e: Parameters<typeof formatSerializationError>[0]): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));
    if (ps === undefined) return pipe(ck.read(name), TE.mapLeft(fromSer));
    return async () => {
      const got = new Map<string, Tensor>();
      for (const [part, n] of ps) {
        const t = await ck.read(n)();
        if (E.isLeft(t)) return E.left(fromSer(t.left));
        got.set(part, t.right);
      }
      return pipe(dequantizeModule(ck.dir, prefix, got, fmt), E.mapLeft(fromSer));
    };
  };
  return E.right({
    names: () => names,
    shape: (name) => (shapes.has(name) ? shapes.get(name) : ck.info(name)?.info.shape),
    dtype: (name) => {
      if (shapes.has(name)) return "f32";
      const d = ck.info(name)?.info.dtype;
      return d === undefined ? undefined : (llmqDTypeOf(d) ?? d);
    },
    read,
  });
};

/** A llama.cpp GGUF file opened as a model (weights dequantized on read). */
export const openGgufFile = (path: string): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    openGgufModel(path),
    TE.mapLeft(lift),
    TE.chain((m) =>
      pipe(
        modelFromSource(path, m.configJson, m.source, path, () => m.file.close()),
        E.fold(
          (e) => pipe(TE.fromTask(() => m.file.close()), TE.chain(() => TE.left(lift(e)))),
          (h) => TE.right(h),
        ),
      ),
    ),
  );
