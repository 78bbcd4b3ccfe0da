#!/usr/bin/env python3
# transformers' FbgemmFp8Config quantize-on-load + save_pretrained on stories260K, with FBGEMM's quantize op replaced
# by a torch transliteration of its CUDA kernel — transformers' FbgemmFp8HfQuantizer needs CUDA + fbgemm_gpu
# (validate_environment raises without a GPU; torch.ops.fbgemm.quantize_fp8_per_row is a CUDA kernel, and fbgemm_gpu
# does not install on a CPU-only machine). What is transformers' own here: which linears become FbgemmFp8Linear, the
# saved names / dtypes / shapes (weight float8_e4m3fn, weight_scale f32 [out, 1], no input_scale_ub), bfloat16 for the
# rest, config.json's quantization_config. What is NOT executed upstream code: the quantization numerics, transliterated
# from fbgemm_gpu/experimental/gen_ai/src/quantize/quantize.cu (dynamicQuantizeMatrixRowwise):
#   s = max(min(max|row|, scale_ub) / 448, 1 / (448 * 512))   (f32)
#   q = __nv_fp8_e4m3(x / s)                                   (f32 division; nearest even, saturating)
# torch's float32 → float8_e4m3fn cast is nearest-even too (values here never exceed 448 · (1 + 2^-23), which it
# rounds to 448 like the kernel's saturation). So the fixture checks llmq's layout against transformers and its
# numerics against this transliteration (torch's fp8 rounding, an implementation independent of llmq's).
#
# Command (from the repo root; deterministic):
#   node packages/llmq/dist/cli.js convert --from llama2c fixtures/stories260K/stories260K.bin \
#     --tokenizer fixtures/stories260K/tok512.bin --output /tmp/s260
#   $LLMQ_PYTHON tools/gen_fbgemm_fp8_fixtures.py /tmp/s260
#
# Outputs (packages/hf-quantizers/fixtures/fbgemm-fp8/): cases.safetensors, manifest.json.
import json
import os
import sys
import warnings
from importlib.metadata import version

import torch
import transformers
from transformers import AutoModelForCausalLM, FbgemmFp8Config
from transformers.integrations import fbgemm_fp8
from transformers.quantizers import quantizer_fbgemm_fp8
from fixture_cases import layer0_sources, save_cases, saved_case

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")
OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "hf-quantizers", "fixtures", "fbgemm-fp8")


def quantize_fp8_per_row(x, bs=None, scale_ub=None, output_dtype=None):
    """quantize.cu's quantize_fp8_per_row (bf16 input, e4m3 output, f32 scale per row), in torch ops."""
    assert x.dtype == torch.bfloat16, x.dtype
    xf = x.float()
    amax = xf.abs().amax(dim=-1)
    if scale_ub is not None:
        amax = torch.minimum(amax, scale_ub.float())
    s = torch.clamp(amax / 448.0, min=torch.tensor(1.0, dtype=torch.float32) / (448.0 * 512.0))
    q = (xf / s.unsqueeze(-1)).clamp(-448.0, 448.0).to(torch.float8_e4m3fn)
    return q, s


# No GPU: skip the environment check (it raises "requires a GPU or XPU") and run the op above instead of fbgemm's.
quantizer_fbgemm_fp8.FbgemmFp8HfQuantizer.validate_environment = lambda self, *a, **k: None
fbgemm_fp8.get_quantize_fp8_per_row = lambda: quantize_fp8_per_row

CASES = [
    ("default", {"quant_method": "fbgemm_fp8"}),
    ("skip-down-ub", {"quant_method": "fbgemm_fp8", "activation_scale_ub": 2.5, "modules_to_not_convert": ["mlp.down_proj", "lm_head"]}),
]



def main(src):
    tensors, manifest = {}, {"transformers": version("transformers"), "torch": torch.__version__, "cases": {}}
    layer0_sources(src, tensors)
    for name, cfg in CASES:
        qc = FbgemmFp8Config(**{k: v for k, v in cfg.items() if k != "quant_method"})
        m = AutoModelForCausalLM.from_pretrained(src, quantization_config=qc, device_map="cpu", dtype=torch.float32)
        manifest["cases"][name] = {"config": cfg, **saved_case(m, name, tensors)}
    # The run-time input quantization (scale_ub = activation_scale_ub), dequantized: e4m3(x / s) · s per row.
    torch.manual_seed(19)
    x = (torch.randn(6, 64) * torch.tensor([0.01, 0.3, 1.0, 4.0, 30.0, 0.0]).view(6, 1)).bfloat16()
    tensors["act/x"] = x.float().contiguous()
    for ub in (1200.0, 2.5):
        q, s = quantize_fp8_per_row(x, scale_ub=torch.tensor([ub]))
        tensors[f"act/ub{ub}"] = (q.float() * s.unsqueeze(-1)).contiguous()
    save_cases(OUT, tensors, manifest)


if __name__ == "__main__":
    main(sys.argv[1])
