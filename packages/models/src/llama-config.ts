import * as E from "fp-ts/lib/Either.js";
import { type ModelError, invalidConfig, unsupportedArchitecture } from "./errors.js";

// ----- model -----

/** Rope scaling as transformers understands it for the Llama family (`rope_type` "llama3" or "linear"). */
export type RopeScaling =
  | {
      readonly rope_type: "llama3";
      readonly factor: number;
      readonly low_freq_factor: number;
      readonly high_freq_factor: number;
      readonly original_max_position_embeddings: number;
    }
  | { readonly rope_type: "linear"; readonly factor: number };

/**
 * The HF config.json of a Llama-family model, snake_case as on disk. Values that transformers derives or defaults
 * (head_dim, num_key_value_heads, rope_theta from the v5 `rope_parameters`) are filled in.
 */
export interface LlamaConfig {
  readonly model_type: string;
  readonly architectures: ReadonlyArray<string>;
  readonly hidden_size: number;
  readonly intermediate_size: number;
  readonly num_hidden_layers: number;
  readonly num_attention_heads: number;
  readonly num_key_value_heads: number;
  readonly head_dim: number;
  readonly vocab_size: number;
  readonly rms_norm_eps: number;
  readonly rope_theta: number;
  readonly rope_scaling: RopeScaling | null;
  readonly max_position_embeddings: number;
  readonly tie_word_embeddings: boolean;
  /** Llama: biases on q/k/v/o; Qwen2 always has q/k/v biases (reported as true). Biases are used when present. */
  readonly attention_bias: boolean;
  readonly mlp_bias: boolean;
  readonly hidden_act: string;
  readonly bos_token_id: number | ReadonlyArray<number> | null;
  readonly eos_token_id: number | ReadonlyArray<number> | null;
  readonly torch_dtype: string;
  /** Mistral-style sliding-window attention (keys older than `sliding_window` positions are masked); null = full. */
  readonly sliding_window: number | null;
}

export const SUPPORTED_MODEL_TYPES: ReadonlyArray<string> = ["llama", "mistral", "qwen2"];
export const SUPPORTED_ARCHITECTURES: ReadonlyArray<string> = ["LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM"];

// ----- decoding -----

type Raw = Record<string, unknown>;

const isRecord = (v: unknown): v is Raw => typeof v === "object" && v !== null && !Array.isArray(v);

const field =
  (path: string, raw: Raw) =>
  <A>(key: string, check: (v: unknown) => v is A, expected: string, dflt?: A): E.Either<ModelError, A> => {
    const v = raw[key];
    if (v === undefined || (v === null && dflt !== undefined)) {
      return dflt !== undefined ? E.right(dflt) : E.left(invalidConfig(path, key, `is required (${expected})`));
    }
    return check(v) ? E.right(v) : E.left(invalidConfig(path, key, `must be ${expected}, got ${JSON.stringify(v)}`));
  };

const isPosInt = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v > 0;
const isPosNum = (v: unknown): v is number => typeof v === "number" && Number.isFinite(v) && v > 0;
const isBool = (v: unknown): v is boolean => typeof v === "boolean";
const isStr = (v: unknown): v is string => typeof v === "string";
const isTokenId = (v: unknown): v is number | ReadonlyArray<number> | null =>
  v === null || (typeof v === "number" && Number.isSafeInteger(v)) || (Array.isArray(v) && v.every((x) => Number.isSafeInteger(x)));

const decodeRope = (path: string, raw: Raw): E.Either<ModelError, { theta: number; scaling: RopeScaling | null }> => {
  // transformers 5 writes `rope_parameters` (with rope_theta inside); 4.x writes `rope_theta` + `rope_scaling`.
  const params = raw.rope_parameters;
  const scalingKey = isRecord(params) ? "rope_parameters" : "rope_scaling";
  const scaling = isRecord(params) ? params : raw.rope_scaling;
  const thetaRaw = isRecord(params) && params.rope_theta !== undefined ? params.rope_theta : (raw.rope_theta ?? 10000);
  if (!isPosNum(thetaRaw)) return E.left(invalidConfig(path, "rope_theta", `must be a positive number, got ${JSON.stringify(thetaRaw)}`));
  if (scaling === null || scaling === undefined) return E.right({ theta: thetaRaw, scaling: null });
  if (!isRecord(scaling)) return E.left(invalidConfig(path, scalingKey, "must be an object or null"));
  const type = scaling.rope_type ?? scaling.type ?? "default";
  const num = (k: string): E.Either<ModelError, number> =>
    isPosNum(scaling[k]) ? E.right(scaling[k]) : E.left(invalidConfig(path, `${scalingKey}.${k}`, `must be a positive number, got ${JSON.stringify(scaling[k])}`));
  switch (type) {
    case "default":
      return E.right({ theta: thetaRaw, scaling: null });
    case "linear":
      return E.map((factor: number) => ({ theta: thetaRaw, scaling: { rope_type: "linear" as const, factor } }))(num("factor"));
    case "llama3": {
      const orig = scaling.original_max_position_embeddings ?? raw.max_position_embeddings;
      if (!isPosInt(orig))
        return E.left(invalidConfig(path, `${scalingKey}.original_max_position_embeddings`, `must be a positive integer, got ${JSON.stringify(orig)}`));
      for (const k of ["factor", "low_freq_factor", "high_freq_factor"]) {
        const r = num(k);
        if (E.isLeft(r)) return r;
      }
      const low = scaling.low_freq_factor as number;
      const high = scaling.high_freq_factor as number;
      if (!(high > low)) return E.left(invalidConfig(path, `${scalingKey}.high_freq_factor`, `must exceed low_freq_factor (${low}), got ${high}`));
      return E.right({
        theta: thetaRaw,
        scaling: { rope_type: "llama3", factor: scaling.factor as number, low_freq_factor: low, high_freq_factor: high, original_max_position_embeddings: orig },
      });
    }
    default:
      return E.left(invalidConfig(path, `${scalingKey}.rope_type`, `${JSON.stringify(type)} is not supported (supported: default, linear, llama3)`));
  }
};

