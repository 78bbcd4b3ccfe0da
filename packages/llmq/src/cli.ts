import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import * as E from "fp-ts/lib/Either.js";
import type * as TE from "fp-ts/lib/TaskEither.js";
import { abandonStagedDirectoriesSync } from "@llmq/serialization";
import { GGUF_OUTPUT_DTYPES } from "@llmq/models";
import { CONVERT_FORMATS, CONVERT_TARGETS, convertCommand, formatConvert } from "./convert-command.js";
import { type LlmqError, aborted, exitCodeOf, formatLlmqError, internal, usageError } from "./errors.js";
import { evalCommand, formatEval } from "./eval-command.js";
import { KV_CACHE_OVERRIDES } from "./evaluate.js";
import { formatGenerate, generateCommand } from "./generate-command.js";
import { formatInspect, inspectCommand } from "./inspect-command.js";
import { type ProgressSink, noProgress } from "./progress.js";
import { stderrProgress } from "./stderr-progress.js";
import { formatQuantize, quantizeCommand } from "./quantize-command.js";
import { SCHEDULE_NAMES } from "@llmq/train";
import { formatTrain, trainCommand } from "./train-command.js";
import { type HfQuantizeResult, formatHfQuantize, hfQuantizeCommand } from "./hf-quantize-command.js";

// The only place that subscribes, throws to the user or calls process.exit: every library result arrives as an
// Either and is folded here into one message and an exit code (0 ok, 1 usage/input error, 2 internal error, 128 + n
// after signal n).

