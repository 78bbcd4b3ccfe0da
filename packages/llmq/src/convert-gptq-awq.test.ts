// `llmq convert --from gptq|awq|bnb` on directories assembled from the fixtures of @llmq/serialization
// (tools/gen_gptq_awq_fixtures.py: packed by AutoAWQ's / GPTQModel's code, expected weights from GPTQModel's
// convert_gptq_file and the exact (q − z)·s, which llmq reads rounded to the f16 scales' dtype;
// tools/gen_bnb_fixtures.py: bitsandbytes 0.50.2).
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { deserializeSafetensors, openCheckpoint, openSafetensors, quantizedFormatOf, roundTo, writeSafetensors } from "@llmq/serialization";
import { type Tensor, castFromNumbers } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { afterAll, describe, expect, it } from "vitest";
import { convertCommand } from "./convert-command.js";
import { quantizeCommand } from "./quantize-command.js";
import { quantizedSource } from "./quantized-source.js";

const FX = new URL("../../serialization/fixtures/", import.meta.url).pathname;
const load = (d: string) => ({
  tensors: E.getOrElseW(() => null)(deserializeSafetensors(d, new Uint8Array(readFileSync(join(FX, d, "cases.safetensors")))))!.tensors,
  manifest: JSON.parse(readFileSync(join(FX, d, "manifest.json"), "utf8")) as { cases: Record<string, Record<string, unknown>> },
});
const packedFx = load("gptq-awq");
const bnbFx = load("bnb");
const fp8Fx = load("fp8");
const hqqFx = load("hqq");
const aqlmFx = load("aqlm");
const cases = new Map([...packedFx.tensors, ...bnbFx.tensors, ...fp8Fx.tensors, ...hqqFx.tensors, ...aqlmFx.tensors]);
const manifest = { cases: { ...packedFx.manifest.cases, ...bnbFx.manifest.cases, ...fp8Fx.manifest.cases, ...hqqFx.manifest.cases, ...aqlmFx.manifest.cases } };
const tmp = mkdtempSync(join(tmpdir(), "llmq-convert-q-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const LINEAR = "model.layers.0.mlp.down_proj";

const makeDir = async (name: string, quantizationConfig: Record<string, unknown>): Promise<string> => {
  const dir = join(tmp, name);
  mkdirSync(dir);
  const tensors = new Map<string, Tensor>([["model.norm.weight", castFromNumbers("f16", [1, 0.5, 2], [3])]]);
  for (const [n, t] of cases) if (n.startsWith(`${name}.`) && !n.endsWith(".expected")) tensors.set(`${LINEAR}${n.slice(name.length)}`, t);
  const w = await writeSafetensors(join(dir, "model.safetensors"), tensors, { format: "pt" })();
  if (E.isLeft(w)) throw new Error(JSON.stringify(w.left));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "llama", quantization_config: quantizationConfig }));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ bos_token: "<s>" }));
  return dir;
};

const readOut = async (dir: string, name: string): Promise<Tensor> => {
  const f = await openSafetensors(join(dir, "model.safetensors"))();
  if (E.isLeft(f)) throw new Error(JSON.stringify(f.left));
  const t = await f.right.read(name)();
  await f.right.close();
  if (E.isLeft(t)) throw new Error(JSON.stringify(t.left));
  return t.right;
};

const bits = (t: Tensor): Uint32Array => new Uint32Array((t.data as Float32Array).buffer, (t.data as Float32Array).byteOffset, t.size);

