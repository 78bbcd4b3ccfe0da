import cliProgress from "cli-progress";
import type { ProgressSink } from "./progress.js";

// Kept apart from progress.ts: cli-progress needs Node's events and readline, and the core entry bundles for browsers.

// ----- rendering -----

/**
 * Renders progress on stderr: a bar with ETA per stage on a terminal, one line every few seconds otherwise (so CI
 * logs stay readable). Returns the sink and a `stop` that clears the bar.
 */
export const stderrProgress = (): { readonly sink: ProgressSink; readonly stop: () => void } => {
  const tty = Boolean(process.stderr.isTTY);
  let bar: cliProgress.SingleBar | null = null;
  let lastLine = 0;
  const stopBar = (): void => {
    if (bar) {
      bar.stop();
      bar = null;
    }
  };
  const sink: ProgressSink = (e) => {
    switch (e.kind) {
      case "stage":
        stopBar();
        if (tty) {
          bar = new cliProgress.SingleBar(
            {
              stream: process.stderr,
              format: `${e.stage.padEnd(12)} |{bar}| {value}/{total} {label} ETA {eta_formatted}`,
              hideCursor: true,
              clearOnComplete: false,
              etaBuffer: 20,
            },
            cliProgress.Presets.shades_classic,
          );
          bar.start(e.total, 0, { label: "" });
        } else {
          process.stderr.write(`${e.stage}: 0/${e.total}\n`);
          lastLine = Date.now();
        }
        break;
      case "tick":
        if (bar) bar.update(e.done, { label: e.label ?? "" });
        else if (!tty && (Date.now() - lastLine > 2000 || e.done === e.total)) {
          process.stderr.write(`${e.stage}: ${Math.floor(e.done)}/${e.total}${e.label ? ` ${e.label}` : ""}\n`);
          lastLine = Date.now();
        }
        break;
      case "detail":
        if (bar) bar.update({ label: e.label });
        else if (!tty && Date.now() - lastLine > 2000) {
          process.stderr.write(`${e.stage}: ${e.label}\n`);
          lastLine = Date.now();
        }
        break;
      case "log":
        if (bar) {
          // Print above the bar without tearing it.
          process.stderr.write(`\r\x1b[K${e.message}\n`);
          bar.render();
        } else process.stderr.write(`${e.message}\n`);
        break;
    }
  };
  return { sink, stop: stopBar };
};
