import { hasNodeBuiltins, nodeBuiltin } from "@llmq/tensor";
import {
  type ModelError,
  type ModelHandle,
  type WeightSource,
  checkModelTensors,
  checkpointError,
  formatModelError,
  ggufTokenizerFiles,
  loadTokenizer,
  modelFromSource,
  openModel,
  readConfigJson,
  tokenizerFromJson,
} from "@llmq/models";
import type { OnlineTransform } from "@llmq/observers";
import { type QuantizationConfig, decodeQuantizationConfig, decodeTransformConfig, formatSchemeError, resolveSchemeForModule } from "@llmq/schemes";
import {
  type Checkpoint,
  type CompressionFormat,
  SAFE_WEIGHTS_NAME,
  memoryCheckpoint,
  decompressModule,
  formatSerializationError,
  inferFormat,
  llmqDTypeOf,
  openCheckpoint,
  openGguf,
  quantMethodOf,
  quantizedFormatOf,
  type QuantizedFormat,
} from "@llmq/serialization";
import { type KvCacheFormat, checkKvCacheScheme, formatKvCacheError, kvQParamsOf, kvScaleNames } from "@llmq/kv-cache";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import * as TE from "fp-ts/lib/TaskEither.js";
import { pipe } from "fp-ts/lib/function.js";
import type { InputQuantSpec } from "./activation-quant.js";
import type { DatasetTokenizer } from "./dataset.js";
import { type LlmqError, modelError } from "./errors.js";
import { onlineTransformsOf } from "./online-transforms.js";
import { isMsModelSlimDir, msModelSlimParts } from "./ms-model-slim-source.js";
import { openGgufFile, quantizedSource } from "./quantized-source.js";
import { openRegisteredDir, registeredReader } from "./registered-source.js";
const { access, stat } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { join } = nodeBuiltin<typeof import("node:path")>("node:path");

// Opens any model llmq can run: a dense HF checkpoint, a compressed-tensors one, whose quantized modules are
// decompressed on read exactly as compressed-tensors' decompressors do (so `eval` measures what vLLM/transformers
// would load), a GPTQ / AWQ / bitsandbytes / FP8 directory or a llama.cpp GGUF file (dequantized on read as
// `llmq convert` does).

const lift = (e: ModelError): LlmqError => modelError(formatModelError(e));

/** `dir`/config.json for messages; without node:path (a model given as files in a browser) joined with "/". */
const configPath = (dir: string): string => (hasNodeBuiltins() ? join(dir, "config.json") : `${dir}/config.json`);

/** Parameter names compressed-tensors stores beside (or instead of) a module's weight. */
const PARAM_SUFFIXES = ["weight_packed", "weight_scale", "weight_zero_point", "weight_shape", "weight_g_idx", "weight_global_scale"] as const;

interface CompressedEntry {
  readonly base: string;
  readonly format: CompressionFormat;
  readonly scheme: QuantizationConfig["config_groups"][string];
  readonly shape: ReadonlyArray<number>;
  readonly parts: ReadonlyArray<string>;
}

/** A tensor's dtype as stored, in llmq's names where llmq has one. */
const storedDType = (ck: Checkpoint, name: string): string | undefined => {
  const d = ck.info(name)?.info.dtype;
  return d === undefined ? undefined : (llmqDTypeOf(d) ?? d);
};

/** A checkpoint tensor, or null when `name` is null or not stored (optional parameters: zero points, input scales). */
const readIfStored = async (ck: Checkpoint, name: string | null): Promise<E.Either<LlmqError, Tensor | null>> => {
  if (name === null || ck.info(name) === undefined) return E.right(null);
  const t = await ck.read(name)();
  return E.isLeft(t) ? E.left(modelError(formatSerializationError(t.left))) : E.right(t.right);
};

const orNull = (x: E.Either<LlmqError, Tensor | null>): Tensor | null => (E.isRight(x) ? x.right : null);

