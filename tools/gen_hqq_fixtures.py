#!/usr/bin/env python3
# HQQ linears for @llmq/serialization, quantized and dequantized by hqq itself (CPU).
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_hqq_fixtures.py
#
# Versions used: hqq 0.2.8.post1 (+ termcolor, its one missing import), torch 2.13.0. Each case is an HQQLinear
# (BaseQuantizeConfig nbits/group_size/axis/view_as_float, the given compute dtype, device cpu); its state_dict() is
# stored under `<case>.<key>` (the keys transformers saves per module) and the expected weight is
# HQQLinear.dequantize() widened to f32.
#
# Outputs (packages/serialization/fixtures/hqq/): cases.safetensors, manifest.json.
import json
import os
from importlib.metadata import version

import torch
from hqq.core.quantize import BaseQuantizeConfig, HQQLinear
from fixture_cases import save_cases

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "hqq")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(14)
tensors, manifest = {}, {"hqq": version("hqq"), "torch": torch.__version__, "cases": {}}
DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

for name, nbits, gs, axis, dtype, vaf in (
    ("b8_g64_ax1_f32", 8, 64, 1, "float32", False),
    ("b4_g64_ax1_f32", 4, 64, 1, "float32", False),
    ("b3_g64_ax1_f32", 3, 64, 1, "float32", False),
    ("b2_g32_ax1_f32", 2, 32, 1, "float32", False),
    ("b1_g32_ax1_f32", 1, 32, 1, "float32", False),
    ("b4_g64_ax0_f32", 4, 64, 0, "float32", False),
    ("b3_g64_ax0_f32", 3, 64, 0, "float32", False),
    ("b4_g64_ax1_f16", 4, 64, 1, "float16", False),
    ("b4_g128_ax1_bf16", 4, 128, 1, "bfloat16", False),
    ("b4_g64_ax1_f16_vaf", 4, 64, 1, "float16", True),
):
    lin = torch.nn.Linear(256, 48, bias=False)
    lin.weight.data = torch.randn(48, 256) * 0.05
    cfg = BaseQuantizeConfig(nbits=nbits, group_size=gs, axis=axis, view_as_float=vaf)
    h = HQQLinear(lin, cfg, compute_dtype=DT[dtype], device="cpu")
    for k, v in h.state_dict().items():
        if isinstance(v, torch.Tensor):
            tensors[f"{name}.{k}"] = v.contiguous()
    tensors[f"{name}.expected"] = h.dequantize().float().contiguous()
    manifest["cases"][name] = {"nbits": nbits, "group_size": gs, "axis": axis, "compute_dtype": dtype, "view_as_float": vaf, "shape": [48, 256]}

save_cases(OUT, tensors, manifest)
