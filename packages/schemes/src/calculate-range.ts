import * as E from "fp-ts/lib/Either.js";
import { type SchemeError, unsupported } from "./errors.js";
import type { QuantizationArgs } from "./quantization-args.js";

export interface QuantRange {
  readonly qMin: number;
  readonly qMax: number;
}

/**
 * `calculate_range` (compressed-tensors 0.20.0 quantization/utils/helpers.py): int b-bit [-2^(b-1), 2^(b-1)-1];
 * float 8 (e4m3) ±448, 6 (e2m3) ±7.5, 4 (e2m1) ±6.
 */
export const calculateRange = (args: Pick<QuantizationArgs, "type" | "num_bits">): E.Either<SchemeError, QuantRange> => {
  const b = args.num_bits;
  if (args.type === "int") {
    if (!(b >= 1 && b <= 32)) return E.left(unsupported("calculateRange", `int num_bits must be 1..32 for quantization, got ${b}`));
    return E.right({ qMin: -(2 ** (b - 1)), qMax: 2 ** (b - 1) - 1 });
  }
  if (b === 8) return E.right({ qMin: -448, qMax: 448 });
  if (b === 6) return E.right({ qMin: -7.5, qMax: 7.5 });
  if (b === 4) return E.right({ qMin: -6, qMax: 6 });
  return E.left(unsupported("calculateRange", `float quantization supports num_bits 4, 6 and 8, got ${b}`));
};