/**
 * The calibrated KV cache of a checkpoint whose config has a kv_cache_scheme: each attention module's k / v qparams
 * (`self_attn.k_scale`, or the legacy `k_proj.output_scale`), checked against the scheme. A scheme without scales, or
 * scales that do not fit it, is an error: the checkpoint would not run as its config says.
 */
const kvCacheOf = async (dir: string, ck: Checkpoint, config: QuantizationConfig, raw: Record<string, unknown>): Promise<E.Either<LlmqError, ReadonlyMap<string, KvCacheFormat>>> => {
  const args = config.kv_cache_scheme;
  if (args === null) return E.right(new Map());
  const checked = checkKvCacheScheme(args);
  if (E.isLeft(checked)) return E.left(modelError(`${configPath(dir)}: ${formatKvCacheError(checked.left)}`));
  const names = kvScaleNames(ck.names);
  if (names.size === 0) return E.left(modelError(`${dir}: config.json has a kv_cache_scheme but the checkpoint stores no self_attn.k_scale / v_scale (nor legacy k_proj.output_scale)`));
  const kvHeads = Number(raw.num_key_value_heads ?? raw.num_attention_heads);
  const out = new Map<string, KvCacheFormat>();
  for (const [attn, n] of names) {
    const [k, v, kz, vz] = [await readIfStored(ck, n.k), await readIfStored(ck, n.v), await readIfStored(ck, n.kZeroPoint), await readIfStored(ck, n.vZeroPoint)];
    for (const x of [k, v, kz, vz]) if (E.isLeft(x)) return x;
    const kq = kvQParamsOf(args, n.k, orNull(k)!, orNull(kz), kvHeads);
    const vq = kvQParamsOf(args, n.v, orNull(v)!, orNull(vz), kvHeads);
    if (E.isLeft(kq)) return E.left(modelError(`${dir}: ${formatKvCacheError(kq.left)}`));
    if (E.isLeft(vq)) return E.left(modelError(`${dir}: ${formatKvCacheError(vq.left)}`));
    out.set(attn, { kind: "static", args, k: kq.right, v: vq.right });
  }
  return E.right(out);
};

