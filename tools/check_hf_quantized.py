#!/usr/bin/env python3
"""transformers reads what `llmq quantize --hf-config` writes, and writes the same thing itself.

Command (run by packages/llmq/src/hf-quantize.test.ts when LLMQ_PYTHON is set):
    $LLMQ_PYTHON tools/check_hf_quantized.py <fp_dir> <llmq_dir> <llmq_logits.safetensors> '<quantization_config json>'

(a) transformers quantizes <fp_dir> on load with the same config (from_pretrained(quantization_config=...,
    device_map="cpu", dtype=<llmq's dtype>)) and saves it; every tensor name, dtype and shape must equal llmq's, and
    every byte too except bitsandbytes' double-quant statistics (absmax codes, nested absmax, the quant_state's
    nested_offset: torch's SIMD mean is host-specific, and bitsandbytes' CPU C kernel picks a code a hair past the
    midpoint on near-ties where llmq, like bitsandbytes' pure-torch backend, takes the nearest): at most 2 % of those
    8-bit codes may differ (each such block's absmax moves one code step, so dequantized weights within 2e-2 of the
    module's max |w|); config.json's quantization_config must be equal.
(b) transformers loads <llmq_dir> (bitsandbytes' Linear4bit / Linear8bitLt from llmq's tensors); its logits on llmq's
    token windows must match llmq's (llmq's forward on the same directory, dequantized by @llmq/serialization):
    max|a-b| / max|b| <= 1e-4. bitsandbytes' CPU forward cannot run stories260K's shapes in 4-bit and LLM.int8
    quantizes activations at runtime, so the linears run on bitsandbytes' reference dequantization of the loaded
    tensors (the bnb modules' own weights), computing in f32 on the stored values as llmq's forward does.
Prints a JSON summary; exits 1 on a failure.
"""
import json
import os
import sys
import tempfile
import warnings

import torch
import transformers
from safetensors import safe_open
from safetensors.torch import load_file
from fixture_cases import logits_rel_diff
from transformers import AutoModelForCausalLM
from transformers.quantizers.auto import AutoQuantizationConfig

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")
DQ_STATS = (".weight.absmax", ".weight.nested_absmax", ".weight.quant_state.bitsandbytes__nf4", ".weight.quant_state.bitsandbytes__fp4")
DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def dequantized_linears(model):
    """Each bitsandbytes linear's weight, f32, by bitsandbytes' reference (pure-torch) dequantization: its CPU C
    kernel is wrong when a row is not a whole number of blocks (stories260K's 172), see gen_bnb_fixtures.py."""
    from bitsandbytes.backends.default.ops import _dequantize_4bit_compute, _dequantize_blockwise_compute
    out = {}
    for name, m in model.named_modules():
        w = getattr(m, "weight", None)
        st = getattr(w, "quant_state", None)
        if st is not None:
            absmax = st.absmax
            if st.nested:
                absmax = _dequantize_blockwise_compute(absmax.reshape(-1), st.state2.absmax, st.state2.code, st.state2.blocksize, torch.float32) + st.offset
            out[name] = _dequantize_4bit_compute(w.data.reshape(-1), absmax.float(), st.code, st.blocksize, st.shape, st.dtype).float()
        elif getattr(w, "SCB", None) is not None:
            out[name] = (w.data.float() * w.SCB.float().unsqueeze(1)) * (1.0 / 127.0)
    return out


def compare_dirs(ours, theirs, report):
    a = load_file(os.path.join(ours, "model.safetensors"))
    b = load_file(os.path.join(theirs, "model.safetensors"))
    report["tensor_names_equal"] = sorted(a) == sorted(b)
    bad = []
    codes = [0, 0]
    for k in sorted(set(a) & set(b)):
        if k.endswith(DQ_STATS):
            if a[k].dtype == torch.uint8 and k.endswith(".weight.absmax"):
                codes[0] += int((a[k] != b[k]).sum())
                codes[1] += a[k].numel()
            continue
        if a[k].dtype != b[k].dtype or a[k].shape != b[k].shape:
            bad.append(f"{k}: {a[k].dtype}{tuple(a[k].shape)} vs {b[k].dtype}{tuple(b[k].shape)}")
        elif not torch.equal(a[k].view(torch.uint8) if a[k].dim() else a[k], b[k].view(torch.uint8) if b[k].dim() else b[k]):
            bad.append(f"{k}: bytes differ")
    report["tensor_mismatches"] = bad
    report["double_quant_absmax_codes_differing"] = codes
    with open(os.path.join(ours, "config.json")) as f, open(os.path.join(theirs, "config.json")) as g:
        report["quantization_config_equal"] = json.load(f)["quantization_config"] == json.load(g)["quantization_config"]


def main(fp_dir, ours, logits_file, qc_json):
    qc = json.loads(qc_json)
    report = {"config": qc}
    with open(os.path.join(ours, "config.json")) as f:
        dtype = DT[json.load(f).get("torch_dtype") or "float32"]
    model = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=AutoQuantizationConfig.from_dict(qc), device_map="cpu", dtype=dtype)
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        compare_dirs(ours, d, report)
    theirs_w = dequantized_linears(model)
    loaded = AutoModelForCausalLM.from_pretrained(ours, device_map="cpu")
    ours_w = dequantized_linears(loaded)
    worst = 0.0
    for k, w in theirs_w.items():
        worst = max(worst, ((ours_w[k] - w).abs().max() / w.abs().max().clamp(min=1e-30)).item())
    report["dequantized_rel_diff"] = worst
    # bitsandbytes' CPU forward cannot run these shapes (4-bit: "N must be divisible by block_n" for 172 outputs) and
    # LLM.int8 quantizes activations at runtime: transformers' Llama runs on the dequantized weights instead.
    for name in ours_w:
        parent, child = name.rsplit(".", 1)
        m = loaded.get_submodule(name)
        lin = torch.nn.Linear(m.in_features, m.out_features, bias=False, dtype=dtype)
        lin.weight.data = ours_w[name].to(dtype)
        setattr(loaded.get_submodule(parent), child, lin)
    # llmq's forward computes in f32 on the stored (e.g. bf16) values; so does this one (the model is no longer
    # quantized once its linears are plain, but transformers' .float() guard still reads the flag).
    loaded.is_quantized = False
    loaded.hf_quantizer = None
    for p in loaded.parameters():
        p.data = p.data.float()
    for b in loaded.buffers():
        if b.is_floating_point():
            b.data = b.data.float()
    report["logits_rel_diff"] = rel = logits_rel_diff(loaded, logits_file)
    report["logits_route"] = "transformers' Llama on bitsandbytes' reference dequantization of llmq's tensors"
    codes = report["double_quant_absmax_codes_differing"]
    ok = (report["tensor_names_equal"] and not report["tensor_mismatches"] and report["quantization_config_equal"]
          and codes[0] <= 0.02 * max(codes[1], 1) and worst <= 2e-2 and rel <= 1e-4)
    report["ok"] = bool(ok)
    print(json.dumps(report))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(*sys.argv[1:5])
