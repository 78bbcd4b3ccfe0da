#!/usr/bin/env python3
# bitsandbytes 4-bit (NF4/FP4, with and without double quant) and LLM.int8 vectors for @llmq/serialization.
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_bnb_fixtures.py
#
# Versions used: bitsandbytes 0.50.2 (CPU), torch 2.13.0. Quantized with bitsandbytes.functional.quantize_4bit /
# int8_vectorwise_quant; the tensors are stored under the names Params4bit._save_to_state_dict gives them
# (`<m>.weight` + `<m>.weight.<k>` for each k of quant_state.as_dict(packed=True), the quant_state JSON as uint8 bytes)
# and Int8Params (`<m>.weight` int8, `<m>.SCB`); the expected weight is bitsandbytes' own dequantization, widened to
# f32 from the quant_state dtype: for 4-bit its reference (default-backend, pure torch) `_dequantize_4bit_compute`
# with the absmax that functional.dequantize_4bit builds (double quant: `_dequantize_blockwise_compute` + offset), the
# same math as its CUDA kernels. bitsandbytes 0.50.2's CPU C kernel (cdequantize_blockwise_cpu_*) disagrees when a
# row is not a whole number of blocks (e.g. 80 columns, blocksize 64: max error 0.10 vs 0.019) — a bitsandbytes bug;
# the manifest records per case whether functional.dequantize_4bit on this CPU matched.
#
# Outputs (packages/serialization/fixtures/bnb/): cases.safetensors, manifest.json.
import json
import os

import torch
from importlib.metadata import version
from fixture_cases import save_cases

import bitsandbytes.functional as F
from bitsandbytes.backends.default.ops import _dequantize_4bit_compute, _dequantize_blockwise_compute

assert version("bitsandbytes") == "0.50.2", version("bitsandbytes")
OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "bnb")
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(14)
tensors, manifest = {}, {"bitsandbytes": version("bitsandbytes"), "torch": torch.__version__, "cases": {}}
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def case4(name, quant_type, nested, dtype, shape, blocksize):
    w = (torch.randn(shape) * 0.05).to(DT[dtype])
    w.view(-1)[:blocksize] = 0  # an all-zero block
    q, st = F.quantize_4bit(w, blocksize=blocksize, quant_type=quant_type, compress_statistics=nested)
    absmax = st.absmax
    if st.nested:
        absmax = _dequantize_blockwise_compute(absmax.reshape(-1), st.state2.absmax, st.state2.code, st.state2.blocksize, torch.float32) + st.offset
    expected = _dequantize_4bit_compute(q.reshape(-1), absmax.float(), st.code, blocksize, st.shape, st.dtype).float()
    cpu_kernel_agrees = torch.equal(F.dequantize_4bit(q, st).float(), expected)
    tensors[f"{name}.weight"] = q
    for k, v in st.as_dict(packed=True).items():
        tensors[f"{name}.weight.{k}"] = v
    tensors[f"{name}.expected"] = expected.contiguous()
    manifest["cases"][name] = {"kind": "4bit", "quant_type": quant_type, "nested": nested, "dtype": dtype, "shape": list(shape), "blocksize": blocksize, "cpu_kernel_agrees": cpu_kernel_agrees}


for quant_type in ("nf4", "fp4"):
    for nested in (False, True):
        for dtype in ("float32", "bfloat16", "float16"):
            case4(f"{quant_type}_{'dq' if nested else 'plain'}_{dtype}", quant_type, nested, dtype, (48, 80), 64)
case4("nf4_dq_bfloat16_odd", "nf4", True, "bfloat16", (33, 51), 128)
case4("fp4_plain_float16_rem", "fp4", False, "float16", (33, 50), 64)
case4("nf4_dq_float32_aligned", "nf4", True, "float32", (16, 128), 64)

for name, shape in (("int8_a", (48, 80)), ("int8_b", (17, 33))):
    w = torch.randn(shape).half()
    w[0, 0] = 9.0  # a large value: its row's scale
    cb, scb, _ = F.int8_vectorwise_quant(w)
    tensors[f"{name}.weight"] = cb
    tensors[f"{name}.SCB"] = scb
    tensors[f"{name}.expected"] = F.int8_vectorwise_dequant(cb, scb).float().contiguous()
    manifest["cases"][name] = {"kind": "int8", "shape": list(shape)}

save_cases(OUT, tensors, manifest)