const compressedSource = (
  dir: string,
  ck: Checkpoint,
  config: QuantizationConfig,
): TE.TaskEither<LlmqError, { readonly source: WeightSource; readonly inputs: ReadonlyMap<string, InputQuantSpec> }> => async () => {
  const present = new Set(ck.names);
  const entries = new Map<string, CompressedEntry>();
  const inputs = new Map<string, InputQuantSpec>();
  for (const n of ck.names) {
    if (!n.endsWith(".weight_scale")) continue;
    const base = n.slice(0, -".weight_scale".length);
    const r = resolveSchemeForModule(config, base, ["Linear"]);
    if (E.isLeft(r)) return E.left(modelError(formatSchemeError(r.left)));
    if (r.right === null) continue; // a scale without a scheme: e.g. a kv-cache or activation scale, passed through
    const scheme = r.right.scheme;
    const ia = scheme.input_activations;
    if (ia !== null) {
      const [sc, zp, gs] = [await readIfStored(ck, `${base}.input_scale`), await readIfStored(ck, `${base}.input_zero_point`), await readIfStored(ck, `${base}.input_global_scale`)];
      for (const v of [sc, zp, gs]) if (E.isLeft(v)) return v;
      if (ia.dynamic === false && orNull(sc) === null) return E.left(modelError(`${dir}: ${base} has static input activations but no input_scale`));
      inputs.set(base, { args: ia, scale: orNull(sc), zeroPoint: orNull(zp), globalScale: orNull(gs) });
    }
    const format = (scheme.format as CompressionFormat | null) ?? (config.format !== "mixed-precision" ? (config.format as CompressionFormat) : inferFormat(scheme));
    let shape: ReadonlyArray<number> | undefined;
    if (present.has(`${base}.weight_shape`)) {
      const t = await ck.read(`${base}.weight_shape`)();
      if (E.isLeft(t)) return E.left(modelError(formatSerializationError(t.left)));
      shape = Array.from(t.right.data as BigInt64Array, Number);
    } else if (present.has(`${base}.weight`)) shape = ck.info(`${base}.weight`)!.info.shape;
    else if (present.has(`${base}.weight_packed`)) {
      // nvfp4 / mxfp4: two fp4 codes per byte along the input dim.
      const s = ck.info(`${base}.weight_packed`)!.info.shape;
      shape = [...s.slice(0, -1), s[s.length - 1]! * 2];
    }
    if (shape === undefined) return E.left(modelError(`${dir}: ${base} has a weight_scale but no weight, weight_packed or weight_shape`));
    const parts = ["weight", ...PARAM_SUFFIXES].map((p) => `${base}.${p}`).filter((p) => present.has(p));
    entries.set(`${base}.weight`, { base, format, scheme, shape, parts });
  }
  const hidden = new Set([...entries.values()].flatMap((e) => e.parts));
  const visible = [...ck.names.filter((n) => !hidden.has(n)), ...entries.keys()];
  const readRaw = (name: string): TE.TaskEither<ModelError, Tensor> =>
    pipe(
      ck.read(name),
      TE.mapLeft((e) => checkpointError(e.file, e.tensor, formatSerializationError(e))),
    );
  return E.right({ inputs, source: {
    names: () => visible,
    shape: (name) => entries.get(name)?.shape ?? (hidden.has(name) ? undefined : ck.info(name)?.info.shape),
    dtype: (name) => (entries.has(name) || hidden.has(name) ? undefined : storedDType(ck, name)), // compressed modules decompress to float
    read: (name) => {
      const e = entries.get(name);
      if (e === undefined) return readRaw(name);
      return pipe(
        e.parts,
        TE.traverseSeqArray((p) =>
          pipe(
            readRaw(p),
            TE.map((t) => [p.slice(e.base.length + 1), t] as const),
          ),
        ),
        TE.chainEitherK((state) =>
          pipe(
            decompressModule(e.format, e.scheme, new Map(state), { module: e.base, file: dir }),
            E.mapLeft((err) => checkpointError(dir, name, formatSerializationError(err))),
            E.chain((m) => {
              const w = m.get("weight");
              return w === undefined ? E.left(checkpointError(dir, name, "decompression produced no weight")) : E.right(w);
            }),
          ),
        ),
      );
    },
  } });
};

const inputSpecsByHandle = new WeakMap<ModelHandle, ReadonlyMap<string, InputQuantSpec>>();
const kvCacheByHandle = new WeakMap<ModelHandle, ReadonlyMap<string, KvCacheFormat>>();

/**
 * The calibrated KV-cache format of an opened checkpoint's attention modules (full module name, e.g.
 * "model.layers.0.self_attn" → static fp8/int8 with its k/v qparams); empty when its config has no kv_cache_scheme.
 */
export const kvCacheFormats = (h: ModelHandle): ReadonlyMap<string, KvCacheFormat> => kvCacheByHandle.get(h) ?? new Map();

/**
 * The input-activation quantization of an opened compressed model's modules (full module name → spec), empty for a
 * dense or weight-only model. Used to run the model as a runtime would (quantized linear inputs).
 */
export const inputQuantSpecs = (h: ModelHandle): ReadonlyMap<string, InputQuantSpec> => inputSpecsByHandle.get(h) ?? new Map();

/**
 * Opens a dense or compressed-tensors model directory for running (calibration, evaluation), after checking from the
 * headers that every tensor its config implies is there with the right shape and a float dtype.
 */
export const openModelDir = (dir: string): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    openUnchecked(dir),
    TE.chain((h) =>
      pipe(
        checkModelTensors(h),
        E.fold(
          (e) => pipe(TE.fromTask(() => h.close()), TE.chain(() => TE.left(lift(e)))),
          () => TE.right(h),
        ),
      ),
    ),
  );

