// `llmq quantize --hf-config '{"quant_method": "gptq", …}'`: GPTQConfig run by llmq's own GPTQ (the oneshot pipeline
// with GPTQModifiers, sequential as optimum quantizes block by block; true_sequential = one modifier per subset of
// modules calibrated in turn) on a float16 copy of the model, into a compressed-tensors checkpoint in a hidden
// sibling, whose codes are then repacked unchanged into the AutoGPTQ / GPTQModel layout (checkpoint_format gptq = v1
// with the −1 zero quirk, gptq_v2 = v2) with config.json's quantization_config = GPTQConfig.to_dict().
import { type HfQuantizationConfig, gptqModule, gptqPackable, pyNumber, toDict, unsignedLinear } from "@llmq/hf-quantizers";
import type { Recipe as LcRecipe } from "@llmq/schemes";
import type { PyJson, PyJsonObject } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, usageError } from "./errors.js";
import { type CalibratedResult, type CalibratedRun, blockTarget, calibratedRun, calibrationDataset, repackCompressed, strings, writeTexts } from "./hf-calibrated-run.js";


/** The GPTQConfig keys llmq acts on, read from its to_dict. */
export interface GptqPlan {
  readonly bits: 2 | 3 | 4 | 8;
  readonly groupSize: number;
  readonly damp: number;
  readonly descAct: boolean;
  readonly sym: boolean;
  readonly v1: boolean;
  /** Module names inside a block, one list per subset calibrated in turn (one list when not true_sequential). */
  readonly subsets: ReadonlyArray<ReadonlyArray<string>>;
  readonly warnings: ReadonlyArray<string>;
}

const configError = (detail: string, hint: string): LlmqError => usageError("--hf-config", detail, hint);

/** Keys whose value changes nothing in what llmq writes, with the reason (each one given is a warning). */
const NO_EFFECT: Readonly<Record<string, (v: PyJson) => string | null>> = {
  tokenizer: (v) => (v === null ? null : "GPTQConfig.tokenizer is not loaded: llmq tokenizes calibration text with the model's tokenizer.json"),
  act_group_aware: (v) => (v === true ? "GPTQConfig.act_group_aware (GPTQModel's group-aware reordering) is not run by llmq: columns are quantized in order; the layout does not depend on it" : null),
  batch_size: (v) => (v === 1 ? null : "GPTQConfig.batch_size has no effect in llmq (windows are batched by the pipeline; results do not depend on it)"),
  cache_block_outputs: (v) => (v === true ? null : "GPTQConfig.cache_block_outputs = false has no effect in llmq (block outputs are always propagated)"),
  pad_token_id: (v) => (v === null ? null : "GPTQConfig.pad_token_id has no effect: llmq's calibration windows are not padded"),
  max_input_length: (v) => (v === null ? null : "GPTQConfig.max_input_length only sizes the exllama kernel's buffers at load time"),
  meta: (v) => (v === null ? null : "GPTQConfig.meta is saved as given"),
  module_name_preceding_first_block: (v) => (v === null ? null : "GPTQConfig.module_name_preceding_first_block has no effect: llmq's Llama embeds the windows before model.layers"),
};

/** modules_in_block_to_quantize checked against the block's linears; subsets as optimum forms them. */
const subsetsOf = (d: PyJsonObject, blockLinears: ReadonlyArray<string>): E.Either<LlmqError, ReadonlyArray<ReadonlyArray<string>>> => {
  const m = d.modules_in_block_to_quantize;
  const trueSequential = d.true_sequential === true;
  if (m === null || m === undefined || (Array.isArray(m) && m.length === 0)) return E.right(trueSequential ? blockLinears.map((n) => [n]) : [blockLinears]);
  const lists = Array.isArray(m) ? m.map(strings) : [null];
  if (lists.some((l) => l === null)) return E.left(configError("GPTQConfig.modules_in_block_to_quantize must be a list of lists of module names", 'e.g. [["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"], ["self_attn.o_proj"]]'));
  const unknown = (lists as string[][]).flat().filter((n) => !blockLinears.includes(n));
  if (unknown.length > 0) return E.left(configError(`GPTQConfig.modules_in_block_to_quantize names ${unknown.join(", ")}, not linears of a block (${blockLinears.join(", ")})`, "use names relative to the block"));
  return E.right(trueSequential ? (lists as string[][]) : [(lists as string[][]).flat()]);
};

