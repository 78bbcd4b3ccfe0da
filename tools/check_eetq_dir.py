#!/usr/bin/env python3
"""EETQ's own code remakes the EETQ directory `llmq quantize --hf-config '{"quant_method": "eetq", ...}'` writes.

    $LLMQ_PYTHON tools/check_eetq_dir.py <dense_dir> <llmq_eetq_dir> /tmp/kernels-community   # checkout: tools/README.md

transformers cannot load an EETQ checkpoint without a CUDA GPU (EetqHfQuantizer.validate_environment, EETQ's GEMM), so
this replays its quantize-on-load step instead: the modules transformers' EetqHfQuantizer converts (its
get_modules_to_not_convert + should_convert_module over the dense checkpoint's linears), and for each one EETQ's
quant_weights (cutlass_preprocessors.cc via tools/eetq_harness, SM 80) on torch.t(weight) as EetqQuantize calls it.
Checks config.json's quantization_config = EetqConfig.from_dict(...).to_dict(), the tensor names (`weight`,
`weight_scales`), dtypes, shapes and bytes, and that every other tensor is the dense one in the load dtype
(config.json's torch_dtype: float32 or float16).
Prints a JSON summary; exits 1 on a failure.
"""
import json
import os
import sys

import torch
from safetensors.torch import load_file
from transformers import EetqConfig
from transformers.quantizers.quantizers_utils import should_convert_module

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from gen_eetq_fixtures import build, run  # noqa: E402


def main(dense_dir, d, kc):
    exe = build(kc)
    dense = load_file(os.path.join(dense_dir, "model.safetensors"))
    sd = load_file(os.path.join(d, "model.safetensors"))
    with open(os.path.join(d, "config.json")) as f:
        cfg = json.load(f)
    qc = cfg["quantization_config"]
    bad = []
    if EetqConfig.from_dict(qc).to_dict() != qc:
        bad.append("quantization_config is not EetqConfig.to_dict()")
    skip = qc.get("modules_to_not_convert")
    if skip is None:  # get_keys_to_not_convert on a Llama: the output head (tied or not)
        skip = ["lm_head"]
    linears = [k[: -len(".weight")] for k, v in dense.items() if k.endswith("proj.weight") or k == "lm_head.weight"]
    convert = [m for m in linears if should_convert_module(m, skip)]
    # The load dtype (float32 or float16, the dtype EETQ returns scales in): config.json's torch_dtype.
    dtype = {"float16": torch.float16}.get(cfg.get("torch_dtype", cfg.get("dtype")), torch.float32)
    for m in convert:
        w = dense[m + ".weight"].to(dtype)
        kn = torch.t(w).contiguous().numpy()
        made = run(exe, kn, 80)
        if isinstance(made, str):
            bad.append(f"{m}: EETQ refuses it: {made}")
            continue
        _, processed, scales = made
        got_w, got_s = sd.get(m + ".weight"), sd.get(m + ".weight_scales")
        if got_w is None or got_s is None or got_w.dtype != torch.int8 or got_s.dtype != dtype:
            bad.append(f"{m}: weight / weight_scales missing or of the wrong dtype")
        elif not (torch.equal(got_w, torch.from_numpy(processed.copy())) and torch.equal(got_s, torch.from_numpy(scales.copy()))):
            bad.append(f"{m}: bytes differ from EETQ's quant_weights")
    done = {m + ".weight" for m in convert} | {m + ".weight_scales" for m in convert}
    for k, v in sd.items():
        if k not in done and (k not in dense or not torch.equal(v, dense[k].to(dtype) if dense[k].is_floating_point() else dense[k])):
            bad.append(f"{k}: not the dense tensor")
    report = {"converted": len(convert), "kept": len(linears) - len(convert), "mismatches": bad, "ok": len(convert) > 0 and not bad}
    print(json.dumps(report))
    sys.exit(0 if report["ok"] else 1)


if __name__ == "__main__":
    main(*sys.argv[1:4])
