export { type KvCacheError, formatKvCacheError, kvQuantizeFailed, kvScaleMismatch, kvStoreOverflow, unsupportedKvScheme } from "./errors.js";
export { headsMajor, transposeHeads } from "./heads-major.js";
export { ASYMMETRIC_KV_WARNING, type KvCacheScheme, checkKvCacheScheme } from "./kv-cache-scheme.js";
export { type KvCacheState, type ObservedKv, KvCacheModifier, kvCacheSchemeOf, kvTensors } from "./kv-cache-modifier.js";
export { DYNAMIC_KV_ARGS, type KvCacheFormat, type KvCacheShape, type KvQParams, type LayerKvCache, createKvCache, kvBytesPerToken } from "./kv-store.js";
export { type KvScaleNames, kvScaleNames, kvQParamsOf } from "./kv-scales.js";
export {
  type ChannelRange,
  type MsKvQParams,
  emptyChannelRange,
  foldChannelRange,
  msModelSlimKvDequantize,
  msModelSlimKvFakeQuantize,
  msModelSlimKvQuantize,
  msModelSlimKvQParams,
} from "./ms-model-slim-kv.js";
export { MsKvCacheModifier } from "./ms-kv-cache-modifier.js";