const onlineByHandle = new WeakMap<ModelHandle, ReadonlyMap<string, ReadonlyArray<OnlineTransform>>>();

/** The online transforms (SpinQuant R4, QuIP) of an opened model's linears, by full module name; empty when none. */
export const modelOnlineTransforms = (h: ModelHandle): ReadonlyMap<string, ReadonlyArray<OnlineTransform>> => onlineByHandle.get(h) ?? new Map();

/** Reads config.json's `quantization_config.transform_config` (compressed-tensors writes {} when there is none). */
const withTransforms = (dir: string, qc: unknown, open: TE.TaskEither<LlmqError, ModelHandle>): TE.TaskEither<LlmqError, ModelHandle> => {
  const tc = typeof qc === "object" && qc !== null ? (qc as Record<string, unknown>).transform_config : undefined;
  if (tc === undefined || tc === null || (typeof tc === "object" && Object.keys(tc).length === 0)) return open;
  const decoded = decodeTransformConfig(tc, "quantization_config.transform_config");
  if (E.isLeft(decoded)) return TE.left(modelError(`${configPath(dir)}: ${formatSchemeError(decoded.left)}`));
  return pipe(
    open,
    TE.chain((h) =>
      pipe(
        onlineTransformsOf(h, decoded.right),
        TE.map((m) => {
          onlineByHandle.set(h, m);
          return h;
        }),
        TE.orElse((e) => pipe(TE.fromTask(() => h.close()), TE.chain(() => TE.left(e)))),
      ),
    ),
  );
};

/** A path naming a GGUF file (not a directory). */
export const isGgufPath = (p: string): Promise<boolean> =>
  p.toLowerCase().endsWith(".gguf")
    ? stat(p).then(
        (s) => s.isFile(),
        () => false,
      )
    : Promise.resolve(false);

/** A GPTQ / AWQ / bitsandbytes / FP8 / HQQ directory, opened through a dequantizing source. */
const openQuantizedDir = (dir: string, raw: Record<string, unknown>, fmt: QuantizedFormat): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    openCheckpoint(dir),
    TE.mapLeft((e) => modelError(formatSerializationError(e))),
    TE.chain((ck) =>
      pipe(
        quantizedSource(ck, fmt),
        TE.chainEitherK((source) => pipe(modelFromSource(dir, raw, source, dir, () => ck.close()), E.mapLeft(lift))),
        TE.orElse((e) => pipe(TE.fromTask(() => ck.close()), TE.chain(() => TE.left(e)))),
      ),
    ),
  );

/** An msModelSlim directory (no quantization_config, a quant_model_description*.json): dequantized weights, W8A8 inputs, C8 cache. */
const openMsModelSlimDir = (dir: string, raw: Record<string, unknown>): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    msModelSlimParts(dir),
    TE.chainEitherK(({ source, inputs, kv }) =>
      pipe(
        modelFromSource(dir, raw, source, dir),
        E.mapLeft(lift),
        E.map((h) => {
          inputSpecsByHandle.set(h, inputs);
          kvCacheByHandle.set(h, kv);
          return h;
        }),
      ),
    ),
  );

const openUnchecked = (dir: string): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    TE.fromTask(() => isGgufPath(dir)),
    TE.chain((gguf) => (gguf ? openGgufFile(dir) : openDirectory(dir))),
  );

const openDirectory = (dir: string): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    readConfigJson(dir),
    TE.mapLeft(lift),
    TE.chain((raw) => withTransforms(dir, raw.quantization_config, openCompressed(dir, raw))),
  );

