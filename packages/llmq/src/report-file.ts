import { nodeBuiltin } from "@llmq/tensor";
import { overlapOf, realpathLoose, tempSibling, writeAtomically } from "@llmq/serialization";
import * as E from "fp-ts/lib/Either.js";
import { type LlmqError, ioErrorFrom, usageError } from "./errors.js";
const { open, rm, stat } = nodeBuiltin<typeof import("node:fs/promises")>("node:fs/promises");
const { resolve } = nodeBuiltin<typeof import("node:path")>("node:path");

// The HTML report is checked before any work (a report that cannot be written must not cost a whole quantization, nor
// fail after the checkpoint was committed) and written like every other output: to a temporary sibling, then renamed.

/**
 * Refuses a report path that is a directory, lies inside or equals the output or one of the inputs, or whose directory
 * does not exist or is not writable (probed by creating and deleting a temporary file there).
 */
export const checkReportPath = async (
  report: string,
  output: string | null,
  inputs: ReadonlyArray<string>,
): Promise<E.Either<LlmqError, void>> => {
  const real = await realpathLoose(report);
  if (output !== null) {
    const o = overlapOf(real, await realpathLoose(output));
    if (o === "equals" || o === "inside" || o === "contains")
      return E.left(usageError("--report", `${report} ${o === "inside" ? "lies inside" : o === "equals" ? "is" : "contains"} the output ${output}`, "write the report next to the output, not into it"));
  }
  for (const i of inputs) if (real === (await realpathLoose(i))) return E.left(usageError("--report", `${report} is the input ${i}`, "choose another report file name"));
  const isDir = await stat(report).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (isDir) return E.left(usageError("--report", `${report} is a directory`, "give a file name, e.g. report.html"));
  const probe = tempSibling(resolve(report));
  try {
    const fh = await open(probe, "wx");
    await fh.close();
  } catch (e) {
    return E.left(ioErrorFrom(report, "cannot write the report there", Object.assign(e as object, { path: report })));
  } finally {
    await rm(probe, { force: true }).catch(() => undefined);
  }
  return E.right(undefined);
};

/** Writes the report through a temporary sibling, so a failure leaves no truncated report. */
export const writeReportFile = async (path: string, html: string): Promise<E.Either<LlmqError, void>> => {
  try {
    await writeAtomically(resolve(path), (fh) => fh.writeFile(html));
    return E.right(undefined);
  } catch (e) {
    return E.left(ioErrorFrom(path, "cannot write the report", Object.assign(e as object, { path })));
  }
};