const int = (name: string, min = 0) => (v: string): number => {
  const n = /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be a whole number ≥ ${min}, got "${v}"`);
  return n;
};

const real = (name: string, min = 0) => (v: string): number => {
  const n = /^\s*\d+(\.\d*)?([eE][-+]?\d+)?\s*$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isFinite(n) || n < min) throw new InvalidArgumentError(`${name} must be a number ≥ ${min}, got "${v}"`);
  return n;
};

/** Repeatable flag that also takes comma lists: `--ignore a --ignore b,c`. */
const list = (v: string, prev: string[] | undefined): string[] => [...(prev ?? []), ...v.split(",").map((s) => s.trim()).filter(Boolean)];

// ----- signals -----
// The first SIGINT / SIGTERM / SIGHUP aborts the work, which cleans up (staging deleted, lock released) and ends with one
// `llmq:` line and 128 + the signal number. A second one exits at once, still removing the staging synchronously.

const SIGNAL_EXIT: Readonly<Record<string, number>> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129 };

let aborter: AbortController | null = null;
let received: NodeJS.Signals | null = null;

// convert and inspect do not watch the abort signal (they are short): a signal ends them at once, staging removed.
let abortable = false;

const onSignal = (sig: NodeJS.Signals): void => {
  if (received === null && abortable && aborter !== null && !aborter.signal.aborted) {
    received = sig;
    process.stderr.write(`\n${sig} received: cleaning up, no partial output is left (${sig === "SIGINT" ? "Ctrl-C" : sig} again quits at once)\n`);
    aborter.abort(new Error(`${sig} received`));
    return;
  }
  abandonStagedDirectoriesSync();
  const first = received ?? sig;
  process.stderr.write(`llmq: ${formatLlmqError(aborted(received === null ? `${sig} received` : `${first}, then ${sig} received`))}\n`);
  process.exit(SIGNAL_EXIT[first] ?? 1);
};

/** An exception that escaped every Either is a bug: its message, the stack only with LLMQ_DEBUG=1. */
const bugDetail = (e: unknown): string => (process.env.LLMQ_DEBUG === "1" ? String((e as Error)?.stack ?? e) : String((e as Error)?.message ?? e));
const bugLine = (e: unknown): string => `llmq: ${formatLlmqError(internal(bugDetail(e)))}\n`;

/**
 * Runs one command: progress on stderr (bars on a terminal, periodic lines otherwise) unless `quiet`, the result on
 * stdout (JSON with `json`), a Left as one `llmq:` line and exit code 1 (input), 2 (internal) or 128 + n after signal n.
 */
const run = async <A>(
  o: { readonly json?: boolean; readonly quiet?: boolean; readonly abortable?: boolean },
  work: (signal: AbortSignal, progress: ProgressSink) => TE.TaskEither<LlmqError, A>,
  human: (a: A) => string,
): Promise<void> => {
  aborter = new AbortController();
  abortable = o.abortable !== false;
  const p = o.quiet === true ? { sink: noProgress, stop: () => undefined } : stderrProgress();
  let result: E.Either<LlmqError, A>;
  try {
    result = await work(aborter.signal, p.sink)();
  } catch (e) {
    result = E.left(internal(bugDetail(e)));
  } finally {
    p.stop();
  }
  if (E.isLeft(result)) {
    const interrupted = received !== null ? aborted(`${received} received`) : result.left;
    process.stderr.write(`llmq: ${formatLlmqError(interrupted)}\n`);
    process.exitCode = received !== null ? (SIGNAL_EXIT[received] ?? 1) : exitCodeOf(result.left);
    return;
  }
  process.stdout.write(o.json === true ? `${JSON.stringify(result.right)}\n` : `${human(result.right)}\n`);
  process.exitCode = 0;
};

/** `llmq eval`: its options and action. */
const addEvalCommand = (program: Command): void => {
  program
    .command("eval")
    .description("perplexity on a dataset; with --reference also KL divergence (reference ‖ model) and top-1 agreement")
    .requiredOption("--model <dir>", "model directory (dense, compressed-tensors, GPTQ, AWQ, bitsandbytes, FP8, HQQ, AQLM) or .gguf file")
    .option("--reference <dir>", "reference (unquantized) model directory or .gguf file")
    .requiredOption("--dataset <file>", "evaluation data: .txt, .jsonl or .json (array of token-id arrays)")
    .option("--seq-len <n>", "tokens per window", int("--seq-len", 2), 512)
    .option("--num-samples <n>", "evaluate only the first N windows", int("--num-samples", 1))
    .option("--score-second-half", "score only the second half of each window (llama.cpp protocol)")
    .addOption(
      new Option("--kv-cache <format>", "run the model's attention through this KV cache instead of its own (default: the checkpoint's k/v scales, if any)").choices(
        KV_CACHE_OVERRIDES,
      ),
    )
    .option("--reference-cache <dir>", "keep the reference's final hidden states in <dir> and reuse them (keyed by its files and the windows)")
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
              kvCache: o.kvCache,
              referenceCache: o.referenceCache,
              report: o.report,
              signal,
              progress,
            }),
        formatEval,
      );
    });
};

/** `llmq train`: quantization-aware training (QuantizationModifier's QAT path) with distillation. */
const addTrainCommand = (program: Command): void => {
  program
    .command("train")
    .description("quantization-aware training: fine-tune the recipe's fake-quantized modules (clipped STE, AdamW) distilled from a teacher; saves a compressed-tensors checkpoint")
    .requiredOption("--model <dir>", "starting model: dense or a compressed-tensors checkpoint (e.g. llmq quantize's GPTQ output, whose qparams QAT keeps)")
    .requiredOption("--recipe <file>", "llm-compressor recipe with one QuantizationModifier (weight-only int scheme; its start / end epochs are honoured)")
    .requiredOption("--dataset <file>", "training data: .txt, .jsonl or .json (array of token-id arrays)")
    .option("--eval-dataset <file>", "held-out data: KL divergence to the teacher after every epoch")
    .option("--teacher <dir>", "the model to distil from (usually the unquantized one)")
    .requiredOption("--output <dir>", "output directory")
    .option("--epochs <n>", "passes over the training windows", int("--epochs", 1), 1)
    .option("--lr <x>", "AdamW learning rate", real("--lr"), 1e-4)
    .option("--batch-size <n>", "windows per optimizer step", int("--batch-size", 1), 4)
    .addOption(new Option("--schedule <name>", "learning-rate schedule after warmup").choices([...SCHEDULE_NAMES]).default("cosine"))
    .option("--warmup <n>", "warmup steps (linear from 0)", int("--warmup", 0), 0)
    .option("--max-grad-norm <x>", "clip the global gradient norm (0 = no clipping)", real("--max-grad-norm"), 1)
    .option("--weight-decay <x>", "AdamW weight decay", real("--weight-decay"), 0)
    .option("--distill-weight <x>", "weight of KL(teacher ‖ model); 1 − it weights the cross-entropy", real("--distill-weight"), 1)
    .option("--seq-len <n>", "tokens per window", int("--seq-len", 2), 256)
    .option("--num-samples <n>", "training windows", int("--num-samples", 1))
    .option("--eval-samples <n>", "held-out windows", int("--eval-samples", 1))
    .option("--seed <n>", "window order seed", int("--seed", 0), 0)
    .option("--state-dir <dir>", "save the training state there after every epoch; rerunning the same command resumes from it")
    .option("--overwrite", "replace a non-empty output directory")
    .option("--report <file>", "write an HTML report with the loss curve")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (o) => {
      await run(o, (signal, progress) => trainCommand({ ...o, teacher: o.teacher, overwrite: o.overwrite === true, signal, progress }), formatTrain);
    });
};

/** `llmq generate`: its options and action. */
const addGenerateCommand = (program: Command): void => {
  program
    .command("generate")
    .description("generate text from a prompt through the KV cache (the checkpoint's calibrated one, or --kv-cache); streams to stdout")
    .requiredOption("--model <dir>", "model directory with tokenizer.json (quantized or not)")
    .requiredOption("--prompt <text>", "prompt text (the tokenizer's BOS is prepended)")
    .option("--max-tokens <n>", "tokens to generate at most", int("--max-tokens", 1), 64)
    .option("--temperature <t>", "0 = greedy; > 0 samples softmax(logits / t)", real("--temperature", 0), 0)
    .option("--top-p <p>", "nucleus sampling: keep the most likely tokens up to this mass", real("--top-p", 0), 1)
    .option("--seed <n>", "sampling seed", int("--seed", 0), 0)
    .addOption(
      new Option("--kv-cache <format>", "KV cache format (default: the checkpoint's k/v scales, else f32); none = recompute every step").choices([...KV_CACHE_OVERRIDES, "none"]),
    )
    .option("--ignore-eos", "keep generating after the end-of-sequence token")
    .option("--json", "print the result as JSON on stdout (no streaming)")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (o) => {
      await run(o, (signal, progress) =>
        generateCommand({
          model: o.model,
          prompt: o.prompt,
          maxTokens: o.maxTokens,
          temperature: o.temperature,
          topP: o.topP,
          seed: o.seed,
          kvCache: o.kvCache,
          ignoreEos: o.ignoreEos === true,
          signal,
          progress,
          ...(o.json === true ? {} : { onText: (piece: string) => void process.stdout.write(piece) }),
        }),
        formatGenerate,
      );
    });
};

/** Options of `llmq quantize` that belong to the compressed-tensors path, not to --hf-config. */
const ONESHOT_ONLY = ["scheme", "method", "recipe", "ignore", "targets", "pipeline", "report", "maxMemory", "spillDir"];
/** Calibration options: used by --hf-config's calibrated methods (GPTQConfig, AwqConfig), refused by the data-free ones. */
const CALIBRATION = ["dataset", "numSamples", "seqLen", "seed"];
const kebab = (k: string): string => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

/** `llmq quantize --hf-config`: every option it would not use is refused before any work. */
const hfQuantizeFromCli =
  (o: Record<string, unknown>, cmd: Command, signal: AbortSignal, progress: ProgressSink): TE.TaskEither<LlmqError, HfQuantizeResult> =>
  async () => {
    if (o.hfConfig === undefined) return E.left(usageError("--dtype", "only applies with --hf-config", "drop --dtype or add --hf-config"));
    const clash = ONESHOT_ONLY.find((k) => cmd.getOptionValueSource(k) === "cli");
    if (clash !== undefined)
      return E.left(usageError(`--${kebab(clash)}`, "does not apply with --hf-config (the quantization_config says everything)", `drop --${kebab(clash)}`));
    return hfQuantizeCommand({
      model: o.model as string,
      output: o.output as string,
      hfConfig: o.hfConfig as string,
      dtype: o.dtype as HfQuantizeResult["dtype"] | undefined,
      overwrite: o.overwrite === true,
      calibration: {
        dataset: o.dataset as string | undefined,
        numSamples: o.numSamples as number,
        seqLen: o.seqLen as number,
        seed: o.seed as number,
        given: CALIBRATION.filter((k) => cmd.getOptionValueSource(k) === "cli").map((k) => `--${kebab(k)}`),
      },
      signal,
      progress,
    })();
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
    .option("--msmodelslim-config <file>", "msModelSlim QuantConfig (JSON or YAML): written in msModelSlim's safe_tensor layout")
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
    .option("--max-memory <size>", 'calibration activations kept in memory ("2GB"); the windows beyond it spill to a temporary file')
    .option("--spill-dir <dir>", "where --max-memory's spill file goes (default: the OS temp directory)")
    .option("--hf-config <json|file>", "a transformers quantization_config dict (BitsAndBytesConfig, HqqConfig, EetqConfig, TorchAoConfig int8 / int4, FbgemmFp8Config, or GPTQConfig / AwqConfig with --dataset): quantize (on load, or with llmq's GPTQ / AWQ) and save in the method's layout")
    .addOption(new Option("--dtype <dtype>", "load dtype with --hf-config (transformers' dtype=); default: the model's (GPTQConfig / AwqConfig: float16)").choices(["float32", "float16", "bfloat16"]))
    .option("--overwrite", "replace a non-empty output directory")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (o, cmd: Command) => {
      if (o.hfConfig !== undefined || o.dtype !== undefined) {
        await run(o, (signal, progress) => hfQuantizeFromCli(o, cmd, signal, progress), formatHfQuantize);
        return;
      }
      await run(o, (signal, progress) =>
        quantizeCommand({
              model: o.model,
              output: o.output,
              scheme: o.scheme,
              method: o.method,
              recipe: o.recipe,
              msmodelslimConfig: o.msmodelslimConfig,
              dataset: o.dataset,
              numSamples: o.numSamples,
              seqLen: o.seqLen,
              ignore: o.ignore,
              targets: o.targets,
              seed: o.seed,
              pipeline: o.pipeline,
              report: o.report,
              maxMemory: o.maxMemory,
              spillDir: o.spillDir,
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
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
    .exitOverride();

  program
    .command("convert")
    .description("convert a llama2.c checkpoint (+ its tokenizer.bin), a llama.cpp GGUF file or a GPTQ / AWQ / bitsandbytes / FP8 / HQQ / AQLM directory into a dense Hugging Face Llama directory (safetensors)")
    .addOption(new Option("--from <format>", "source format").choices([...CONVERT_FORMATS]).makeOptionMandatory())
    .argument("<model>", "the source: stories260K.bin, SmolLM2-135M-Instruct.Q4_1.gguf, or a GPTQ / AWQ / bitsandbytes / FP8 / HQQ / AQLM model directory")
    .option("--tokenizer <file>", "llama2.c tokenizer.bin to convert into tokenizer.json (llama2c only)")
    .addOption(new Option("--dtype <dtype>", "dtype of the written tensors").choices([...GGUF_OUTPUT_DTYPES]).default("f32"))
    .addOption(new Option("--to <format>", "what to write: a dense HF directory, a compressed-tensors checkpoint (from msmodelslim), or msModelSlim's layout (from compressed-tensors)").choices([...CONVERT_TARGETS]).default("hf"))
    .requiredOption("--output <dir>", "output directory")
    .option("--overwrite", "replace a non-empty output directory")
    .option("--json", "print the result as JSON on stdout")
    .option("-q, --quiet", "no progress on stderr")
    .action(async (model: string, o) => {
      await run({ json: o.json === true, quiet: true, abortable: false }, () => convertCommand({ from: o.from, model, tokenizer: o.tokenizer, output: o.output, overwrite: o.overwrite === true, dtype: o.dtype, to: o.to }), formatConvert);
    });

  addQuantizeCommand(program);

  addEvalCommand(program);
  addGenerateCommand(program);
  addTrainCommand(program);

  program
    .command("inspect")
    .description("show a checkpoint's scheme, format, tensors (dtype, shape, bytes) and size (a model directory or a GGUF file)")
    .argument("<dir>", "model directory or .gguf file")
    .option("--json", "print the result as JSON on stdout")
    .action(async (dir: string, o) => {
      await run({ json: o.json === true, quiet: true, abortable: false }, () => inspectCommand(dir), formatInspect);
    });

  return program;
};

/** Commander's own messages (usage errors) in the shape of every other message. */
const usageLine = (text: string, command: string): string => {
  const why = text.replace(/^error:\s*/, "").trim().split("\n")[0] ?? "";
  return `llmq: ${formatLlmqError(usageError(`usage of llmq${command === "" ? "" : ` ${command}`}`, why, `run llmq${command === "" ? "" : ` ${command}`} --help`))}\n`;
};

/**
 * LLMQ_PLUGINS: comma-separated modules (package names or paths) imported before the command runs; a third-party
 * quantization method registers its config class and quantizer there (@llmq/hf-quantizers). A plugin that cannot be
 * imported is an error, not skipped.
 */
const loadPlugins = async (): Promise<boolean> => {
  for (const spec of (process.env.LLMQ_PLUGINS ?? "").split(",").map((s) => s.trim()).filter((s) => s !== "")) {
    try {
      await import(spec.startsWith(".") || spec.startsWith("/") ? pathToFileURL(resolve(spec)).href : spec);
    } catch (e) {
      process.stderr.write(`llmq: ${formatLlmqError(usageError("LLMQ_PLUGINS", `cannot import ${spec}: ${String((e as Error)?.message ?? e)}`, "fix or remove the plugin"))}\n`);
      return false;
    }
  }
  return true;
};

const main = async (): Promise<void> => {
  if (!(await loadPlugins())) {
    process.exitCode = 1;
    return;
  }
  const program = buildCli();
  const command = process.argv.slice(2).find((a) => !a.startsWith("-")) ?? "";
  const known = program.commands.map((c) => c.name());
  program.configureOutput({
    writeErr: (s) => process.stderr.write(s),
    outputError: (s, write) => write(usageLine(s, known.includes(command) ? command : "")),
  });
  for (const c of program.commands) c.configureOutput({ writeErr: (s) => process.stderr.write(s), outputError: (s, write) => write(usageLine(s, c.name())) });
  for (const sig of Object.keys(SIGNAL_EXIT) as NodeJS.Signals[]) process.on(sig, onSignal);
  process.on("uncaughtException", (e) => {
    abandonStagedDirectoriesSync();
    process.stderr.write(bugLine(e));
    process.exit(2);
  });
  try {
    await program.parseAsync(process.argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help / --version exit 0; usage errors exit 1 (the message was written by outputError above).
      process.exitCode = e.exitCode === 0 ? 0 : 1;
      return;
    }
    process.stderr.write(bugLine(e));
    process.exitCode = 2;
  }
};

void main();
