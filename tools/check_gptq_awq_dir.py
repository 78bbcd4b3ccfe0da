#!/usr/bin/env python3
# A GPTQ or AWQ directory written by `llmq quantize --hf-config '{"quant_method": "gptq" | "awq", …}'` against the
# compressed-tensors checkpoint of the same run (HfQuantizeOptions.keepCompressedTensors), each dequantized by its own
# library:
#   GPTQ:               GPTQModel 7.7.0's model_dequant.convert_gptq_file (what GPTQModel / transformers load; v1
#                       zeros corrected as GPTQModel does), f32, loaded from the registry's sdist (gptqmodel does not
#                       install on a CPU-only machine: its GPU kernels must build), as tools/gen_gptq_awq_fixtures.py;
#   AWQ GEMM:           AutoAWQ 0.2.9's packing_utils.dequantize_gemm (f32 scales), from its sdist likewise (GEMV has
#                       no dequantizer in AutoAWQ: not checked here; llmq's GEMV packer is checked against AutoAWQ's
#                       from_linear bytes in packages/serialization's gptq-awq-pack.test.ts);
#   compressed-tensors: compressed-tensors 0.20's own compressor .decompress per module, scales widened to f32 so the
#                       product is exact (the checkpoint's fp16 scales are the GPTQ scales); with desc_act (act-order
#                       groups, weight_g_idx), which 0.20 cannot decompress, its unpack_from_int32 and (q − z)·s with
#                       column k in group g_idx[k].
# Prints one JSON line: {modules, equal, mismatched: {module: elements}, quant_method, checkpoint_format}.
#
# Command: $LLMQ_PYTHON tools/check_gptq_awq_dir.py <gptq or awq dir> <compressed-tensors dir>
import json
import os
import sys

import torch
from safetensors import safe_open
from sdist_modules import load_sdists

gptq_dir, ct_dir = sys.argv[1], sys.argv[2]
load_sdists("gptqmodel==7.7.0", "autoawq==0.2.9")
from awq.utils.packing_utils import dequantize_gemm  # noqa: E402
from gptqmodel.utils.model_dequant import convert_gptq_file  # noqa: E402

from compressed_tensors.compressors import BaseCompressor  # noqa: E402
from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32  # noqa: E402
from compressed_tensors.quantization import QuantizationConfig  # noqa: E402

qc = json.load(open(os.path.join(gptq_dir, "config.json")))["quantization_config"]
if qc["quant_method"] == "gptq":
    packed = convert_gptq_file(os.path.join(gptq_dir, "model.safetensors"), torch.float32, qc, "cpu")
else:
    assert qc["version"] == "gemm", "AutoAWQ has no GEMV dequantizer"
    packed = {}
    with safe_open(os.path.join(gptq_dir, "model.safetensors"), "pt") as f:
        for key in f.keys():
            if key.endswith(".qweight"):
                mod = key[: -len(".qweight")]
                w = dequantize_gemm(f.get_tensor(key), f.get_tensor(f"{mod}.qzeros"), f.get_tensor(f"{mod}.scales").float(), 4, qc["group_size"])
                packed[f"{mod}.weight"] = w.t()

raw = json.load(open(os.path.join(ct_dir, "config.json")))["quantization_config"]
# GPTQConfig desc_act is AutoGPTQ's act order (groups in activation order, g_idx stored), which compressed-tensors 0.20
# no longer accepts as an args value ("group"); the stored weight_g_idx carries it, so the label is dropped to validate.
for g in raw["config_groups"].values():
    if g["weights"].get("actorder") == "group":
        g["weights"]["actorder"] = None
ct_cfg = QuantizationConfig.model_validate(raw)
comp = BaseCompressor.get_value_from_registry(ct_cfg.format)
ct = {}
with safe_open(os.path.join(ct_dir, "model.safetensors"), "pt") as f:
    for key in f.keys():
        if key.endswith(".weight_packed"):
            mod = key[: -len(".weight_packed")]
            parts = {k.split(".")[-1]: f.get_tensor(k) for k in f.keys() if k.rsplit(".", 1)[0] == mod}
            parts["weight_scale"] = parts["weight_scale"].float()
            ct[mod] = parts

mismatched = {}
for mod, parts in ct.items():
    # every group of the run uses one scheme (the GPTQConfig's weights); the module's own group is the one whose
    # regex target names it
    scheme = next(g for g in ct_cfg.config_groups.values())
    if "weight_g_idx" in parts:
        # compressed-tensors 0.20 has no g_idx: its unpacker gives the codes, and column k uses group g_idx[k]
        bits, shape = scheme.weights.num_bits, torch.Size(parts["weight_shape"].tolist())
        q = unpack_from_int32(parts["weight_packed"], bits, shape).float()
        gi = parts["weight_g_idx"].long()
        zp = parts.get("weight_zero_point")
        z = 0.0 if zp is None else unpack_from_int32(zp, bits, torch.Size([shape[0], parts["weight_scale"].shape[1]]), packed_dim=0).float()[:, gi]
        w = (q - z) * parts["weight_scale"][:, gi]
    else:
        w = comp.decompress(dict(parts), scheme)["weight"].float()
    g = packed[f"{mod}.weight"].float()
    assert g.shape == w.shape, (mod, g.shape, w.shape)
    n = int((g != w).sum())
    if n:
        mismatched[mod] = n
print(json.dumps({"modules": len(ct), "equal": len(ct) - len(mismatched), "mismatched": mismatched, "quant_method": qc["quant_method"], "checkpoint_format": qc.get("checkpoint_format"), "version": qc.get("version")}))
