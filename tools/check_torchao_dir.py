#!/usr/bin/env python3
"""transformers + torchao read what `llmq quantize --hf-config '{"quant_method": "torchao", ...}'` writes, and write
the same thing themselves.

Command (run by packages/llmq/src/hf-torchao.test.ts when LLMQ_PYTHON is set; Int4WeightOnlyConfig also needs
LLMQ_MSLK, a clone of https://github.com/meta-pytorch/MSLK — see tools/mslk_shim.py):
    $LLMQ_PYTHON tools/check_torchao_dir.py <fp_dir> <llmq_dir> <llmq_logits.safetensors> '<quantization_config json>' <save_dir> [<llmq_weights.safetensors>]

(a) transformers 5.24 quantizes <fp_dir> on load with the same TorchAoConfig (from_pretrained(quantization_config=...,
    device_map="cpu", dtype=<llmq's dtype>)) and saves it to <save_dir>: model.safetensors must equal llmq's byte for
    byte after the 8-byte length, except that the header's __metadata__ is compared as a map (safetensors' Rust
    HashMap writes its keys in a per-process order): same header length, same tensor entries (dtype, shape,
    data_offsets), same metadata, identical data section. config.json's quantization_config must be equal.
(b) transformers loads <llmq_dir> (torchao's Int8Tensor rebuilt from llmq's tensors and metadata) and runs its own
    forward on llmq's token windows: torchao's int8 linear (weight-only: x @ q.T * s; dynamic: per-token int8
    activations and an int8 matmul). Its logits must match llmq's (llmq's forward on the same directory, activations
    fake-quantized as torchao quantizes them): max|a-b| / max|b| <= 1e-4 for weight-only configs. Only for float32
    models (a bfloat16 model computes in bfloat16 in transformers, in f32 in llmq); the byte check (a) covers the others.
    Dynamic int8 activations cannot agree to 1e-4 between any two implementations: torchao's symmetric scale is
    amax / 127.5, so every token's largest |x| lands on x·(1/s) = ±127.5, a rounding tie (−127 or −128 for a negative
    one) decided by the last ulp of the activations; a 1-ulp change of every linear input moves stories260K's logits by
    ~1.7e-2 in torchao's own reference (Int8Tensor.from_hp + dequantize + f32 matmul), which itself is 2.4e-2 from
    torchao's int8 kernel. llmq's per-linear math is bit-exact given the same input (packages/hf-quantizers fixture
    test); here its logits must be within 5e-2, and the value is reported.
    Int4WeightOnlyConfig (Int4Tensor): transformers loads the directory on CPU, but its forward cannot run here (the
    linear is mslk's CUDA kernel torch.ops.mslk.bf16i4bf16_rowwise; the error is reported), so no logits are compared.
    Instead llmq's dequantized weights (<llmq_weights.safetensors>: llmq's reader on <llmq_dir>) must equal, bit for
    bit, torchao's own int4 dequantization (_int4_row_dequantize_zp, scale / zero point as f32) of every Int4Tensor
    transformers loaded; its int4 values are the stored nibbles, unpacked and checked to re-pack (mslk's pack_int4)
    to the stored qdata.
Prints a JSON summary; exits 1 on a failure.
"""
import json
import os
import struct
import sys
import warnings

if __name__ == "__main__" and json.loads(sys.argv[4])["quant_type"]["default"]["_type"] == "Int4WeightOnlyConfig":
    import mslk_shim

    mslk_shim.install()  # before torchao is imported