/** The GPTQConfig (its to_dict) as what llmq runs; every key either acts, warns, or is refused here. */
export const gptqPlan = (c: HfQuantizationConfig, blockPrefix: string, blockLinears: ReadonlyArray<string>): E.Either<LlmqError, GptqPlan> => {
  const d = c.dict;
  const block = d.block_name_to_quantize;
  if (block !== null && block !== undefined && block !== blockPrefix)
    return E.left(configError(`GPTQConfig.block_name_to_quantize is ${JSON.stringify(block)}, but this model's blocks are ${blockPrefix}`, `drop it or give "${blockPrefix}"`));
  const fmt = d.checkpoint_format ?? d.format;
  if (fmt !== "gptq" && fmt !== "gptq_v2") return E.left(configError(`GPTQConfig.format ${JSON.stringify(fmt)} is not written by llmq`, 'use "gptq" (AutoGPTQ v1) or "gptq_v2" (GPTQModel v2)'));
  const subsets = subsetsOf(d, blockLinears);
  if (E.isLeft(subsets)) return subsets;
  const warnings = Object.entries(NO_EFFECT).flatMap(([k, f]) => {
    const w = f(d[k] ?? null);
    return w === null ? [] : [w];
  });
  return E.right({
    bits: pyNumber(d.bits as PyJson) as GptqPlan["bits"],
    groupSize: pyNumber(d.group_size as PyJson),
    damp: pyNumber(d.damp_percent as PyJson),
    descAct: d.desc_act === true,
    sym: d.sym === true,
    v1: fmt === "gptq",
    subsets: subsets.right,
    warnings: [...c.ignored.map((k) => `GPTQConfig ignores ${JSON.stringify(k)} (transformers drops it too)`), ...warnings],
  });
};

/** One GPTQModifier per subset: the config's scheme on `<block>.<i>.<module>` of every block. */
export const gptqModifiers = (p: GptqPlan, blockPrefix: string): ReadonlyArray<{ readonly type: string } & Readonly<Record<string, unknown>>> =>
  p.subsets.map((subset) => ({
    type: "GPTQModifier",
    dampening_frac: p.damp,
    // desc_act over groups is set by actorderGroups below; a single group only changes the processing order
    // (llm-compressor's "weight"); no desc_act = columns in order (LC's own default would be "static").
    actorder: p.descAct && p.groupSize === -1 ? "weight" : null,
    ignore: [],
    config_groups: {
      group_0: {
        targets: [blockTarget(blockPrefix, subset)],
        weights: {
          num_bits: p.bits,
          type: "int",
          symmetric: p.sym,
          strategy: p.groupSize === -1 ? "channel" : "group",
          group_size: p.groupSize === -1 ? null : p.groupSize,
        },
      },
    },
  }));

/**
 * desc_act with groups is AutoGPTQ's act order: groups formed in activation order, g_idx stored. compressed-tensors
 * 0.20 removed that actorder ("group") from its args, so recipes cannot name it; llmq's GPTQ keeps it as an extension
 * (packages/gptq actorder-group.test.ts) and it is set on the decoded modifiers here.
 */
export const actorderGroups = (p: GptqPlan, r: LcRecipe): LcRecipe =>
  p.descAct && p.groupSize !== -1 ? { ...r, modifiers: r.modifiers.map((m) => (m.type === "GPTQModifier" ? { ...m, actorder: "group", actorderDefaulted: false } : m)) } : r;

/** The compressed-tensors checkpoint repacked: quantized linears in GPTQ's layout, the rest as stored (float16). */
export const repackGptq = async (ctDir: string, p: GptqPlan, quantized: ReadonlyArray<string>): Promise<E.Either<LlmqError, { readonly tensors: Map<string, Tensor>; readonly lostZeros: number }>> => {
  let lostZeros = 0;
  const r = await repackCompressed(ctDir, quantized, (mod, parts) => {
    const u = unsignedLinear(parts, p.bits, p.groupSize);
    if (E.isLeft(u)) return E.left(`${mod} ${u.left}`);
    const g = gptqModule(u.right, p.bits, p.v1);
    lostZeros += g.lostZeros;
    return E.right(g.tensors);
  });
  return E.map((tensors: Map<string, Tensor>) => ({ tensors, lostZeros }))(r);
};

/** GPTQConfig through llmq's GPTQ into the GPTQ layout (see the file comment). */
export const runGptqConfig = (c: HfQuantizationConfig, run: CalibratedRun): Promise<E.Either<LlmqError, CalibratedResult>> =>
  calibratedRun<GptqPlan>(run, {
    plan: (blockPrefix, blockLinears) => gptqPlan(c, blockPrefix, blockLinears),
    packable: (p, inF, outF) => gptqPackable(inF, outF, p.bits, p.groupSize),
    modifiers: gptqModifiers,
    patchRecipe: actorderGroups,
    dataset: (given) => calibrationDataset("GPTQConfig", c.dict, given),
    writeTexts,
    inTurn: () => c.dict.true_sequential === true,
    seqLen: () => (c.dict.model_seqlen === null || c.dict.model_seqlen === undefined ? null : pyNumber(c.dict.model_seqlen)),
    repack: async (ctDir, p, quantized) =>
      E.map((x: { readonly tensors: Map<string, Tensor>; readonly lostZeros: number }) => ({
        tensors: x.tensors,
        warnings:
          x.lostZeros > 0
            ? [`checkpoint_format "gptq" (v1) stores zero points minus one, and a zero point of 0 (stored −1) sets the higher fields of its int32 word: ${x.lostZeros} zero point(s) read back as 0 by GPTQModel's convert_gptq_file and llmq (GPTQModel's loader, which adds 0x55…5 to whole words, carries and reads some of them as 1) — "gptq_v2" keeps them`]
            : [],
      }))(await repackGptq(ctDir, p, quantized)),
    quantizationConfig: () => toDict(c),
  });
