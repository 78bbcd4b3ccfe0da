#!/usr/bin/env python3
# HQQ quantizer references for @llmq/schemes' hqqQuantize: hqq's own Quantizer.quantize (half-quadratic proximal
# optimizer, CPU float32) on fixed random weights.
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_hqq_quantize_fixtures.py
#
# Versions used: hqq 0.2.8.post1 (+ termcolor), torch 2.13.0 CPU. Each case calls
# Quantizer.quantize(W, nbits, channel_wise, group_size, optimize, round_zero, axis, bitpack=False, device="cpu")
# and stores the input weight, the unpacked codes W_q (grouped shape), scale (1/s_inv) and zero as hqq returns them,
# plus the number of proximal iterations that ran (counted by wrapping the step function).
#
# Output: packages/schemes/fixtures/hqq-quantize.json (tensors as base64 of little-endian f32 bytes).
import base64
import json
import os
from importlib.metadata import version

import torch
import hqq.core.optimize as hopt
from hqq.core.quantize import Quantizer

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "schemes", "fixtures", "hqq-quantize.json")
torch.manual_seed(18)

steps = {"n": 0}
_step = hopt.optimize_weights_proximal_legacy_step


def counting_step(*a, **k):
    steps["n"] += 1
    return _step(*a, **k)


hopt.optimize_weights_proximal_legacy_step = counting_step


def wire(t: torch.Tensor, dtype=torch.float32) -> dict:
    t = t.detach().to(dtype).contiguous()
    return {"dtype": "u8" if dtype == torch.uint8 else "f32", "shape": list(t.shape), "b64": base64.b64encode(t.numpy().tobytes()).decode()}


def weight(kind: str, n: int, k: int) -> torch.Tensor:
    w = torch.randn(n, k) * 0.05
    if kind == "outliers":
        w[torch.rand(n, k) < 0.01] *= 25.0
    if kind == "flat":  # constant groups: denom <= 1e-4 takes scale 1.0
        w[:, :64] = 0.0125
    return w


cases = []
for name, kind, shape, kw in (
    ("b4_g64_ax1_rz", "randn", (8, 256), dict(nbits=4, group_size=64, axis=1, round_zero=True)),
    ("b4_g64_ax1", "randn", (8, 256), dict(nbits=4, group_size=64, axis=1)),
    ("b4_g128_ax1_outliers", "outliers", (8, 256), dict(nbits=4, group_size=128, axis=1, round_zero=True)),
    ("b4_g64_ax0", "randn", (8, 256), dict(nbits=4, group_size=64, axis=0)),
    ("b8_g64_ax1", "randn", (8, 256), dict(nbits=8, group_size=64, axis=1)),
    ("b3_g32_ax1", "randn", (8, 128), dict(nbits=3, group_size=32, axis=1)),
    ("b2_g32_ax1", "randn", (8, 128), dict(nbits=2, group_size=32, axis=1)),
    ("b1_g32_ax1", "randn", (8, 128), dict(nbits=1, group_size=32, axis=1)),
    ("b1.58_g64_ax1", "randn", (8, 128), dict(nbits=1.58, group_size=64, axis=1)),
    ("b4_gnone_ax1", "randn", (8, 128), dict(nbits=4, group_size=None, axis=1)),
    ("b4_g64_ax1_flat", "flat", (8, 256), dict(nbits=4, group_size=64, axis=1)),
    ("b4_g64_ax1_noopt", "randn", (8, 256), dict(nbits=4, group_size=64, axis=1, optimize=False)),
    ("b4_tensorwise", "randn", (8, 128), dict(nbits=4, group_size=64, axis=1, channel_wise=False)),
):
    w = weight(kind, *shape)
    steps["n"] = 0
    W_q, meta = Quantizer.quantize(w, bitpack=False, device="cpu", **kw)
    cases.append({
        "name": name,
        "kwargs": kw,
        "iterations": steps["n"],
        "weight": wire(w),
        "W_q": wire(W_q, torch.uint8),
        "scale": wire(meta["scale"]),
        "zero": wire(meta["zero"]),
    })

with open(OUT, "w") as f:
    json.dump({"meta": {"hqq": version("hqq"), "torch": torch.__version__}, "cases": cases}, f, indent=1)
    f.write("\n")
print(len(cases), "cases ->", OUT)
