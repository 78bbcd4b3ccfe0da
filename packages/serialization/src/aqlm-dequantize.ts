// AQLM (aqlm 1.1.7 `_dequantize_weight`): each (out-group, in-group) tile of the weight is the sum over the codebooks
// of codebook[c][code] (codes stored two's complement in the smallest int type: value mod 2^nbits), times the
// out-group's scale. The sum runs codebook 0 first in f32 (embedding_bag's accumulator type, also for fp16/bf16
// codebooks) and is rounded to the codebooks' dtype once; the scale product rounds once more, as torch computes it on
// the CPU. Bit-exact for float32 and float16 codebooks; torch's bfloat16 embedding_bag (a vectorized CPU path) can
// differ from this f32-accumulated sum by one bf16 ulp.
import * as E from "fp-ts/lib/Either.js";
import { type TorchFloat, roundTo } from "./float-rounding.js";
import type { DenseWeight } from "./gptq-awq-dequantize.js";

export interface AqlmParts {
  /** [outGroups, inGroups, numCodebooks] */
  readonly codes: Int32Array;
  readonly codesShape: ReadonlyArray<number>;
  /** [numCodebooks, codebookSize, outGroupSize, inGroupSize] */
  readonly codebooks: Float32Array;
  readonly codebooksShape: ReadonlyArray<number>;
  /** [outGroups, 1, 1, 1] */
  readonly scales: Float32Array;
  readonly dtype: TorchFloat;
}

const MAX_TILE = 256;

export const dequantizeAqlm = (p: AqlmParts): E.Either<string, DenseWeight> => {
  if (p.codesShape.length !== 3 || p.codebooksShape.length !== 4) return E.left(`codes must be 3-D and codebooks 4-D, got [${p.codesShape.join(", ")}] and [${p.codebooksShape.join(", ")}]`);
  const [og, ig, nc] = [p.codesShape[0]!, p.codesShape[1]!, p.codesShape[2]!];
  const [nc2, size, ogs, igs] = [p.codebooksShape[0]!, p.codebooksShape[1]!, p.codebooksShape[2]!, p.codebooksShape[3]!];
  if (nc !== nc2) return E.left(`codes name ${nc} codebooks, codebooks hold ${nc2}`);
  if (size < 1 || (size & (size - 1)) !== 0) return E.left(`codebook size ${size} is not a power of two`);
  if (p.codes.length !== og * ig * nc || p.codebooks.length !== nc * size * ogs * igs) return E.left("codes or codebooks do not hold their shapes' values");
  if (p.scales.length !== og) return E.left(`scales hold ${p.scales.length} values for ${og} output groups`);
  // AQLM tiles are 1×8 … 2×16; a larger one would let a small file claim a huge weight.
  if (ogs * igs > MAX_TILE) return E.left(`out_group_size·in_group_size ${ogs * igs} is beyond ${MAX_TILE}`);
  const round = roundTo(p.dtype);
  const [n, k] = [og * ogs, ig * igs];
  const y = new Float32Array(n * k);
  const tile = ogs * igs;
  for (let o = 0; o < og; o++)
    for (let i = 0; i < ig; i++)
      for (let t = 0; t < tile; t++) {
        let acc = 0;
        for (let c = 0; c < nc; c++) {
          const code = ((p.codes[(o * ig + i) * nc + c]! % size) + size) % size;
          acc = Math.fround(acc + p.codebooks[(c * size + code) * tile + t]!);
        }
        acc = round(acc);
        const a = Math.floor(t / igs);
        y[(o * ogs + a) * k + i * igs + (t % igs)] = round(acc * p.scales[o]!);
      }
  return E.right({ data: y, shape: [n, k] });
};
