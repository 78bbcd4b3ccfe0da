#!/usr/bin/env python3
# transformers' TorchAoConfig quantize-on-load + save_pretrained on stories260K (torchao 0.18's Int8Tensor), as
# @llmq/hf-quantizers must reproduce it: per case the TorchAoConfig dict, the load dtype, config.json's saved
# quantization_config, the safetensors header of model.safetensors (its __metadata__ as a map: the torchao per-tensor
# JSON, "tensor_names", "format"; every tensor entry with dtype / shape / data_offsets; the header length), the
# sha256 of the whole data section (every tensor's bytes in layout order), and every tensor saved for layer 0's
# linears with the dense source weights they came from (and Int8Tensor.dequantize(float32) of each in one case);
# and Int8Tensor.from_hp on a few activations (dynamic activation quantization), dequantized.
#
# Command (from the repo root; deterministic except the __metadata__ key order, which safetensors' Rust HashMap
# shuffles per process — the manifest keeps it as a map):
#   node packages/llmq/dist/cli.js convert --from llama2c fixtures/stories260K/stories260K.bin \
#     --tokenizer fixtures/stories260K/tok512.bin --output /tmp/s260
#   $LLMQ_PYTHON tools/gen_torchao_fixtures.py /tmp/s260
#
# Versions: transformers 5.24.0, torchao 0.18.0, torch 2.13.0 (CPU). Int4WeightOnlyConfig is not among the cases: on
# CPU torchao 0.18 cannot make any of its int4 layouts (plain / preshuffled need mslk, plain_int32 has no CPU path,
# tile_packed_to_4d needs bfloat16 and CUDA's _convert_weight_to_int4pack); this script records those errors.
#
# Outputs (packages/hf-quantizers/fixtures/torchao/): cases.safetensors, manifest.json.
import json
import os
import sys
import warnings
from importlib.metadata import version

import torch
import transformers
from transformers import AutoModelForCausalLM, TorchAoConfig
from transformers.quantizers.auto import AutoQuantizationConfig
from fixture_cases import layer0_sources, save_cases, saved_case

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")
assert version("torchao") == "0.18.0", version("torchao")
from torchao.quantization import Int4WeightOnlyConfig, quantize_  # noqa: E402

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "hf-quantizers", "fixtures", "torchao")
DT = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
PER_ROW = {"_type": "PerRow", "_version": 1, "_data": {"dim": -1}}
PER_TENSOR = {"_type": "PerTensor", "_version": 1, "_data": {}}


def ao(t, **data):
    return {"quant_method": "torchao", "quant_type": {"default": {"_type": t, "_version": 2, "_data": data}}}


DEQUANTIZED = ("int8wo-group4",)
WO, DYN = "Int8WeightOnlyConfig", "Int8DynamicActivationInt8WeightConfig"
CASES = [
    ("int8wo", ao(WO), "float32"),
    ("int8wo-bf16", ao(WO), "bfloat16"),
    ("int8wo-f16-tensor", ao(WO, granularity=PER_TENSOR), "float16"),
    ("int8wo-group4", ao(WO, granularity={"_type": "PerGroup", "_version": 1, "_data": {"group_size": 4}}), "float32"),
    # should_convert_module sees the parameter name ("….mlp.down_proj.weight"): "mlp.down_proj" matches nothing (neither
    # a prefix nor a suffix of it), "model.layers.1" skips layer 1, "up_proj.weight" every up_proj.
    ("int8wo-skip", {**ao(WO), "modules_to_not_convert": ["mlp.down_proj", "model.layers.1", "up_proj.weight"]}, "float32"),
    ("int8dyn", ao(DYN), "float32"),
    ("int8dyn-bf16-asym-rr", ao(DYN, act_mapping_type={"_type": "MappingType", "_data": "ASYMMETRIC"}, reduce_range=True), "bfloat16"),
    ("int8dyn-tensor", ao(DYN, granularity=[PER_ROW, PER_TENSOR]), "float32"),
]



def int4_errors():
    """What torchao 0.18 says for each int4 packing format on this CPU."""
    out = {}
    for fmt in ("plain", "preshuffled", "plain_int32", "tile_packed_to_4d"):
        for dt in (torch.float32, torch.bfloat16):
            lin = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False, dtype=dt))
            try:
                quantize_(lin, Int4WeightOnlyConfig(group_size=32, int4_packing_format=fmt))
                out[f"{fmt}/{dt}"] = "ok"
            except Exception as e:  # noqa: BLE001 — the message is the record
                out[f"{fmt}/{dt}"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return out


def act_cases(tensors, manifest):
    """Int8Tensor.from_hp on activations [1, 6, 64] (the act_quant_kwargs path of torchao's int8 linear), dequantized."""
    from torchao.quantization import MappingType, PerRow, PerTensor
    from torchao.quantization.quantize_.workflows.int8.int8_tensor import Int8Tensor
    torch.manual_seed(19)
    x = torch.randn(1, 6, 64) * torch.tensor([0.01, 0.3, 1.0, 4.0, 30.0, 0.5]).view(1, 6, 1)
    x[0, 5] = x[0, 5].abs()  # a token with no negative value (asymmetric zero point at qmin)
    tensors["act/x"] = x.contiguous()
    manifest["activations"] = {}
    for name, gran, mapping, rr in (("sym-token", PerRow(), MappingType.SYMMETRIC, False), ("asym-token", PerRow(), MappingType.ASYMMETRIC, False),
                                    ("asym-token-rr", PerRow(), MappingType.ASYMMETRIC, True), ("sym-tensor", PerTensor(), MappingType.SYMMETRIC, False)):
        t = Int8Tensor.from_hp(x, gran, mapping_type=mapping, reduce_range=rr)
        tensors[f"act/{name}"] = t.dequantize(torch.float32).contiguous()
        manifest["activations"][name] = {"per_token": isinstance(gran, PerRow), "symmetric": mapping == MappingType.SYMMETRIC, "reduce_range": rr}


def main(src):
    tensors, manifest = {}, {"transformers": version("transformers"), "torchao": version("torchao"), "torch": torch.__version__,
                             "cases": {}, "int4_on_cpu": int4_errors()}
    layer0_sources(src, tensors)
    for name, cfg, dtype in CASES:
        qc = AutoQuantizationConfig.from_dict(cfg)
        assert isinstance(qc, TorchAoConfig)
        m = AutoModelForCausalLM.from_pretrained(src, quantization_config=qc, device_map="cpu", dtype=DT[dtype])
        for mod, sub in m.named_modules():
            w = getattr(sub, "weight", None)
            if name in DEQUANTIZED and mod.startswith("model.layers.0.") and w.__class__.__name__ == "Int8Tensor":
                tensors[f"{name}/dequantized/{mod}"] = w.dequantize(torch.float32).contiguous()  # Int8Tensor.dequantize
        manifest["cases"][name] = {"config": cfg, "dtype": dtype, **saved_case(m, name, tensors)}
    act_cases(tensors, manifest)
    save_cases(OUT, tensors, manifest)


if __name__ == "__main__":
    main(sys.argv[1])
