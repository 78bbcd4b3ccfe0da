#!/usr/bin/env python3
# FP8 checkpoint vectors for @llmq/serialization: transformers' FineGrainedFP8 (quant_method "fp8": e4m3 weight +
# weight_scale_inv per block) and FBGEMM per-row FP8 (quant_method "fbgemm_fp8": e4m3 weight + weight_scale [N, 1]).
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_fp8_fixtures.py
#
# Versions used: transformers 5.24.0, torch 2.13.0. Expected fine-grained weights come from transformers' own
# integrations.finegrained_fp8.Fp8Dequantize._dequantize_one (the loader's dequantize=True path) with output dtype
# float32; FBGEMM has no CPU dequantizer (fbgemm-gpu is CUDA only), so its expected weight is `q.to(float32) *
# weight_scale` in torch, the product FbgemmFp8Linear's kernel defines per row [formats.md §6: inferred].
#
# Outputs (packages/serialization/fixtures/fp8/): cases.safetensors, manifest.json.
import json
import os

import torch
from fixture_cases import save_cases
from transformers import __version__ as tf_version
from transformers.integrations.finegrained_fp8 import Fp8Dequantize

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "fp8")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(14)
tensors, manifest = {}, {"transformers": tf_version, "torch": torch.__version__, "cases": {}}
deq = Fp8Dequantize(None)

for name, shape, grid, ue8m0 in (
    ("fp8_block128", (256, 384), (2, 3), False),
    ("fp8_block_1x32", (16, 64), (16, 2), False),
    ("fp8_per_tensor", (24, 40), (1, 1), False),
    ("fp8_ue8m0", (64, 96), (2, 3), True),
):
    q = (torch.randn(shape) * 100).clamp(-448, 448).to(torch.float8_e4m3fn)
    s = torch.randint(110, 130, grid, dtype=torch.uint8) if ue8m0 else torch.rand(grid) * 0.01 + 1e-4
    tensors[f"{name}.weight"] = q
    tensors[f"{name}.weight_scale_inv"] = s
    tensors[f"{name}.expected"] = deq._dequantize_one(q, s, output_dtype=torch.float32).contiguous()
    manifest["cases"][name] = {"method": "fp8", "shape": list(shape), "grid": list(grid), "ue8m0": ue8m0}

q = (torch.randn(48, 80) * 50).to(torch.float8_e4m3fn)
s = torch.rand(48, 1) * 0.01
tensors["fbgemm.weight"] = q
tensors["fbgemm.weight_scale"] = s
tensors["fbgemm.expected"] = (q.to(torch.float32) * s).contiguous()
manifest["cases"]["fbgemm"] = {"method": "fbgemm_fp8", "shape": [48, 80]}

save_cases(OUT, tensors, manifest)
