#!/usr/bin/env python3
# AQLM linears for @llmq/serialization, dequantized by aqlm's own _dequantize_weight.
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_aqlm_fixtures.py
#
# Codebooks of 2^10 (not the usual 2^16, to keep the fixture small; the int16 two's-complement path is the same).
# Versions used: aqlm 1.1.7 (installed --no-deps; only aqlm.utils is used), torch 2.13.0. Codes are random, stored as
# aqlm.utils.pack_int_data does (two's complement in the smallest int type), codebooks and scales random; the expected
# weight is aqlm.utils._dequantize_weight(unpack_int_data(codes), codebooks, scales) (embedding_bag sum over the
# codebooks, times the per-output-group scale), widened to f32. float32 and float16 codebooks (what AQLM checkpoints
# use); torch's CPU embedding_bag for bfloat16 differs from an f32-accumulated sum by up to 1 bf16 ulp (its own
# vectorized path), so bfloat16 is not claimed bit-exact.
#
# Outputs (packages/serialization/fixtures/aqlm/): cases.safetensors, manifest.json.
import json
import os
from importlib.metadata import version

import torch
from aqlm.utils import _dequantize_weight, pack_int_data, unpack_int_data
from fixture_cases import save_cases

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "aqlm")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(14)
tensors, manifest = {}, {"aqlm": version("aqlm"), "torch": torch.__version__, "cases": {}}
DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

for name, n, k, og, ig, nc, nbits, dtype in (
    ("1x10_g8_f32", 32, 64, 1, 8, 1, 10, "float32"),
    ("2x8_g8_f32", 32, 64, 1, 8, 2, 8, "float32"),
    ("4x8_og2_ig4_f32", 16, 32, 2, 4, 4, 8, "float32"),
    ("1x10_g8_f16", 32, 64, 1, 8, 1, 10, "float16"),
    ("2x8_g8_f16", 32, 64, 1, 8, 2, 8, "float16"),
    ("4x8_g8_f16", 16, 64, 1, 8, 4, 8, "float16"),
):
    codes = torch.randint(0, 2**nbits, (n // og, k // ig, nc), dtype=torch.int64)
    codebooks = (torch.randn(nc, 2**nbits, og, ig) * 0.3).to(DT[dtype])
    scales = (torch.rand(n // og, 1, 1, 1) + 0.5).to(DT[dtype])
    stored = pack_int_data(codes.clone(), nbits)
    expected = _dequantize_weight(unpack_int_data(stored, nbits), codebooks, scales)
    tensors.update({f"{name}.codes": stored, f"{name}.codebooks": codebooks, f"{name}.scales": scales, f"{name}.expected": expected.float().contiguous()})
    manifest["cases"][name] = {"shape": [n, k], "out_group_size": og, "in_group_size": ig, "num_codebooks": nc, "nbits_per_codebook": nbits, "dtype": dtype}

save_cases(OUT, tensors, manifest)