const openCompressed = (dir: string, raw: Record<string, unknown>): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    TE.right<LlmqError, Record<string, unknown>>(raw),
    TE.chain((raw) => {
      const qc = raw.quantization_config;
      if (qc === undefined || qc === null)
        return pipe(
          TE.fromTask(() => isMsModelSlimDir(dir)),
          TE.chain((ms) => (ms ? openMsModelSlimDir(dir, raw) : pipe(openModel(dir), TE.mapLeft(lift)))),
        );
      // A method a registered (third-party) quantizer reads back.
      const registered = registeredReader(qc);
      if (registered !== null)
        return pipe(
          openRegisteredDir(dir, raw, registered),
          TE.map(({ handle, inputs }) => {
            if (inputs.size > 0) inputSpecsByHandle.set(handle, inputs);
            return handle;
          }),
        );
      // transformers' dispatch first: a method llmq does not read is named as such (compressed-tensors goes on below).
      const method = typeof qc === "object" && "quant_method" in qc ? quantMethodOf(configPath(dir), qc) : E.right("compressed-tensors");
      if (E.isLeft(method)) return TE.left(modelError(formatSerializationError(method.left)));
      if (method.right !== "compressed-tensors") {
        const fmt = quantizedFormatOf(configPath(dir), qc);
        return E.isLeft(fmt) ? TE.left(modelError(formatSerializationError(fmt.left))) : openQuantizedDir(dir, raw, fmt.right);
      }
      // A quantization_config holding only transforms: a dense checkpoint.
      if (typeof qc === "object" && !Object.hasOwn(qc, "config_groups")) return pipe(openModel(dir), TE.mapLeft(lift));
      return pipe(
        TE.fromEither(pipe(decodeQuantizationConfig(qc, "quantization_config"), E.mapLeft((e) => modelError(`${configPath(dir)}: ${formatSchemeError(e)}`)))),
        TE.chain((config) =>
          pipe(
            openCheckpoint(dir),
            TE.mapLeft((e) => modelError(formatSerializationError(e))),
            TE.chain((ck) => compressedHandle(dir, raw, config, ck)),
          ),
        ),
      );
    }),
  );

/** A compressed-tensors model over its opened checkpoint: modules decompressed on read, input and KV specs noted. */
const compressedHandle = (dir: string, raw: Record<string, unknown>, config: QuantizationConfig, ck: Checkpoint): TE.TaskEither<LlmqError, ModelHandle> =>
  pipe(
    compressedSource(dir, ck, config),
    TE.chain((c) => TE.map((kv: ReadonlyMap<string, KvCacheFormat>) => ({ ...c, kv }))(() => kvCacheOf(dir, ck, config, raw))),
    TE.chainEitherK(({ source, inputs, kv }) =>
      pipe(
        modelFromSource(dir, raw, source, dir, () => ck.close()),
        E.mapLeft(lift),
        E.map((h) => {
          inputSpecsByHandle.set(h, inputs);
          kvCacheByHandle.set(h, kv);
          return h;
        }),
      ),
    ),
    TE.orElse((e) => pipe(TE.fromTask(() => ck.close()), TE.chain(() => TE.left(e)))),
  );

/** config.json of a model given as files, parsed as readConfigJson parses it. */
const configOfFiles = (name: string, files: ReadonlyMap<string, Uint8Array>): E.Either<LlmqError, Record<string, unknown>> => {
  const bytes = files.get("config.json");
  if (bytes === undefined) return E.left(modelError(`${name}/config.json: not found (the model config)`));
  try {
    const v = JSON.parse(new TextDecoder().decode(bytes)) as unknown;
    return typeof v === "object" && v !== null && !Array.isArray(v) ? E.right(v as Record<string, unknown>) : E.left(modelError(`${name}/config.json: the top level must be an object`));
  } catch (e) {
    return E.left(modelError(`${name}/config.json: ${(e as Error).message}`));
  }
};

