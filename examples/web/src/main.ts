import { tokenizerFromJson } from "@llmq/models";
import { type GpuContext, formatGpuError, generate, loadQuantized, requestGpuContext } from "@llmq/runtime-gpu";
import * as E from "fp-ts/lib/Either.js";

// The page: the model's files from a picked directory (File objects) or from ./model/ (fetch), decoded greedily on
// WebGPU, the text streamed as tokens arrive. `?autorun=1&prompt=…&max=…` runs at load (the Playwright test);
// `data-done` on <body> marks the end, `#tokens` holds the ids as JSON.

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;

type ReadFile = (name: string) => Promise<Uint8Array | null>;

const fromPicked = (files: FileList): ReadFile => async (name) => {
  const f = Array.from(files).find((x) => x.name === name);
  return f === undefined ? null : new Uint8Array(await f.arrayBuffer());
};

const fromServer: ReadFile = async (name) => {
  const r = await fetch(`./model/${name}`);
  return r.ok ? new Uint8Array(await r.arrayBuffer()) : null;
};

const text = (b: Uint8Array | null): string | null => (b === null ? null : new TextDecoder().decode(b));

const status = (s: string): void => {
  $("status").textContent = s;
};

let gpu: GpuContext | null = null;

const device = async (): Promise<GpuContext | null> => {
  if (gpu !== null) return gpu;
  const ctx = await requestGpuContext(navigator.gpu)();
  if (E.isLeft(ctx)) {
    status(formatGpuError(ctx.left));
    return null;
  }
  gpu = ctx.right;
  $("adapter").textContent = gpu.adapter;
  return gpu;
};

const run = async (read: ReadFile, prompt: string, maxTokens: number): Promise<void> => {
  const ctx = await device();
  if (ctx === null) return;
  status("loading");
  const [config, weights, tj, tc] = await Promise.all([read("config.json"), read("model.safetensors"), read("tokenizer.json"), read("tokenizer_config.json")]);
  if (config === null || weights === null || tj === null) return status("config.json, model.safetensors and tokenizer.json are needed");
  const tok = tokenizerFromJson("tokenizer.json", JSON.parse(text(tj)!), tc === null ? undefined : JSON.parse(text(tc)!));
  if (E.isLeft(tok)) return status(`tokenizer: ${JSON.stringify(tok.left)}`);
  const model = loadQuantized(ctx, { config: text(config)!, weights });
  if (E.isLeft(model)) return status(formatGpuError(model.left));
  const ids: number[] = [];
  const ptoks = Int32Array.from(tok.right.encode(prompt, { bos: true }));
  ($("progress") as HTMLProgressElement).max = maxTokens;
  status("generating");
  const t0 = performance.now();
  generate(model.right, ptoks, { maxTokens }).subscribe({
    next: (t) => {
      ids.push(t.id);
      $("text").textContent = prompt + tok.right.decode(ids);
      ($("progress") as HTMLProgressElement).value = ids.length;
    },
    error: (e) => status(`failed: ${String(e)}`),
    complete: () => {
      status(`${ids.length} tokens, ${(ids.length / ((performance.now() - t0) / 1000)).toFixed(1)} tokens/s`);
      $("tokens").textContent = JSON.stringify(ids);
      document.body.dataset.done = "1";
    },
  });
};

const start = (): void => {
  const picked = ($("dir") as HTMLInputElement).files;
  const read = picked !== null && picked.length > 0 ? fromPicked(picked) : fromServer;
  void run(read, ($("prompt") as HTMLInputElement).value, Number(($("max") as HTMLInputElement).value));
};

$("run").addEventListener("click", start);
const q = new URLSearchParams(location.search);
if (q.get("autorun") === "1") {
  ($("prompt") as HTMLInputElement).value = q.get("prompt") ?? ($("prompt") as HTMLInputElement).value;
  ($("max") as HTMLInputElement).value = q.get("max") ?? ($("max") as HTMLInputElement).value;
  start();
}