import torch  # noqa: E402
import transformers  # noqa: E402
from fixture_cases import logits_rel_diff  # noqa: E402
from transformers import AutoModelForCausalLM  # noqa: E402
from transformers.quantizers.auto import AutoQuantizationConfig  # noqa: E402

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")
DT = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def split(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    return n, json.loads(raw[8:8 + n]), raw[8 + n:]


def compare(ours, theirs, report):
    (na, ha, da), (nb, hb, db) = split(os.path.join(ours, "model.safetensors")), split(os.path.join(theirs, "model.safetensors"))
    ma, mb = ha.pop("__metadata__", {}), hb.pop("__metadata__", {})
    report["header_length"] = [na, nb]
    report["metadata_equal"] = ma == mb
    report["metadata_keys_differing"] = sorted(k for k in set(ma) | set(mb) if ma.get(k) != mb.get(k))[:5]
    report["entries_equal"] = ha == hb
    report["data_equal"] = da == db
    with open(os.path.join(ours, "config.json")) as f, open(os.path.join(theirs, "config.json")) as g:
        report["quantization_config_equal"] = json.load(f)["quantization_config"] == json.load(g)["quantization_config"]
    return na == nb and report["metadata_equal"] and report["entries_equal"] and report["data_equal"] and report["quantization_config_equal"]


def int4_check(loaded, weights_file, report):
    """llmq's dequantized Int4Tensor weights = torchao's _int4_row_dequantize_zp of what transformers loaded."""
    from mslk.quantize.shuffle import pack_int4
    from safetensors.torch import load_file
    from torchao.prototype.gptq.api import _int4_row_dequantize_zp
    ours = load_file(weights_file)
    checked, differing = 0, []
    for name, m in loaded.named_modules():
        w = getattr(m, "weight", None)
        if type(w).__name__ != "Int4Tensor":
            continue
        qd = w.qdata
        q = torch.stack([(qd << 4) >> 4, qd >> 4], dim=-1).reshape(qd.shape[0], -1)  # low nibble first, sign-extended
        assert torch.equal(pack_int4(q), qd), name
        want = _int4_row_dequantize_zp(q, w.scale.float(), w.zero_point.float(), w.block_size[-1])
        checked += 1
        if not torch.equal(ours[f"{name}.weight"], want):
            differing.append(name)
    try:
        loaded(torch.tensor([[1, 2, 3]]))
        report["forward"] = "ran"
    except Exception as e:  # noqa: BLE001 — reported: Int4Tensor's linear is a CUDA kernel
        report["forward"] = f"{type(e).__name__}: {str(e).splitlines()[0][:160]}"
    report["int4_weights_checked"] = checked
    report["int4_weights_differing"] = differing[:5]
    return checked, not differing


def main(fp_dir, ours, logits_file, qc_json, save_dir, weights_file=None):
    report = {"config": json.loads(qc_json)}
    with open(os.path.join(ours, "config.json")) as f:
        dtype_name = json.load(f).get("torch_dtype") or "float32"
    model = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=AutoQuantizationConfig.from_dict(report["config"]),
                                                 device_map="cpu", dtype=DT[dtype_name])
    model.save_pretrained(save_dir)
    ok = compare(ours, save_dir, report)
    loaded = AutoModelForCausalLM.from_pretrained(ours, device_map="cpu")
    kinds = sorted({type(m.weight).__name__ for m in loaded.modules() if isinstance(m, torch.nn.Linear)})
    report["loaded_linear_weight_types"] = kinds
    int4 = report["config"]["quant_type"]["default"]["_type"] == "Int4WeightOnlyConfig"
    # every module llmq quantized comes back as torchao's tensor subclass (Int4WeightOnlyConfig may quantize none)
    quantized = sum(1 for k in split(os.path.join(ours, "model.safetensors"))[1] if k.endswith("._weight_qdata"))
    report["quantized_modules"] = quantized
    ok = ok and sum(1 for m in loaded.modules() if isinstance(m, torch.nn.Linear) and type(m.weight).__name__ in ("Int8Tensor", "Int4Tensor")) == quantized
    if int4:
        checked, same = int4_check(loaded, weights_file, report) if weights_file is not None else (-1, False)
        ok = ok and checked == quantized and same
    if dtype_name == "float32" and not (int4 and quantized):  # an int4 directory that quantized nothing runs on CPU
        rel = logits_rel_diff(loaded, logits_file)
        dynamic = any(getattr(m.weight, "act_quant_kwargs", None) is not None for m in loaded.modules() if isinstance(m, torch.nn.Linear))
        report["logits_rel_diff"] = rel
        report["logits_tolerance"] = 5e-2 if dynamic else 1e-4
        ok = ok and rel <= report["logits_tolerance"]
    report["ok"] = bool(ok)
    print(json.dumps(report))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main(*sys.argv[1:7])
