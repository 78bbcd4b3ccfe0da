import type { MsQuantConfig } from "@llmq/schemes";
import { MsRangeParamModifier, type Modifier, msAutoDisableNames, msRangeParam } from "@llmq/observers";
import { nodeBuiltin } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import type { Dataset } from "./dataset.js";
import type { LlmqError } from "./errors.js";
import { msIgnore } from "./ms-model-slim-recipe.js";
import { oneshot } from "./oneshot.js";
const { rm } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");

// msModelSlim's Calibrator `disable_level` "L<n>" (quant_tools.rollback_names_process): before anything is quantized,
// the float model runs the first 5 calibration samples with every linear's input observed; each linear's range_param
// (@llmq/observers' msRangeParam) ranks it, and the n highest that are not already rolled back (disable_names and the
// last linear) are added to the rollback names, i.e. kept float. llmq runs that feature pass as a oneshot of one
// observing modifier into a scratch directory, so the same pipeline produces the same linear inputs as the real run.

/** msModelSlim's get_features pass sees calib_data[:5]. */
export const MS_FEATURE_SAMPLES = 5;

export interface MsAutoDisable {
  /** The linears rolled back by disable_level, highest range_param first. */
  readonly names: ReadonlyArray<string>;
  /** Every observed linear's range_param, in forward order. */
  readonly rangeParams: ReadonlyMap<string, number>;
}

/** The level's n ("L3" → 3). */
export const msDisableLevel = (c: MsQuantConfig): number => Number(c.disable_level.slice(1));

/** The auto-disabled linears of `c` on `model` (scratch output at `scratch`, removed afterwards). */
export const msAutoDisable =
  (c: MsQuantConfig, model: string, dataset: Dataset, scratch: string): TE.TaskEither<LlmqError, MsAutoDisable> =>
  async () => {
    const rangeParams = new Map<string, number>();
    const observe = MsRangeParamModifier((name, s) => rangeParams.set(name, msRangeParam(s)));
    const first = { ...dataset, windows: dataset.windows.slice(0, MS_FEATURE_SAMPLES) };
    const tokens = first.windows.reduce((n, w) => n + w.length, 0);
    try {
      const r = await oneshot({ model, output: scratch, modifiers: [observe as Modifier], dataset: { ...first, tokens } })();
      if (E.isLeft(r)) return r;
      return E.right({ names: msAutoDisableNames(rangeParams, msDisableLevel(c), msIgnore(c)), rangeParams });
    } finally {
      await rm(scratch, { recursive: true, force: true });
    }
  };
