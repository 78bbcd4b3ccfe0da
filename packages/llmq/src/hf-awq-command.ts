// `llmq quantize --hf-config '{"quant_method": "awq", …}'`: AwqConfig run by llmq's AWQ (the AWQModifier of
// @llmq/transforms — llm-compressor 0.14's: AutoAWQ's per-block scale search with duo scaling over 20 grid points,
// here with AutoAWQ's float32 grid loss, without AutoAWQ's clipping search — followed by 4-bit asymmetric group quantization) on a float16 copy of the
// model, then the codes repacked unchanged into AutoAWQ's WQLinear_GEMM or WQLinear_GEMV layout with config.json's
// quantization_config = AwqConfig.to_dict().
import { type HfQuantizationConfig, awqModule, awqPackable, pyEqual, pyNumber, shouldConvertModule, toDict, unsignedLinear } from "@llmq/hf-quantizers";
import type { PyJson } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, usageError } from "./errors.js";
import { type CalibratedResult, type CalibratedRun, blockTarget, calibratedRun, calibrationDataset, repackCompressed, strings, writeTexts } from "./hf-calibrated-run.js";

export interface AwqPlan {
  readonly version: "gemm" | "gemv";
  readonly groupSize: number;
  /** Block linears quantized (one subset: AWQ calibrates a block at once). */
  readonly subsets: ReadonlyArray<ReadonlyArray<string>>;
  readonly warnings: ReadonlyArray<string>;
}

const configError = (detail: string, hint: string): LlmqError => usageError("--hf-config", detail, hint);

/** GPTQConfig fields AwqConfig inherits that AWQ does not use, with AwqConfig's defaults (a change is a warning). */
const GPTQ_ONLY: ReadonlyArray<readonly [string, PyJson]> = [
  ["damp_percent", 0.1],
  ["desc_act", false],
  ["act_group_aware", true],
  ["sym", true],
  ["true_sequential", true],
  ["batch_size", 1],
  ["cache_block_outputs", true],
  ["block_name_to_quantize", null],
  ["module_name_preceding_first_block", null],
  ["modules_in_block_to_quantize", null],
  ["pad_token_id", null],
  ["max_input_length", null],
  ["meta", null],
  ["tokenizer", null],
];

/**
 * The block linears modules_to_not_convert leaves to quantize. The checkpoint must mean the same to its two loaders:
 * transformers 5.24 skips a module when a pattern matches its full name from the start up to a module boundary (as a
 * regex) or is a suffix (should_convert_module); vLLM and AutoAWQ when a pattern is a substring. A pattern the two
 * read differently (e.g. "mlp", which transformers matches nowhere) is refused, as is one that keeps different
 * linears in different blocks (llmq's AWQ quantizes the same linears in every block).
 */
const awqKept = (skip: ReadonlyArray<string>, blockPrefix: string, blockLinears: ReadonlyArray<string>, names: ReadonlyArray<string>): E.Either<LlmqError, ReadonlyArray<string>> => {
  const inBlocks = names.filter((n) => n.startsWith(`${blockPrefix}.`));
  const split = inBlocks.find((n) => shouldConvertModule(n, skip) === skip.some((s) => n.includes(s)));
  if (split !== undefined)
    return E.left(
      configError(
        `AwqConfig.modules_to_not_convert ${JSON.stringify(skip)}: transformers 5.24 (prefix, regex or suffix of the full name) ${shouldConvertModule(split, skip) ? "quantizes" : "skips"} ${split}, vLLM and AutoAWQ (substring) do the opposite, so the checkpoint would load differently`,
        'name the modules by a suffix both read alike, e.g. ["mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]',
      ),
    );
  const kept = blockLinears.filter((rel) => inBlocks.some((n) => n.endsWith(`.${rel}`) && shouldConvertModule(n, skip)));
  const ragged = inBlocks.find((n) => kept.some((rel) => n.endsWith(`.${rel}`)) !== shouldConvertModule(n, skip));
  return ragged === undefined
    ? E.right(kept)
    : E.left(configError(`AwqConfig.modules_to_not_convert ${JSON.stringify(skip)} keeps ${ragged} out in some blocks only: llmq's AWQ quantizes the same linears in every block`, "name linears by their suffix (e.g. mlp.down_proj)"));
};

