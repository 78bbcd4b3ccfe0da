import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { convertCommand, formatConvert } from "./convert-command.js";
import { type LlmqError, exitCodeOf, formatLlmqError, internal } from "./errors.js";
import { evalCommand, formatEval } from "./eval-command.js";
import { formatInspect, inspectCommand } from "./inspect-command.js";
import { type ProgressSink, noProgress, stderrProgress } from "./progress.js";
import { formatQuantize, quantizeCommand } from "./quantize-command.js";

// The only place that subscribes, throws to the user or calls process.exit: every library result arrives as an
// Either and is folded here into one message and an exit code (0 ok, 1 usage/input error, 2 internal error).

const int = (name: string, min = 0) => (v: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer ≥ ${min}, got "${v}"`);
  return n;
};

/** Repeatable flag that also takes comma lists: `--ignore a --ignore b,c`. */
const list = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), ...v.split(",").map((s) => s.trim()).filter(Boolean)];

let aborter: AbortController | null = null;

/**
 * Runs one command: progress on stderr (bars on a terminal, periodic lines otherwise) unless `quiet`, the result on
 * stdout (JSON with `json`), a Left as one `llmq:` line and exit code 1 (input) or 2 (internal).
 */
const run = async <A>(
  o: { readonly json?: boolean; readonly quiet?: boolean },
  work: (signal: AbortSignal, progress: ProgressSink) => TE.TaskEither<LlmqError, A>,
  human: (a: A) => string,
): Promise<void> => {
  aborter = new AbortController();
  const p = o.quiet === true ? { sink: noProgress, stop: () => undefined } : stderrProgress();
  let result: E.Either<LlmqError, A>;
  try {
    result = await work(aborter.signal, p.sink)();
  } catch (e) {
    result = E.left(internal((e as Error)?.stack ?? String(e)));
  } finally {
    p.stop();
  }
  if (E.isLeft(result)) {
    process.stderr.write(`llmq: ${formatLlmqError(result.left)}\n`);
    process.exitCode = exitCodeOf(result.left);
    return;
  }
  process.stdout.write(o.json === true ? `${JSON.stringify(result.right)}\n` : `${human(result.right)}\n`);
  process.exitCode = 0;
};

/** `llmq quantize`: its options and action. */
const addQuantizeCommand = (program: Command): void => {
  program
    .command("quantize")
    .description("quantize a model directory into a compressed-tensors checkpoint (oneshot: calibrate layer by layer, quantize, save)")
    .requiredOption("--model <dir>", "Hugging Face model directory (config.json + safetensors)")
    .requiredOption("--output <dir>", "output directory")
    .option("--scheme <name>", "preset scheme (W4A16, W4A16_ASYM, W8A16, W8A8, FP8, FP8_DYNAMIC, NVFP4A16, MXFP4A16, …)")
    .option("--method <method>", "rtn | gptq", "rtn")
    .option("--recipe <file>", "llm-compressor recipe YAML (overrides --scheme/--method)")
    .option("--dataset <file>", "calibration data: .txt, .jsonl (text field) or .json (array of token-id arrays)")
    .option("--num-samples <n>", "calibration samples", int("--num-samples", 1), 64)
    .option("--seq-len <n>", "tokens per calibration sample", int("--seq-len", 2), 512)
    .option("--ignore <modules>", "modules left unquantized (repeat or comma list)", list)
    .option("--targets <targets>", "modules to quantize: class names, exact names or re:regex (repeat or comma list)", list)
    .option("--seed <n>", "seed for calibration sampling", int("--seed"), 42)
    .addOption(
      new Option("--pipeline <name>", "llm-compressor's calibration pipeline: each data-needing modifier its own pass, all in one, or none")
        .choices(["independent", "sequential", "datafree"])
        .default("independent"),
    )
    .option("--report <file>", "write an HTML report with per-layer error plots")
    .option("--overwrite", "replace a non-empty output directory")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (o) => {
      await run(o, (signal, progress) =>
        quantizeCommand({
              model: o.model,
              output: o.output,
              scheme: o.scheme,
              method: o.method,
              recipe: o.recipe,
              dataset: o.dataset,
              numSamples: o.numSamples,
              seqLen: o.seqLen,
              ignore: o.ignore,
              targets: o.targets,
              seed: o.seed,
              pipeline: o.pipeline,
              report: o.report,
              overwrite: o.overwrite === true,
              signal,
              progress,
            }),
        formatQuantize,
      );
    });
};

export const buildCli = (): Command => {
  const program = new Command("llmq")
    .description("Calibrate and quantize LLMs in TypeScript; writes compressed-tensors checkpoints for vLLM / transformers.")
    .version("0.0.0")
    .showHelpAfterError("(run with --help for usage)")
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride();

  program
    .command("convert")
    .description("convert a llama2.c checkpoint (+ its tokenizer.bin) into a Hugging Face Llama directory (safetensors)")
    .addOption(new Option("--from <format>", "source format").choices(["llama2c"]).makeOptionMandatory())
    .argument("<model>", "the source checkpoint, e.g. stories260K.bin")
    .option("--tokenizer <file>", "llama2.c tokenizer.bin to convert into tokenizer.json")
    .requiredOption("--output <dir>", "output directory")
    .option("--overwrite", "replace a non-empty output directory")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (model: string, o) => {
      await run({ json: o.json === true, quiet: true }, () => convertCommand({ from: o.from, model, tokenizer: o.tokenizer, output: o.output, overwrite: o.overwrite === true }), formatConvert);
    });

  addQuantizeCommand(program);

  program
    .command("eval")
    .description("perplexity on a dataset; with --reference also KL divergence (reference ‖ model) and top-1 agreement")
    .requiredOption("--model <dir>", "model directory (quantized or not)")
    .option("--reference <dir>", "reference (unquantized) model directory")
    .requiredOption("--dataset <file>", "evaluation data: .txt, .jsonl or .json (array of token-id arrays)")
    .option("--seq-len <n>", "tokens per window", int("--seq-len", 2), 512)
    .option("--num-samples <n>", "evaluate only the first N windows", int("--num-samples", 1))
    .option("--score-second-half", "score only the second half of each window (llama.cpp protocol)")
    .option("--report <file>", "write an HTML report with the KL-divergence distribution")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (o) => {
      await run(o, (signal, progress) =>
        evalCommand({
              model: o.model,
              reference: o.reference,
              dataset: o.dataset,
              seqLen: o.seqLen,
              numSamples: o.numSamples,
              scoreSecondHalf: o.scoreSecondHalf === true,
              report: o.report,
              signal,
              progress,
            }),
        formatEval,
      );
    });

  program
    .command("inspect")
    .description("show a checkpoint's scheme, format, tensors (dtype, shape, bytes) and size")
    .argument("<dir>", "model directory")
    .option("--json", "print the result as JSON on stdout")
    .action(async (dir: string, o) => {
      await run({ json: o.json === true, quiet: true }, () => inspectCommand(dir), formatInspect);
    });

  return program;
};

const main = async (): Promise<void> => {
  const program = buildCli();
  const onSignal = (): void => {
    if (aborter && !aborter.signal.aborted) {
      process.stderr.write("\nllmq: interrupted, cleaning up (no partial output is left)…\n");
      aborter.abort(new Error("interrupted (Ctrl-C)"));
    } else process.exit(130);
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version exit 0; usage errors exit 1 (commander already printed the message).
      process.exitCode = e.exitCode === 0 ? 0 : 1;
      return;
    }
    process.stderr.write(`llmq: internal error: ${(e as Error)?.stack ?? String(e)}\n`);
    process.exitCode = 2;
  }
};

void main();
