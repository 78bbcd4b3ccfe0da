#!/usr/bin/env python3
"""transformers loads what `llmq quantize --hf-config` writes for GPTQConfig / AwqConfig and runs it on the CPU.

Command (run by packages/llmq/src/hf-calibrated.test.ts when LLMQ_PYTHON is set and gptqmodel imports):
    $LLMQ_PYTHON tools/check_gptq_awq_load.py <llmq_dir> <llmq_logits.safetensors>

transformers 5.24 loads GPTQ and AWQ checkpoints through GPTQModel (and optimum for GPTQ); GPTQModel 7.7.0 is pure
Python with CPU kernels compiled on first use (torch.utils.cpp_extension, cached under ~/.cache/gptqmodel), so it
runs here once installed with tools/requirements-gptqmodel.txt. The model is loaded with
from_pretrained(<llmq_dir>, device_map="cpu", dtype=torch.float32): GPTQModel's own quantized linears (the kernel it
selects is reported) dequantize llmq's packed codes, and the whole forward runs in f32 as llmq's does. Its logits on
llmq's token windows must match llmq's own (llmq's forward on the same directory): max|a-b| / max|b| <= 1e-4.
Prints a JSON summary; exits 1 on a failure.
"""
import json
import sys
import warnings

import torch
import transformers
from fixture_cases import logits_rel_diff
from transformers import AutoModelForCausalLM

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")


def main(ours, logits_file):
    model = AutoModelForCausalLM.from_pretrained(ours, device_map="cpu", dtype=torch.float32)
    kernels = sorted({type(m).__name__ for m in model.modules() if hasattr(m, "qweight")})
    rel = logits_rel_diff(model, logits_file)
    quantized = sum(1 for m in model.modules() if hasattr(m, "qweight"))
    report = {"kernels": kernels, "quantized_linears": quantized, "logits_rel_diff": rel,
              "gptqmodel": __import__("gptqmodel").__version__, "transformers": transformers.__version__}
    report["ok"] = bool(quantized > 0 and rel <= 1e-4)
    print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main(*sys.argv[1:3])
