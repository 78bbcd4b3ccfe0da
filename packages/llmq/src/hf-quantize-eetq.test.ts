import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { forwardLogits } from "@llmq/models";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { convertCommand, formatLlmqError, hfQuantizeCommand, inspectCommand, openModelDir } from "./index.js";
import { ROOT, convertStories, must } from "./test-support/stories260k.js";

// `llmq quantize --hf-config '{"quant_method": "eetq", …}'` on stories260K, read back by llmq. transformers cannot load
// EETQ without a CUDA GPU; with LLMQ_PYTHON and LLMQ_EETQ_KERNELS (a kernels-community checkout, tools/README.md),
// tools/check_eetq_dir.py replays transformers' EETQ quantize-on-load with EETQ's own code and compares every byte:
//   LLMQ_PYTHON=$LLMQ_PYTHON LLMQ_EETQ_KERNELS=/tmp/kernels-community npx vitest run src/hf-quantize-eetq.test.ts
const PY = process.env.LLMQ_PYTHON;
const KERNELS = process.env.LLMQ_EETQ_KERNELS;
// stories260K's k/v projections (32 outputs) and MLP (172 wide) do not fit EETQ's tiles of 64: transformers' EETQ
// fails on them, so they are listed (suffixes, as should_convert_module matches them), and so is the tied head.
const CONFIG = '{"quant_method": "eetq", "modules_to_not_convert": ["lm_head", "k_proj", "v_proj", "gate_proj", "up_proj", "down_proj"]}';
let dir: string;
let fp: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "llmq-eetq-"));
  fp = join(dir, "fp");
  await convertStories(fp);
}, 60_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** tools/check_eetq_dir.py on a directory llmq wrote (when LLMQ_PYTHON and LLMQ_EETQ_KERNELS are set). */
const checkWithEetq = async (out: string): Promise<void> => {
  if (PY === undefined || KERNELS === undefined) return;
  const run = await promisify(execFile)(PY, [join(ROOT, "tools/check_eetq_dir.py"), fp, out, KERNELS], { maxBuffer: 1 << 24 }).catch(
    (e: { stdout?: string; stderr?: string }) => ({ stdout: e.stdout ?? "", stderr: e.stderr ?? "" }),
  );
  expect(run.stdout.trim().split("\n").pop(), run.stderr.slice(-2000)).toContain('"ok": true');
};

describe("llmq quantize --hf-config (EETQ int8)", () => {
  it("writes EetqLinear's tensors and to_dict(); llmq reads the directory back as code × scale", async () => {
    const out = join(dir, "eetq");
    const r = must(await hfQuantizeCommand({ model: fp, output: out, hfConfig: CONFIG, overwrite: false })());
    expect([r.quantizer, r.converted]).toEqual(["eetq", 10]);
    expect(JSON.parse(readFileSync(join(out, "config.json"), "utf8")).quantization_config).toEqual(JSON.parse(CONFIG.replace("{", '{"weights": "int8", ')));
    const info = must(await inspectCommand(out)());
    expect(info.hf_quantizer).toMatchObject({ method: "eetq", config_class: "EetqConfig", requires_calibration: false, is_serializable: true });
    const q = must(await openModelDir(out)());
    const f = must(await openModelDir(fp)());
    const name = "model.layers.2.self_attn.o_proj.weight";
    const [wq, wf] = [must(await q.readTensor(name)()), must(await f.readTensor(name)())];
    expect(wq.shape).toEqual(wf.shape);
    const [a, b] = [wq.data as Float32Array, wf.data as Float32Array];
    // per output row the error is at most half a step (amax/128), the clipped +amax at most one step
    for (let o = 0; o < 64; o++) {
      const amax = b.subarray(o * 64, o * 64 + 64).reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      for (let i = 0; i < 64; i++) expect(Math.abs(a[o * 64 + i]! - b[o * 64 + i]!)).toBeLessThanOrEqual(amax / 128 + 1e-7);
    }
    const tokens = Int32Array.from({ length: 32 }, (_, i) => (i === 0 ? 1 : (i * 37) % 512));
    const [lq, lf] = [must(await forwardLogits(q, tokens)()), must(await forwardLogits(f, tokens)())];
    expect(lq.shape).toEqual(lf.shape);
    await q.close();
    await f.close();
    // convert --from eetq writes the same dense weights llmq runs.
    const c = must(await convertCommand({ from: "eetq", model: out, output: join(dir, "dense"), overwrite: false })());
    expect(c.sourceTypes).toEqual({ "eetq linears": 10 });
    const d = must(await openModelDir(join(dir, "dense"))());
    expect(Array.from(must(await d.readTensor(name)()).data as Float32Array)).toEqual(Array.from(a));
    await d.close();
    await checkWithEetq(out);
  }, 120_000);

  it("float16: weight_scales in float16, every other float tensor too", async () => {
    const out = join(dir, "eetq16");
    must(await hfQuantizeCommand({ model: fp, output: out, hfConfig: CONFIG, dtype: "float16", overwrite: false })());
    const info = must(await inspectCommand(out)());
    const dtypes = new Map(info.tensors.map((t) => [t.name, t.dtype]));
    expect([dtypes.get("model.layers.0.self_attn.q_proj.weight_scales"), dtypes.get("model.layers.0.self_attn.q_proj.weight"), dtypes.get("model.norm.weight")]).toEqual(["F16", "I8", "F16"]);
    await checkWithEetq(out);
  }, 120_000);

  it("refuses, before writing, what transformers' EETQ cannot quantize", async () => {
    const msg = async (cfg: string, dtype?: "bfloat16") => {
      const r = await hfQuantizeCommand({ model: fp, output: join(dir, "never"), hfConfig: cfg, dtype, overwrite: false })();
      return E.isLeft(r) ? formatLlmqError(r.left) : "";
    };
    expect(await msg('{"quant_method": "eetq"}')).toMatch(/a \[(32, 64|64, 172)\] linear: (out|in)_features (32|172) is not a multiple of 64/);
    expect(await msg(CONFIG, "bfloat16")).toMatch(/float16 or float32 weights/);
    expect(await msg('{"quant_method": "eetq", "weights": "int4"}')).toMatch(/int8/);
  });
});
