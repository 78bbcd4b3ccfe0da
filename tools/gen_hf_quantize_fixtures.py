#!/usr/bin/env python3
# transformers' quantize-on-load + save_pretrained on stories260K, as @llmq/hf-quantizers must reproduce it: per case
# the BitsAndBytesConfig dict, the load dtype, config.json's saved quantization_config, which linears were converted,
# and every tensor transformers saved for layer 0's linears (plus the dense source weights they came from).
#
# Command (from the repo root; deterministic; needs the stories260K HF directory llmq converts):
#   node packages/llmq/dist/cli.js convert --from llama2c fixtures/stories260K/stories260K.bin \
#     --tokenizer fixtures/stories260K/tok512.bin --output /tmp/s260
#   $LLMQ_PYTHON tools/gen_hf_quantize_fixtures.py /tmp/s260
#
# Versions: transformers 5.24.0, bitsandbytes 0.50.2 (CPU: 4-bit quantization runs its default pure-torch backend;
# double quant's 8-bit step runs its CPU C kernel), torch 2.13.0.
#
# Outputs (packages/hf-quantizers/fixtures/quantize-on-load/): cases.safetensors, manifest.json.
import json
import os
import sys
import tempfile
import warnings
from importlib.metadata import version

import torch
import transformers
from safetensors import safe_open
from transformers import AutoModelForCausalLM, BitsAndBytesConfig, HqqConfig
from hqq.core.quantize import HQQLinear
from fixture_cases import save_cases

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")
OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "hf-quantizers", "fixtures", "quantize-on-load")
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

CASES = [
    ("nf4", {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4"}, "float32"),
    ("nf4-dq", {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True}, "float32"),
    ("fp4", {"load_in_4bit": True}, "float32"),
    ("fp4-dq-f16", {"load_in_4bit": True, "bnb_4bit_use_double_quant": True, "bnb_4bit_compute_dtype": "float16"}, "float16"),
    ("nf4-dq-bf16", {"load_in_4bit": True, "bnb_4bit_quant_type": "nf4", "bnb_4bit_use_double_quant": True,
                     "bnb_4bit_compute_dtype": "bfloat16"}, "bfloat16"),
    ("int8", {"load_in_8bit": True}, "float32"),
    ("int8-bf16-skip", {"load_in_8bit": True, "llm_int8_skip_modules": ["mlp.down_proj", "lm_head"], "llm_int8_threshold": 4.0}, "bfloat16"),
]


# transformers 5.24 cannot quantize with HQQ on load (HqqHfQuantizer.get_quantize_ops raises "not available yet"):
# what its 4.x integration did per linear is HQQLinear(linear, quant_config, compute_dtype=<load dtype>) and
# save_pretrained stored HQQLinear.state_dict() under the module's name. That is run here with hqq 0.2.8.post1.
HQQ_CASES = [
    ("hqq-4bit-g64", {"nbits": 4, "group_size": 64}, "float32"),
    ("hqq-3bit-g32-axis0-bf16", {"nbits": 3, "group_size": 32, "axis": 0}, "bfloat16"),
    ("hqq-2bit-g16-f16", {"nbits": 2, "group_size": 16}, "float16"),
    ("hqq-8bit-g128-view", {"nbits": 8, "group_size": 128, "view_as_float": True}, "float32"),
]


def hqq_case(name, kw, dtype, tensors, manifest):
    cfg = HqqConfig(**kw)
    converted = []
    for k in sorted(t for t in tensors if t.startswith("src/")):
        module = k[len("src/"):-len(".weight")]
        w = tensors[k].to(DT[dtype])
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False, dtype=DT[dtype])
        lin.weight.data = w
        h = HQQLinear(lin, cfg.quant_config, compute_dtype=DT[dtype], device="cpu")
        for sk, v in h.state_dict().items():
            tensors[f"{name}/{module}.{sk}"] = v.contiguous()
        converted.append(module)
    manifest["cases"][name] = {"config": {"quant_method": "hqq", **kw}, "dtype": dtype, "quantization_config": json.loads(json.dumps(cfg.to_dict())),
                               "saved_dtype": dtype, "converted": converted, "keys": []}


def main(src):
    tensors, manifest = {}, {"transformers": version("transformers"), "bitsandbytes": version("bitsandbytes"),
                             "torch": torch.__version__, "cases": {}}
    with safe_open(os.path.join(src, "model.safetensors"), "pt") as f:
        for k in f.keys():
            if k.startswith("model.layers.0.") and k.endswith("_proj.weight"):
                tensors[f"src/{k}"] = f.get_tensor(k).contiguous()
    for name, cfg, dtype in CASES:
        m = AutoModelForCausalLM.from_pretrained(src, quantization_config=BitsAndBytesConfig(**cfg), device_map="cpu", dtype=DT[dtype])
        with tempfile.TemporaryDirectory() as d:
            m.save_pretrained(d)
            with open(os.path.join(d, "config.json")) as c:
                saved = json.load(c)
            with safe_open(os.path.join(d, "model.safetensors"), "pt") as f:
                keys = sorted(f.keys())
                for k in keys:
                    if k.startswith("model.layers.0.") and "_proj." in k:
                        tensors[f"{name}/{k}"] = f.get_tensor(k).contiguous()
        marks = (".weight_format", ".weight.quant_map")  # one per converted Linear8bitLt / Linear4bit
        converted = sorted(k[: -len(s)] for k in keys for s in marks if k.endswith(s))
        manifest["cases"][name] = {"config": cfg, "dtype": dtype, "quantization_config": saved["quantization_config"],
                                   "saved_dtype": saved.get("dtype"), "converted": converted, "keys": keys}
    for name, kw, dtype in HQQ_CASES:
        hqq_case(name, kw, dtype, tensors, manifest)
    manifest["hqq"] = version("hqq")
    save_cases(OUT, tensors, manifest)


if __name__ == "__main__":
    main(sys.argv[1])