/** AwqConfig (its to_dict) as what llmq runs: 4-bit, zero point, whole groups, GEMM or GEMV. */
export const awqPlan = (c: HfQuantizationConfig, blockPrefix: string, blockLinears: ReadonlyArray<string>, names: ReadonlyArray<string>): E.Either<LlmqError, AwqPlan> => {
  const d = c.dict;
  if (!pyEqual(d.bits as PyJson, 4)) return E.left(configError(`AwqConfig.bits ${JSON.stringify(d.bits)}: AutoAWQ's GEMM / GEMV kernels are 4-bit only`, "use bits 4"));
  if (d.zero_point !== true) return E.left(configError("AwqConfig.zero_point = false: AutoAWQ's WQLinear_GEMM / GEMV.from_linear need zero points (its symmetric path has no packed form)", "use zero_point true"));
  const fmt = d.version ?? d.format;
  if (fmt !== "gemm" && fmt !== "gemv") return E.left(configError(`AwqConfig.version ${JSON.stringify(fmt)} is not written by llmq`, 'use "gemm" or "gemv"'));
  const gs = pyNumber(d.group_size as PyJson);
  if (!(gs > 0)) return E.left(configError(`AwqConfig.group_size ${gs}: AutoAWQ quantizes whole groups`, "give a positive group_size (128, 64, 32)"));
  const skip = d.modules_to_not_convert === null || d.modules_to_not_convert === undefined ? [] : strings(d.modules_to_not_convert as PyJson);
  if (skip === null) return E.left(configError("AwqConfig.modules_to_not_convert must be a list of module names", 'e.g. ["mlp.down_proj"]'));
  const keptE = awqKept(skip, blockPrefix, blockLinears, names);
  if (E.isLeft(keptE)) return keptE;
  const kept = keptE.right;
  if (kept.length === 0) return E.left(configError("AwqConfig.modules_to_not_convert leaves no linear of a block to quantize", "list fewer modules"));
  const unused = GPTQ_ONLY.filter(([k, v]) => k in d && !pyEqual(d[k] as PyJson, v)).map(([k]) => k);
  return E.right({
    version: fmt,
    groupSize: gs,
    subsets: [kept],
    warnings: [
      ...c.ignored.map((k) => `AwqConfig ignores ${JSON.stringify(k)} (transformers drops it too)`),
      ...(unused.length > 0 ? [`AwqConfig.${unused.join(", ")}: GPTQ fields AWQ does not use (no effect)`] : []),
      ...(d.backend !== "auto" ? [`AwqConfig.backend ${JSON.stringify(d.backend)} only picks a kernel when the checkpoint is loaded (saved as given)`] : []),
    ],
  });
};

/** AWQModifier (LC defaults: default mappings, duo scaling, 20 grid points), then W4 asymmetric groups on the kept linears. */
export const awqModifiers = (p: AwqPlan, blockPrefix: string): ReadonlyArray<{ readonly type: string } & Readonly<Record<string, unknown>>> => [
  { type: "AWQModifier", duo_scaling: true, n_grid: 20 },
  {
    type: "QuantizationModifier",
    ignore: [],
    config_groups: {
      group_0: {
        targets: [blockTarget(blockPrefix, p.subsets[0]!)],
        weights: { num_bits: 4, type: "int", symmetric: false, strategy: "group", group_size: p.groupSize },
      },
    },
  },
];

/** AwqConfig through llmq's AWQ into AutoAWQ's layout (see the file comment). */
export const runAwqConfig = (c: HfQuantizationConfig, run: CalibratedRun): Promise<E.Either<LlmqError, CalibratedResult>> =>
  calibratedRun<AwqPlan>(run, {
    plan: (blockPrefix, blockLinears, names) => awqPlan(c, blockPrefix, blockLinears, names),
    packable: (p, inF, outF) => awqPackable(p.version, inF, outF, p.groupSize),
    modifiers: awqModifiers,
    // AutoAWQ sums the squares in float32: llm-compressor's float16 sums overflow on real models (SmolLM2's layer 23)
    modifierOptions: { awqLoss: "autoawq" },
    dataset: (given) => calibrationDataset("AwqConfig", c.dict, given),
    writeTexts,
    inTurn: () => false,
    seqLen: () => (c.dict.model_seqlen === null || c.dict.model_seqlen === undefined ? null : pyNumber(c.dict.model_seqlen)),
    repack: async (ctDir, p, quantized) =>
      E.map((tensors: Map<string, Tensor>) => ({ tensors, warnings: [] as ReadonlyArray<string> }))(
        await repackCompressed(ctDir, quantized, (mod, parts) => {
          const u = unsignedLinear(parts, 4, p.groupSize);
          return E.isLeft(u) ? E.left(`${mod} ${u.left}`) : E.mapLeft((e: string) => `${mod}: ${e}`)(awqModule(u.right, p.version, p.groupSize));
        }),
      ),
    quantizationConfig: () => toDict(c),
  });
