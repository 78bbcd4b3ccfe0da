import { type TextTokenizer, tokenizerFromJson } from "@llmq/models";
import { type GpuContext, formatGpuError, generate, loadQuantized, requestGpuContext } from "@llmq/runtime-gpu";
import * as E from "fp-ts/lib/Either.js";
import { type EvaluateResult, type ProgressEvent, datasetFromText, evaluate, formatLlmqError, oneshotFiles, openModelFiles, recipeFromYaml } from "llmq";
import w4a16 from "../../../fixtures/recipes/stories260k-w4a16-g32.yaml";
import w8a8 from "../../../fixtures/recipes/stories260k-w8a8.yaml";
import fp8Dynamic from "../../../fixtures/recipes/stories260k-fp8-dynamic.yaml";

// The page: a model's files from a picked directory (File objects) or from ./model/ (fetch); quantized in the page
// with llmq's oneshot (js backend) when a scheme is chosen, evaluated against the unquantized model (llmq's eval
// metrics: KL divergence, top-1 agreement, perplexity), offered as downloads, then decoded greedily on WebGPU with
// the text streamed. `?autorun=1&scheme=…&prompt=…&max=…` runs at load (the Playwright test); `data-done` on <body>
// marks the end; #hashes (sha256 per checkpoint file), #report and #tokens hold the results as JSON.

/** The schemes the page offers: llm-compressor recipes for stories260K (fixtures/recipes), or none (run as given). */
const SCHEMES: Readonly<Record<string, string>> = { "w4a16-g32": w4a16, w8a8, "fp8-dynamic": fp8Dynamic };

/** The files a model directory served at ./model/ may hold (config, weights, what oneshot copies along). */
const MODEL_FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "generation_config.json", "vocab.json", "merges.txt", "chat_template.jinja"];

const $ = <T extends HTMLElement>(id: string): T => document.getElementById(id) as T;
const value = (id: string): string => ($(id) as HTMLInputElement).value;

type Files = ReadonlyMap<string, Uint8Array>;

const fromPicked = async (files: FileList): Promise<Files> => new Map(await Promise.all(Array.from(files).map(async (f) => [f.name, new Uint8Array(await f.arrayBuffer())] as const)));

const fromServer = async (): Promise<Files> => {
  const got = await Promise.all(MODEL_FILES.map(async (n) => [n, await fetch(`./model/${n}`)] as const));
  return new Map(await Promise.all(got.filter(([, r]) => r.ok).map(async ([n, r]) => [n, new Uint8Array(await r.arrayBuffer())] as const)));
};

const text = (b: Uint8Array): string => new TextDecoder().decode(b);

const status = (s: string): void => {
  $("status").textContent = s;
};

class PageError extends Error {}
const fail = (message: string): never => {
  throw new PageError(message);
};

let gpu: GpuContext | null = null;

const device = async (): Promise<GpuContext> => {
  if (gpu !== null) return gpu;
  const ctx = await requestGpuContext(navigator.gpu)();
  if (E.isLeft(ctx)) return fail(formatGpuError(ctx.left));
  gpu = ctx.right;
  $("adapter").textContent = gpu.adapter;
  return gpu;
};

/** The progress bar follows llmq's ProgressEvents (stage → max, tick → value). */
const showProgress = (e: ProgressEvent): void => {
  const bar = $("progress") as HTMLProgressElement;
  if (e.kind === "stage") {
    bar.max = e.total;
    bar.value = 0;
    status(e.stage);
  } else if (e.kind === "tick") {
    bar.value = e.done;
    status(`${e.stage} ${e.done}/${e.total}${e.label ? ` · ${e.label}` : ""}`);
  }
};

/** Lets the browser paint between steps of work that runs on this thread. */
const yieldToPage = (): Promise<void> => new Promise((ok) => setTimeout(ok, 0));

const sha256 = async (b: Uint8Array): Promise<string> =>
  Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>)), (x) => x.toString(16).padStart(2, "0")).join("");

/** One download link per checkpoint file, and their sha256 in #hashes. */
const offerDownloads = async (files: Files): Promise<void> => {
  const list = $("downloads");
  list.replaceChildren();
  const hashes: Record<string, string> = {};
  for (const [name, bytes] of [...files].sort(([a], [b]) => (a < b ? -1 : 1))) {
    hashes[name] = await sha256(bytes);
    const a = document.createElement("a");
    a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
    a.download = name;
    a.textContent = `${name} (${bytes.length} bytes)`;
    const li = document.createElement("li");
    li.append(a, ` sha256 ${hashes[name].slice(0, 16)}…`);
    list.append(li);
  }
  $("hashes").textContent = JSON.stringify(hashes);
};

const quantize = async (files: Files, scheme: string): Promise<Files> => {
  const recipe = recipeFromYaml(SCHEMES[scheme]!);
  if (E.isLeft(recipe)) return fail(formatLlmqError(recipe.left));
  const r = await oneshotFiles({ files, name: "model", recipe: recipe.right, progress: showProgress })();
  if (E.isLeft(r)) return fail(formatLlmqError(r.left));
  $("quantized").textContent = `${r.right.result.modules} modules (${r.right.result.format}) in ${r.right.result.seconds.toFixed(2)} s on the ${r.right.result.backend} backend`;
  await offerDownloads(r.right.files);
  return r.right.files;
};