describe("llmq convert --from gptq|awq|bnb|fp8|hqq|aqlm", () => {
  for (const [name, qc, from] of [
    ["gptq_b3_sym_v1_act1", { quant_method: "gptq", bits: 3, group_size: 32, desc_act: true, sym: true, checkpoint_format: "gptq" }, "gptq"],
    ["gptq_b4_asym_v2_act0", { quant_method: "gptq", bits: 4, group_size: 32, desc_act: false, sym: false, format: "gptq_v2" }, "gptq"],
    ["awq_gemm_g64", { quant_method: "awq", bits: 4, group_size: 64, zero_point: true, version: "gemm" }, "awq"],
    ["awq_gemv_g32", { quant_method: "awq", bits: 4, group_size: 32, zero_point: true, version: "gemv" }, "awq"],
    ["nf4_dq_bfloat16", { quant_method: "bitsandbytes", load_in_4bit: true, bnb_4bit_quant_type: "nf4", bnb_4bit_use_double_quant: true }, "bnb"],
    ["int8_b", { quant_method: "bitsandbytes", load_in_8bit: true }, "bnb"],
    ["fp8_block_1x32", { quant_method: "fp8", weight_block_size: [1, 32], activation_scheme: "dynamic" }, "fp8"],
    ["fbgemm", { quant_method: "fbgemm_fp8", activation_scale_ub: 1200 }, "fp8"],
    ["4x8_og2_ig4_f32", { quant_method: "aqlm", in_group_size: 4, out_group_size: 2, num_codebooks: 4, nbits_per_codebook: 8 }, "aqlm"],
    ["b3_g64_ax0_f32", { quant_method: "hqq", quant_config: { weight_quant_params: { nbits: 3, group_size: 64, axis: 0 } }, skip_modules: ["lm_head"] }, "hqq"],
  ] as const) {
    it(`${name}: the dense weight is the reference's, bit for bit; quantization_config dropped; tokenizer files kept`, async () => {
      const dir = await makeDir(name, qc);
      const out = join(tmp, `${name}-out`);
      const r = await convertCommand({ from, model: dir, output: out, overwrite: false })();
      if (E.isLeft(r)) throw new Error(JSON.stringify(r.left));
      expect(r.right).toMatchObject({ tensors: 2, dtype: "f32", tokenizer: true });
      const method = { bnb: name.startsWith("int8") ? "bitsandbytes_8bit" : "bitsandbytes_4bit", fp8: name === "fbgemm" ? "fbgemm_fp8" : "fp8", gptq: "gptq", awq: "awq", hqq: "hqq", aqlm: "aqlm" }[from];
      expect(Object.entries(r.right.sourceTypes ?? {})).toEqual([[`${method} linears`, 1]]);
      const w = await readOut(out, `${LINEAR}.weight`);
      expect(w.shape).toEqual(manifest.cases[name]!.shape);
      // GPTQ / AWQ: the fixture's exact f32 product, rounded once to the f16 scales' dtype as the runtimes multiply
      const want = cases.get(`${name}.expected`)!.data as Float32Array;
      const ref = from === "gptq" || from === "awq" ? want.map(roundTo("float16")) : want;
      expect(bits(w)).toEqual(new Uint32Array(ref.buffer, ref.byteOffset, ref.length));
      const cfg = JSON.parse(readFileSync(join(out, "config.json"), "utf8"));
      expect(cfg.quantization_config).toBeUndefined();
      expect(JSON.parse(readFileSync(join(out, "tokenizer_config.json"), "utf8"))).toEqual({ bos_token: "<s>" });
      expect((await readOut(out, "model.norm.weight")).dtype).toBe("f32");
      // the lazy source eval / inspect / quantize run on: same names, the dense shape before any read, same bits
      const ck = await openCheckpoint(dir)();
      const fmt = quantizedFormatOf("config.json", qc);
      if (E.isLeft(ck) || E.isLeft(fmt)) throw new Error("open");
      const src = await quantizedSource(ck.right, fmt.right)();
      if (E.isLeft(src)) throw new Error(JSON.stringify(src.left));
      expect([...src.right.names()].sort()).toEqual([`${LINEAR}.weight`, "model.norm.weight"]);
      expect(src.right.shape(`${LINEAR}.weight`)).toEqual(manifest.cases[name]!.shape);
      expect(src.right.dtype?.(`${LINEAR}.weight`)).toBe("f32");
      const lazy = await src.right.read(`${LINEAR}.weight`)();
      expect(E.isRight(lazy) && bits(lazy.right)).toEqual(bits(w));
      await ck.right.close();
    });
  }

  it("--from gptq on an AWQ directory, or an unsupported method, is one model error naming the right flag / the readable methods", async () => {
    const awq = await makeDir("awq_gemm_g32", { quant_method: "awq", group_size: 32, version: "gemm" });
    const r = await convertCommand({ from: "gptq", model: awq, output: join(tmp, "x1"), overwrite: false })();
    expect(E.isLeft(r) && r.left._tag === "ModelError" && r.left.detail).toContain("use --from awq");
    const bnb = await makeDir("gptq_b8_sym_v1_act0", { load_in_4bit: true, quant_method: "bitsandbytes" });
    const b = await convertCommand({ from: "gptq", model: bnb, output: join(tmp, "x2"), overwrite: false })();
    expect(E.isLeft(b) && b.left._tag === "ModelError" && b.left.detail).toContain("use --from bnb");
  });

  it("llmq quantize on a GPTQ directory dequantizes it beside the output first; a source that is no full model fails there, leaving nothing", async () => {
    const dir = join(tmp, "gptq_b3_sym_v1_act1");
    const out = join(tmp, "q-gptq");
    const r = await quantizeCommand({ model: dir, output: out, scheme: "W8A8", method: "rtn", numSamples: 1, seqLen: 8, seed: 0, overwrite: false })();
    expect(E.isLeft(r) && r.left._tag).toBe("ModelError"); // the fixture directory has one linear and no Llama config
    expect(readdirSync(tmp).filter((n) => n.startsWith(".llmq-dequantized-") || n === "q-gptq")).toEqual([]);
  });

});
