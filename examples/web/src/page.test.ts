import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { chromium } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
// @ts-expect-error: a plain .mjs build script without types
import { buildPage } from "../build.mjs";

// End to end in a real browser: the CLI converts and quantizes stories260K (W4A16 g32), the page (bundled for
// browsers) loads it over http://127.0.0.1 and decodes on WebGPU in headless Debian Chromium (SwiftShader), and its
// greedy tokens must equal `llmq generate` on the CPU.

const ROOT = new URL("../../../", import.meta.url).pathname;
const CHROMIUM = "/usr/bin/chromium";
const PROMPT = "Once upon a time";
const MAX = 100;

if (!existsSync(CHROMIUM)) console.warn(`web page test SKIPPED: ${CHROMIUM} is missing (apt-get install chromium)`);

let tmp = "";
let server: ReturnType<typeof createServer> | null = null;

const llmq = (...args: string[]): string => {
  const r = spawnSync(process.execPath, [join(ROOT, "packages/llmq/dist/cli.js"), ...args], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`llmq ${args.join(" ")}: ${r.stderr}`);
  return r.stdout;
};

const TYPES: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".json": "application/json" };

/** Serves the built page at / and the checkpoint at /model/. */
const serve = (www: string, model: string): Promise<number> => {
  server = createServer((req, res) => {
    const path = normalize(decodeURIComponent((req.url ?? "/").split("?")[0]!));
    const file = path.startsWith("/model/") ? join(model, path.slice(7)) : join(www, path === "/" ? "index.html" : path);
    if (!existsSync(file)) return void res.writeHead(404).end();
    res.writeHead(200, { "content-type": TYPES[extname(file)] ?? "application/octet-stream" }).end(readFileSync(file));
  });
  return new Promise((ok) => server!.listen(0, "127.0.0.1", () => ok((server!.address() as AddressInfo).port)));
};

beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "llmq-web-"));
});

afterAll(() => {
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe.skipIf(!existsSync(CHROMIUM))("examples/web in headless Chromium", () => {
  it(`decodes stories260K W4A16 g32 on WebGPU: the CLI's ${MAX} greedy tokens`, async () => {
    const dense = join(tmp, "dense");
    const model = join(tmp, "w4a16");
    llmq("convert", "--from", "llama2c", join(ROOT, "fixtures/stories260K/stories260K.bin"), "--tokenizer", join(ROOT, "fixtures/stories260K/tok512.bin"), "--output", dense);
    llmq("quantize", "--model", dense, "--output", model, "--recipe", join(ROOT, "fixtures/recipes/stories260k-w4a16-g32.yaml"));
    const cpu = JSON.parse(llmq("generate", "--model", model, "--prompt", PROMPT, "--max-tokens", String(MAX), "--ignore-eos", "--json")).tokens as number[];
    const port = await serve(await buildPage(join(tmp, "www")), model);
    const browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ["--no-sandbox", "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--disable-dev-shm-usage", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"],
    });
    try {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/?autorun=1&max=${MAX}&prompt=${encodeURIComponent(PROMPT)}`);
      await page.waitForSelector("body[data-done]", { timeout: 240_000 });
      const adapter = await page.textContent("#adapter");
      const tokens = JSON.parse((await page.textContent("#tokens")) ?? "[]") as number[];
      console.log(`web page: adapter ${adapter}; ${await page.textContent("#status")}`);
      expect(tokens).toEqual(cpu);
    } finally {
      await browser.close();
    }
  }, 300_000);
});