const fmt = (x: number | null | undefined, digits = 4): string => (x === null || x === undefined ? "–" : x.toPrecision(digits));

/** llmq's eval of the quantized model against the unquantized one on the text in #evaltext. */
const evaluateAgainst = async (quantized: Files, reference: Files, tok: TextTokenizer): Promise<EvaluateResult> => {
  const [m, ref] = [await openModelFiles(quantized, "quantized")(), await openModelFiles(reference, "reference")()];
  if (E.isLeft(m)) return fail(formatLlmqError(m.left));
  if (E.isLeft(ref)) return fail(formatLlmqError(ref.left));
  const data = datasetFromText("evaluation text", value("evaltext"), tok, { seqLen: Number(value("seqlen")), sampling: "sequential", vocabSize: m.right.config.vocab_size });
  if (E.isLeft(data)) return fail(formatLlmqError(data.left));
  const r = await evaluate(m.right, ref.right, data.right, { progress: showProgress })();
  if (E.isLeft(r)) return fail(formatLlmqError(r.left));
  const v = r.right;
  $("report").textContent = JSON.stringify({ tokens: v.tokens, perplexity: v.perplexity, reference_perplexity: v.reference_perplexity, kld: v.kld, top1: v.top1 });
  $("kld").textContent =
    `${v.tokens} tokens · KL divergence mean ${fmt(v.kld?.mean)}, p99 ${fmt(v.kld?.p99)}, max ${fmt(v.kld?.max)} nats · ` +
    `top-1 agreement ${fmt((v.top1 ?? 0) * 100)} % · perplexity ${fmt(v.perplexity)} (unquantized ${fmt(v.reference_perplexity)})`;
  return v;
};

const tokenizerOf = (files: Files): TextTokenizer => {
  const [tj, tc] = [files.get("tokenizer.json"), files.get("tokenizer_config.json")];
  if (tj === undefined) return fail("tokenizer.json is needed");
  const tok = tokenizerFromJson("tokenizer.json", JSON.parse(text(tj)), tc === undefined ? undefined : JSON.parse(text(tc)));
  return E.isLeft(tok) ? fail(`tokenizer: ${JSON.stringify(tok.left)}`) : tok.right;
};

/** Greedy decoding on WebGPU with the text streamed into #text; resolves when the last token arrived. */
const decode = async (files: Files, tok: TextTokenizer, prompt: string, maxTokens: number): Promise<void> => {
  const ctx = await device();
  const [config, weights] = [files.get("config.json"), files.get("model.safetensors")];
  if (config === undefined || weights === undefined) return fail("config.json and model.safetensors are needed");
  const model = loadQuantized(ctx, { config: text(config), weights });
  if (E.isLeft(model)) return fail(formatGpuError(model.left));
  const ids: number[] = [];
  ($("progress") as HTMLProgressElement).max = maxTokens;
  status("generating on WebGPU");
  const t0 = performance.now();
  await new Promise<void>((done, error) =>
    generate(model.right, Int32Array.from(tok.encode(prompt, { bos: true })), { maxTokens }).subscribe({
      next: (t) => {
        ids.push(t.id);
        $("text").textContent = prompt + tok.decode(ids);
        ($("progress") as HTMLProgressElement).value = ids.length;
      },
      error,
      complete: done,
    }),
  );
  status(`${ids.length} tokens, ${(ids.length / ((performance.now() - t0) / 1000)).toFixed(1)} tokens/s on WebGPU`);
  $("tokens").textContent = JSON.stringify(ids);
};

const run = async (files: Files, scheme: string, prompt: string, maxTokens: number): Promise<void> => {
  const tok = tokenizerOf(files);
  let model = files;
  if (scheme !== "none") {
    status("quantizing");
    await yieldToPage();
    model = await quantize(files, scheme);
    await yieldToPage();
    await evaluateAgainst(model, files, tok);
  }
  await decode(model, tok, prompt, maxTokens);
};

const start = async (): Promise<void> => {
  const picked = ($("dir") as HTMLInputElement).files;
  try {
    const files = picked !== null && picked.length > 0 ? await fromPicked(picked) : await fromServer();
    await run(files, value("scheme"), value("prompt"), Number(value("max")));
  } catch (e) {
    status(e instanceof PageError ? e.message : `failed: ${String(e)}`);
    $("error").textContent = String(e instanceof Error ? e.message : e);
  } finally {
    document.body.dataset.done = "1";
  }
};

$("run").addEventListener("click", () => void start());
const q = new URLSearchParams(location.search);
for (const key of ["scheme", "prompt", "max"]) {
  const v = q.get(key);
  if (v !== null) ($(key) as HTMLInputElement).value = v;
}
if (q.get("autorun") === "1") void start();
