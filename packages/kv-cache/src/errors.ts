// Typed failures of @llmq/kv-cache, turned into one readable sentence by `formatKvCacheError`.

// ----- model -----

export type KvCacheError =
  | { readonly _tag: "UnsupportedKvScheme"; readonly field: string; readonly detail: string }
  | { readonly _tag: "KvScaleMismatch"; readonly tensor: string; readonly detail: string }
  | { readonly _tag: "KvStoreOverflow"; readonly layer: number; readonly capacity: number; readonly requested: number }
  | { readonly _tag: "KvQuantizeFailed"; readonly tensor: string; readonly detail: string };

// ----- constructors -----

export const unsupportedKvScheme = (field: string, detail: string): KvCacheError => ({ _tag: "UnsupportedKvScheme", field, detail });
export const kvScaleMismatch = (tensor: string, detail: string): KvCacheError => ({ _tag: "KvScaleMismatch", tensor, detail });
export const kvStoreOverflow = (layer: number, capacity: number, requested: number): KvCacheError => ({ _tag: "KvStoreOverflow", layer, capacity, requested });
export const kvQuantizeFailed = (tensor: string, detail: string): KvCacheError => ({ _tag: "KvQuantizeFailed", tensor, detail });

// ----- functions -----

export const formatKvCacheError = (e: KvCacheError): string => {
  switch (e._tag) {
    case "UnsupportedKvScheme":
      return `kv_cache_scheme.${e.field}: ${e.detail}`;
    case "KvScaleMismatch":
      return `${e.tensor}: ${e.detail}`;
    case "KvStoreOverflow":
      return `KV cache of layer ${e.layer} holds ${e.capacity} tokens; ${e.requested} were requested (raise the cache's capacity, e.g. --max-tokens / the context length)`;
    case "KvQuantizeFailed":
      return `${e.tensor}: ${e.detail}`;
  }
};
