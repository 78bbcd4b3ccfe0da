#!/usr/bin/env python3
"""hqq reads the HQQ directory `llmq quantize --hf-config '{"quant_method": "hqq", ...}'` writes.

Command (run by packages/llmq/src/hf-quantize.test.ts when LLMQ_PYTHON is set):
    $LLMQ_PYTHON tools/check_hqq_dir.py <llmq_dir> <llmq_weights.safetensors>

transformers 5.24 cannot load HQQ checkpoints (its HqqHfQuantizer has no load ops), so each quantized module is loaded
the way its 4.x integration did: an HQQLinear (hqq 0.2.8.post1) built empty and given the module's state dict; its
dequantize() must equal llmq's dequantized weight (what llmq's reader gives, written by the test) bit for bit.
Prints a JSON summary; exits 1 on a failure.
"""
import json
import os
import sys

import torch
from hqq.core.quantize import HQQLinear
from safetensors.torch import load_file


def main(d, weights):
    sd = load_file(os.path.join(d, "model.safetensors"))
    ours = load_file(weights)
    with open(os.path.join(d, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    modules = sorted({k[: -len(".W_q")] for k in sd if k.endswith(".W_q")})
    bad = []
    for m in modules:
        part = {k[len(m) + 1:]: v for k, v in sd.items() if k.startswith(m + ".")}
        h = HQQLinear(None, qc["quant_config"], compute_dtype=torch.float32, device="cpu", initialize=False)
        h.load_state_dict(part)
        w = h.dequantize().float()
        if not torch.equal(w, ours[m + ".weight"]):
            bad.append(f"{m}: max |diff| {(w - ours[m + '.weight']).abs().max().item()}")
    report = {"modules": len(modules), "mismatches": bad, "ok": len(modules) > 0 and not bad}
    print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