/** The handle over one checkpoint held in memory: dense, or compressed-tensors (other methods are read from directories). */
const handleOfFiles = (name: string, raw: Record<string, unknown>, ck: Checkpoint): TE.TaskEither<LlmqError, ModelHandle> => {
  const qc = raw.quantization_config;
  if (qc === undefined || qc === null || (typeof qc === "object" && !Object.hasOwn(qc, "config_groups"))) {
    const source: WeightSource = { names: () => ck.names, shape: (n) => ck.info(n)?.info.shape, dtype: (n) => storedDType(ck, n), read: (n) => TE.mapLeft(checkpointLift)(ck.read(n)) };
    return TE.fromEither(pipe(modelFromSource(name, raw, source, name), E.mapLeft(lift)));
  }
  const method = (qc as Record<string, unknown>).quant_method;
  if (method !== undefined && method !== "compressed-tensors")
    return TE.left(modelError(`${name}/config.json: quant_method "${String(method)}" is read from a directory only (llmq convert); a model given as files is dense or compressed-tensors`));
  return pipe(
    TE.fromEither(pipe(decodeQuantizationConfig(qc, "quantization_config"), E.mapLeft((e) => modelError(`${name}/config.json: ${formatSchemeError(e)}`)))),
    TE.chain((config) => compressedHandle(name, raw, config, ck)),
  );
};

const checkpointLift = (e: Parameters<typeof formatSerializationError>[0]): ModelError => checkpointError(e.file, e.tensor, formatSerializationError(e));

/**
 * openModelDir for a model given as files (fetched, or File objects picked in a page): config.json and one
 * model.safetensors, dense or compressed-tensors; the tensors are checked as openModelDir checks them. `name` stands
 * for the directory in messages.
 */
export const openModelFiles = (files: ReadonlyMap<string, Uint8Array>, name = "memory"): TE.TaskEither<LlmqError, ModelHandle> => {
  const raw = configOfFiles(name, files);
  if (E.isLeft(raw)) return TE.left(raw.left);
  const weights = files.get(SAFE_WEIGHTS_NAME);
  if (weights === undefined) return TE.left(modelError(`${name}/${SAFE_WEIGHTS_NAME}: not found (a model given as files has one safetensors file)`));
  const ck = memoryCheckpoint(name, weights);
  if (E.isLeft(ck)) return TE.left(modelError(formatSerializationError(ck.left)));
  return pipe(
    withTransforms(name, raw.right.quantization_config, handleOfFiles(name, raw.right, ck.right)),
    TE.chainEitherK((h) => pipe(checkModelTensors(h), E.bimap(lift, () => h))),
  );
};

/**
 * The tokenizer of the first of `dirs` that has a tokenizer.json, or null (such models take token-id datasets).
 */
export const optionalTokenizer = (...dirs: ReadonlyArray<string | undefined>): TE.TaskEither<LlmqError, DatasetTokenizer | null> => async () => {
  for (const d of dirs) {
    if (d === undefined) continue;
    if (await isGgufPath(d)) {
      const files = await pipe(openGguf(d), TE.mapLeft((e) => modelError(formatSerializationError(e))))();
      if (E.isLeft(files)) return files;
      await files.right.close();
      const made = ggufTokenizerFiles(d, files.right.metadata);
      if (E.isLeft(made)) continue;
      const t = tokenizerFromJson(d, made.right["tokenizer.json"]!, made.right["tokenizer_config.json"]);
      if (E.isLeft(t)) return E.left(lift(t.left));
      const tok = t.right;
      return E.right({ encode: (text, o) => tok.encode(text, { bos: o.bos }), bosId: tok.bosId });
    }
    const has = await access(join(d, "tokenizer.json")).then(
      () => true,
      () => false,
    );
    if (!has) continue;
    const t = await loadTokenizer(d)();
    if (E.isLeft(t)) return E.left(lift(t.left));
    const tok = t.right;
    return E.right({ encode: (text, o) => tok.encode(text, { bos: o.bos }), bosId: tok.bosId });
  }
  return E.right(null);
};
