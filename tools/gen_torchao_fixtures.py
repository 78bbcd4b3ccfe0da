#!/usr/bin/env python3
# transformers' TorchAoConfig quantize-on-load + save_pretrained on stories260K (torchao 0.18's Int8Tensor and Int4Tensor), as
# @llmq/hf-quantizers must reproduce it: per case the TorchAoConfig dict, the load dtype, config.json's saved
# quantization_config, the safetensors header of model.safetensors (its __metadata__ as a map: the torchao per-tensor
# JSON, "tensor_names", "format"; every tensor entry with dtype / shape / data_offsets; the header length), the
# sha256 of the whole data section (every tensor's bytes in layout order), and every tensor saved for layer 0's
# linears with the dense source weights they came from (and Int8Tensor.dequantize(float32) of each in one case; for
# every Int4Tensor case torchao's own int4 dequantization, see int4_dequantized); and Int8Tensor.from_hp on a few
# activations (dynamic activation quantization), dequantized.
#
# Command (from the repo root; deterministic except the __metadata__ key order, which safetensors' Rust HashMap
# shuffles per process — the manifest keeps it as a map):
#   node packages/llmq/dist/cli.js convert --from llama2c fixtures/stories260K/stories260K.bin \
#     --tokenizer fixtures/stories260K/tok512.bin --output /tmp/s260
#   git clone https://github.com/meta-pytorch/MSLK /tmp/MSLK   # read at tools/mslk_shim.py's MSLK_COMMIT
#   LLMQ_MSLK=/tmp/MSLK $LLMQ_PYTHON tools/gen_torchao_fixtures.py /tmp/s260
#
# Versions: transformers 5.24.0, torchao 0.18.0, torch 2.13.0 (CPU), MSLK 2a3c897 (mslk/quantize/shuffle.py only).
# Int4WeightOnlyConfig's default int4_packing_format "plain" (Int4Tensor.from_hp) quantizes with mslk's
# int4_row_quantize_zp + pack_int4, pure torch: tools/mslk_shim.py puts MSLK's real shuffle.py on sys.path, and
# transformers' own quantize-on-load + save_pretrained then run unchanged on CPU (nothing is skipped or patched in
# transformers or torchao). The other int4 layouts still fail on CPU; this script records each one's error.
#
# Outputs (packages/hf-quantizers/fixtures/torchao/): cases.safetensors, manifest.json.
import json
import os
import sys
import warnings
from importlib.metadata import version

import mslk_shim

mslk_shim.install()  # before torchao is imported: Int4Tensor binds mslk's functions at import

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import AutoModelForCausalLM, TorchAoConfig  # noqa: E402
from transformers.quantizers.auto import AutoQuantizationConfig  # noqa: E402
from fixture_cases import layer0_sources, save_cases, saved_case  # noqa: E402

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
WO, DYN, W4 = "Int8WeightOnlyConfig", "Int8DynamicActivationInt8WeightConfig", "Int4WeightOnlyConfig"
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
    # Int4Tensor (packing "plain", qparams "tinygemm"). stories260K's in_features are 64 and 172 (down_proj): torchao
    # leaves a weight dense when in_features % group_size != 0 (group 32 / 64: down_proj; the default 128: every one).
    ("int4-bf16-g32", ao(W4, group_size=32), "bfloat16"),
    ("int4-g64-plain-str", ao(W4, group_size=64, int4_packing_format="plain"), "float32"),
    ("int4-f16-g4", ao(W4, group_size=4), "float16"),
    ("int4-default", ao(W4), "float32"),
]



def int4_errors():
    """What torchao 0.18 says for each int4 packing format (and the hqq qparams algorithm) on this CPU, mslk's shuffle.py
    importable: "ok" for plain (the cases above), the error for the rest."""
    out = {}
    for fmt, algo in (("plain", "tinygemm"), ("plain", "hqq"), ("preshuffled", "tinygemm"), ("plain_int32", "tinygemm"), ("tile_packed_to_4d", "tinygemm")):
        for dt in (torch.float32, torch.bfloat16):
            lin = torch.nn.Sequential(torch.nn.Linear(64, 32, bias=False, dtype=dt))
            try:
                quantize_(lin, Int4WeightOnlyConfig(group_size=32, int4_packing_format=fmt, int4_choose_qparams_algorithm=algo))
                out[f"{fmt}/{algo}/{dt}"] = "ok"
            except Exception as e:  # noqa: BLE001 — the message is the record
                out[f"{fmt}/{algo}/{dt}"] = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    return out


def int4_dequantized(weight, w, group_size):
    """Int4Tensor has no dequantize in torchao 0.18 (aten.dequantize is unimplemented; its only consumer is mslk's CUDA
    kernel, w = int4 · scale + zero). torchao's own dequantization of this layout is _int4_row_dequantize_zp (its
    GPTQ for Int4WeightOnlyConfig), on the unpacked int4 values: those come from mslk's int4_row_quantize_zp on the
    same load-dtype weight, checked to pack to the saved qdata. Scale and zero point are given as float32 (the stored
    dtype upcast), so the result is f32 with no rounding to the load dtype in between."""
    from mslk.quantize.shuffle import int4_row_quantize_zp, pack_int4
    from torchao.prototype.gptq.api import _int4_row_dequantize_zp
    q, _, _ = int4_row_quantize_zp(w.detach(), group_size)
    assert torch.equal(pack_int4(q), weight.qdata)
    return _int4_row_dequantize_zp(q, weight.scale.float(), weight.zero_point.float(), group_size).contiguous()


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
        dense = AutoModelForCausalLM.from_pretrained(src, device_map="cpu", dtype=DT[dtype]) if cfg["quant_type"]["default"]["_type"] == W4 else None
        for mod, sub in m.named_modules():
            w = getattr(sub, "weight", None)
            if not mod.startswith("model.layers.0."):
                continue
            if name in DEQUANTIZED and w.__class__.__name__ == "Int8Tensor":
                tensors[f"{name}/dequantized/{mod}"] = w.dequantize(torch.float32).contiguous()  # Int8Tensor.dequantize
            if w.__class__.__name__ == "Int4Tensor":
                tensors[f"{name}/dequantized/{mod}"] = int4_dequantized(w, dense.get_submodule(mod).weight, w.block_size[-1])
        manifest["cases"][name] = {"config": cfg, "dtype": dtype, **saved_case(m, name, tensors)}
    act_cases(tensors, manifest)
    save_cases(OUT, tensors, manifest)


if __name__ == "__main__":
    main(sys.argv[1])
