// transformers' AUTO_QUANTIZER_MAPPING / AutoHfQuantizer.from_config / register_quantizer for llmq: a config picks
// its quantizer by quant_method ("bitsandbytes" + _4bit/_8bit from load_in_8bit); third-party quantizers register
// under a new name, a taken name is refused.
import * as E from "fp-ts/lib/Either.js";
import { type HfQuantizerError, duplicateRegistration, unknownQuantMethod } from "./errors.js";
import type { HfQuantizationConfig } from "./quantization-config.js";
import type { Quantizer } from "./quantizer.js";
import { Bnb4BitQuantizer, Bnb8BitQuantizer } from "./quantizers/bnb-quantizers.js";
import { DECLARED_QUANTIZERS } from "./quantizers/declared-quantizers.js";
import { EetqQuantizer } from "./quantizers/eetq-quantizer.js";
import { HqqQuantizer } from "./quantizers/hqq-quantizer.js";
import { FbgemmFp8Quantizer } from "./quantizers/fbgemm-fp8-quantizer.js";
import { TorchAoQuantizer } from "./quantizers/torchao-quantizer.js";

const quantizers = new Map<string, Quantizer>([Bnb4BitQuantizer, Bnb8BitQuantizer, HqqQuantizer, EetqQuantizer, TorchAoQuantizer, FbgemmFp8Quantizer, ...DECLARED_QUANTIZERS].map((q) => [q.name, q]));

/** register_quantizer(name): a name already taken is refused. */
export const registerQuantizer = (name: string, q: Quantizer): E.Either<HfQuantizerError, void> => {
  if (quantizers.has(name)) return E.left(duplicateRegistration("quantizer", name));
  quantizers.set(name, q);
  return E.right(undefined);
};

export const quantizerNames = (): ReadonlyArray<string> => [...quantizers.keys()];

/** AutoHfQuantizer.from_config's key: bitsandbytes splits by load_in_8bit. */
export const quantizerNameOf = (c: HfQuantizationConfig): string =>
  c.quantMethod === "bitsandbytes" ? (c.dict.load_in_8bit === true ? "bitsandbytes_8bit" : "bitsandbytes_4bit") : c.quantMethod;

/** AutoHfQuantizer.from_config(config). */
export const autoQuantizer = (c: HfQuantizationConfig): E.Either<HfQuantizerError, Quantizer> => {
  const name = quantizerNameOf(c);
  const q = quantizers.get(name);
  if (q !== undefined) return E.right(q);
  const known = quantizerNames();
  return E.left(unknownQuantMethod(name, known, `llmq has no quantizer for ${name} - llmq quantizes: [${known.map((k) => `'${k}'`).join(", ")}]`));
};