/** Decodes a parsed config.json (`path` is used in messages only). */
export const decodeLlamaConfig = (path: string, raw: unknown): E.Either<ModelError, LlamaConfig> => {
  if (!isRecord(raw)) return E.left(invalidConfig(path, "(root)", "must be a JSON object"));
  const f = field(path, raw);
  const modelType = raw.model_type;
  if (!isStr(modelType) || !SUPPORTED_MODEL_TYPES.includes(modelType)) {
    return E.left(unsupportedArchitecture(path, `model_type ${JSON.stringify(modelType)}`, SUPPORTED_MODEL_TYPES));
  }
  const archs = raw.architectures ?? [];
  if (!Array.isArray(archs) || !archs.every(isStr)) return E.left(invalidConfig(path, "architectures", "must be a list of strings"));
  const badArch = archs.find((a) => !SUPPORTED_ARCHITECTURES.includes(a));
  if (badArch !== undefined) return E.left(unsupportedArchitecture(path, badArch, SUPPORTED_ARCHITECTURES));
  const isQwen2 = modelType === "qwen2";
  const ints: Record<string, number> = {};
  for (const k of ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "vocab_size"]) {
    const r = f(k, isPosInt, "a positive integer");
    if (E.isLeft(r)) return r;
    ints[k] = r.right;
  }
  const hidden = ints.hidden_size!;
  const heads = ints.num_attention_heads!;
  const kvHeads = f("num_key_value_heads", isPosInt, "a positive integer", heads);
  if (E.isLeft(kvHeads)) return kvHeads;
  if (heads % kvHeads.right !== 0)
    return E.left(invalidConfig(path, "num_key_value_heads", `${kvHeads.right} must divide num_attention_heads (${heads})`));
  if (raw.head_dim == null && hidden % heads !== 0)
    return E.left(invalidConfig(path, "num_attention_heads", `${heads} must divide hidden_size (${hidden}) when head_dim is absent`));
  const headDim = f("head_dim", isPosInt, "a positive integer", Math.floor(hidden / heads));
  if (E.isLeft(headDim)) return headDim;
  if (headDim.right % 2 !== 0) return E.left(invalidConfig(path, "head_dim", `must be even for rotary embeddings, got ${headDim.right}`));
  const eps = f("rms_norm_eps", isPosNum, "a positive number", 1e-6);
  const maxPos = f("max_position_embeddings", isPosInt, "a positive integer", 2048);
  const tie = f("tie_word_embeddings", isBool, "a boolean", false);
  const attnBias = f("attention_bias", isBool, "a boolean", isQwen2);
  const mlpBias = f("mlp_bias", isBool, "a boolean", false);
  const act = f("hidden_act", isStr, "a string", "silu");
  const bos = f("bos_token_id", isTokenId, "an integer, a list of integers or null", null);
  const eos = f("eos_token_id", isTokenId, "an integer, a list of integers or null", null);
  const rope = decodeRope(path, raw);
  for (const r of [eps, maxPos, tie, attnBias, mlpBias, act, bos, eos, rope]) if (E.isLeft(r)) return r;
  const get = <A>(r: E.Either<ModelError, A>): A => (r as E.Right<A>).right;
  if (get(act) !== "silu" && get(act) !== "swish")
    return E.left(invalidConfig(path, "hidden_act", `${JSON.stringify(get(act))} is not supported (supported: silu)`));
  const dtype = raw.torch_dtype ?? raw.dtype ?? "float32";
  if (!isStr(dtype)) return E.left(invalidConfig(path, "torch_dtype", `must be a string, got ${JSON.stringify(dtype)}`));
  // Mistral masks beyond the window; Qwen2 only when use_sliding_window is set (then per layer; not supported yet).
  const sw = raw.sliding_window;
  if (sw != null && !isPosInt(sw)) return E.left(invalidConfig(path, "sliding_window", `must be a positive integer or null, got ${JSON.stringify(sw)}`));
  if (isQwen2 && raw.use_sliding_window === true)
    return E.left(invalidConfig(path, "use_sliding_window", "Qwen2 sliding-window attention is not supported (supported: false)"));
  const slidingWindow = modelType === "mistral" && isPosInt(sw) ? sw : null;
  return E.right({
    model_type: modelType,
    architectures: archs as string[],
    hidden_size: hidden,
    intermediate_size: ints.intermediate_size!,
    num_hidden_layers: ints.num_hidden_layers!,
    num_attention_heads: heads,
    num_key_value_heads: kvHeads.right,
    head_dim: headDim.right,
    vocab_size: ints.vocab_size!,
    rms_norm_eps: get(eps),
    rope_theta: get(rope).theta,
    rope_scaling: get(rope).scaling,
    max_position_embeddings: get(maxPos),
    tie_word_embeddings: get(tie),
    attention_bias: get(attnBias),
    mlp_bias: get(mlpBias),
    hidden_act: get(act),
    bos_token_id: get(bos),
    eos_token_id: get(eos),
    torch_dtype: dtype,
    sliding_window: slidingWindow,
  });
};
