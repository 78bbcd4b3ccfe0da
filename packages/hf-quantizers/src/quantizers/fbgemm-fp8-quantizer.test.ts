import { type PyJson, type PyJsonObject, dumpPythonJson } from "@llmq/serialization";
import type { Tensor } from "@llmq/tensor";
import * as E from "fp-ts/lib/Either.js";
import { describe, expect, it } from "vitest";
import { caseConfig, hexBytes, loadFixtureCases } from "../test-support/fixture-cases.js";
import { FbgemmFp8Quantizer, type ModelFacts, fbgemmFakeQuantizeInput, formatHfQuantizerError, quantizeOnLoad } from "../index.js";

// tools/gen_fbgemm_fp8_fixtures.py: transformers 5.24's FbgemmFp8Config load + save_pretrained on stories260K with
// FBGEMM's CUDA quantize op replaced by a torch transliteration of its kernel (no GPU / fbgemm_gpu here): the layout and
// config are transformers', the numerics the kernel source's as torch computes them.
const DIR = new URL("../../fixtures/fbgemm-fp8/", import.meta.url);
const { cases, stored } = loadFixtureCases(DIR);
const bytes = hexBytes;

const LAYER0 = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"].map((m) => `model.layers.0.${m}`);
const FACTS: ModelFacts = { linears: LAYER0, tiedKeys: ["lm_head.weight", "model.embed_tokens.weight"], lastParameter: "model.norm.weight", outputEmbedding: "lm_head" };
const source = new Map<string, Tensor>(LAYER0.map((m) => [`${m}.weight`, stored.get(`src/${m}.weight`) as Tensor]));

describe("FbgemmFp8Config quantize on load = transformers 5.24's layout, FBGEMM quantize_fp8_per_row's numerics", () => {
  for (const [name, c] of Object.entries(cases)) {
    const want = c as PyJsonObject;
    it(name, () => {
      const { config, quantizer } = caseConfig(want);
      expect(quantizer).toBe(FbgemmFp8Quantizer);
      const r = quantizeOnLoad(FbgemmFp8Quantizer, config, source, FACTS, "float32");
      if (E.isLeft(r)) throw new Error(formatHfQuantizerError(r.left));
      expect(r.right.dtype).toBe(want.saved_dtype); // update_dtype forces bfloat16, and says so
      expect(r.right.warnings.join("\n")).toContain("the requested float32 is overridden");
      expect(dumpPythonJson(r.right.quantizationConfig, { sortKeys: true })).toBe(dumpPythonJson(want.quantization_config as PyJson, { sortKeys: true }));
      expect(r.right.metadata).toEqual(want.metadata);
      const expected = [...stored.keys()].filter((k) => k.startsWith(`${name}/`)).map((k) => k.slice(name.length + 1));
      expect([...r.right.tensors.keys()].sort()).toEqual(expected.sort());
      for (const k of expected) {
        const [t, ref] = [r.right.tensors.get(k)!, stored.get(`${name}/${k}`)!];
        expect([k, t.dtype, t.shape]).toEqual([k, ref.dtype, ref.shape]);
        expect(bytes(t), k).toBe(bytes(ref));
      }
    });
  }

  it("quantizes linear inputs as FbgemmFp8Linear does (scale_ub bounds the row max)", () => {
    const x = stored.get("act/x")!.data as Float32Array;
    for (const ub of [1200, 2.5]) {
      const got = fbgemmFakeQuantizeInput(x, 6, 64, ub);
      expect(Buffer.from(got.buffer).toString("hex"), `ub ${ub}`).toBe(bytes(stored.get(`act/ub${ub.toFixed(1)}`)!));
    }
  });
});
