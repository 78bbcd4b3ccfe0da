#!/usr/bin/env python3
# GPTQ and AWQ packed-linear vectors for @llmq/serialization, packed and dequantized by the real libraries' code.
#
# Command (from the repo root; deterministic; downloads the two sdists, ~2 MB, into a temp dir):
#   $LLMQ_PYTHON tools/gen_gptq_awq_fixtures.py
#
# Neither AutoAWQ nor GPTQModel installs on a CPU-only machine (both build GPU kernels), so their pure-torch modules
# are loaded straight from the registry's sdists (autoawq 0.2.9, gptqmodel 7.7.0) with the package __init__ (which
# pulls the GPU stack) replaced by an empty namespace:
#   AWQ:  awq/modules/linear/gemm.py WQLinear_GEMM.from_linear and gemv.py WQLinear_GEMV.from_linear pack; the
#         expected GEMM weight is cross-checked with awq/utils/packing_utils.py dequantize_gemm (f32 scales).
#   GPTQ: qzeros are packed with gptqmodel/utils/model_dequant.py pack_cols (v2) or AutoGPTQ's v1 rule (z − 1 as
#         uint32 OR-ed into the word, which corrupts the higher fields of an asymmetric zero 0 — the "−1 quirk");
#         qweight with a port of gptqmodel's BaseQuantLinear.pack_original row loop (its module cannot be imported
#         without the GPU stack), checked with model_dequant.unpack_rows; the expected weight is
#         model_dequant.convert_gptq_file (f32), i.e. what GPTQModel/transformers load.
# Codes, zeros and fp16 scales are random; the dense input is W = (q − z)·s (exact in f32), so the packers recover q.
#
# Outputs (packages/serialization/fixtures/gptq-awq/): cases.safetensors (per case: qweight, qzeros, scales,
# [g_idx], expected), manifest.json (per case: method, bits, group_size, format/version, sym, desc_act, shapes).
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file
from fixture_cases import save_cases
from sdist_modules import load_sdists

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "gptq-awq")
os.makedirs(OUT, exist_ok=True)
tmp = load_sdists("autoawq==0.2.9", "gptqmodel==7.7.0")
from awq.modules.linear.gemm import WQLinear_GEMM  # noqa: E402
from awq.modules.linear.gemv import WQLinear_GEMV  # noqa: E402
from awq.utils.packing_utils import dequantize_gemm  # noqa: E402
from gptqmodel.utils.model_dequant import convert_gptq_file, pack_cols, unpack_rows  # noqa: E402

rng = np.random.default_rng(14)
tensors, manifest = {}, {"autoawq": "0.2.9", "gptqmodel": "7.7.0", "torch": torch.__version__, "cases": {}}


def scales_f16(shape):
    return torch.from_numpy((rng.uniform(0.002, 0.05, size=shape)).astype(np.float16))


# ----- GPTQ -----


def pack_rows_gptqmodel(q, bits):
    """gptqmodel BaseQuantLinear.pack_original's qweight loop (int_weight [K, N] → qweight [K·bits/32, N])."""
    q = q.astype(np.uint32)
    rows = q.shape[0] * bits // 32
    qweight = np.zeros((rows, q.shape[1]), dtype=np.uint32)
    if bits in (2, 4, 8):
        pf = 32 // bits
        for row in range(rows):
            for j in range(pf):
                qweight[row] |= q[row * pf + j] << (bits * j)
    else:
        i = row = 0
        while row < rows:
            for j in range(i, i + 10):
                qweight[row] |= q[j] << (3 * (j - i))
            i += 10
            qweight[row] |= q[i] << 30
            row += 1
            qweight[row] |= (q[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= q[j] << (3 * (j - i) + 1)
            i += 10
            qweight[row] |= q[i] << 31
            row += 1
            qweight[row] |= (q[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                qweight[row] |= q[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return torch.from_numpy(qweight.view(np.int32))


def pack_zeros_autogptq_v1(z, bits):
    """AutoGPTQ qlinear_cuda_old.pack: zeros −= 1, cast to uint32, OR-packed along the output dim (2/4/8 bits)."""
    zeros = (z.astype(np.int64) - 1).astype(np.uint32)
    pf = 32 // bits
    qz = np.zeros((z.shape[0], z.shape[1] // pf), dtype=np.uint32)
    for col in range(qz.shape[1]):
        for j in range(pf):
            qz[:, col] |= zeros[:, col * pf + j] << np.uint32(bits * j)
    return torch.from_numpy(qz.view(np.int32))


def gptq_case(name, bits, group_size, sym, desc_act, fmt, K=128, N=32):
    maxq = 2**bits - 1
    G = 1 if group_size == -1 else K // group_size
    gs = K if group_size == -1 else group_size
    q = rng.integers(0, maxq + 1, size=(K, N))
    z = np.full((G, N), 2 ** (bits - 1)) if sym else rng.integers(0, maxq + 1, size=(G, N))
    if not sym:
        z[0, :3] = 0  # the v1 "−1" quirk needs a zero point of 0
    s = scales_f16((G, N))
    perm = rng.permutation(K) if desc_act else np.arange(K)
    g_idx = np.empty(K, dtype=np.int32)
    g_idx[perm] = np.arange(K) // gs
    qweight = pack_rows_gptqmodel(q, bits)
    assert torch.equal(unpack_rows(qweight, bits), torch.from_numpy(q.astype(np.int32))), "qweight packer"
    if fmt == "gptq" and bits != 3:
        qzeros = pack_zeros_autogptq_v1(z, bits)
    elif fmt == "gptq":  # 3-bit v1: per-field −1 (GPTQModel's _revert_gptq_v1_qzeros_correction), sym only
        assert sym
        qzeros = pack_cols(torch.from_numpy((z - 1).astype(np.int32)), bits, pack_dtype=torch.int32)
    else:
        qzeros = pack_cols(torch.from_numpy(z.astype(np.int32)), bits, pack_dtype=torch.int32)
    path = os.path.join(tmp, f"{name}.safetensors")
    save_file({"m.qweight": qweight, "m.qzeros": qzeros, "m.scales": s, "m.g_idx": torch.from_numpy(g_idx)}, path)
    expected = convert_gptq_file(path, torch.float32, {"bits": bits, "checkpoint_format": fmt}, "cpu")["m.weight"]
    truth = ((torch.from_numpy(q).float() - torch.from_numpy(z).float()[g_idx]) * s.float()[g_idx]).t()
    corrupted = fmt == "gptq" and not sym
    assert corrupted or torch.equal(expected, truth), name
    tensors.update({f"{name}.qweight": qweight, f"{name}.qzeros": qzeros, f"{name}.scales": s, f"{name}.g_idx": torch.from_numpy(g_idx), f"{name}.expected": expected.contiguous()})
    manifest["cases"][name] = {"method": "gptq", "bits": bits, "group_size": group_size, "sym": sym, "desc_act": desc_act, "checkpoint_format": fmt, "shape": [N, K], "v1_quirk_corrupts": bool(corrupted and not torch.equal(expected, truth))}


for bits in (2, 3, 4, 8):
    for desc_act in (False, True):
        gptq_case(f"gptq_b{bits}_sym_v1_act{int(desc_act)}", bits, 32, True, desc_act, "gptq")
        gptq_case(f"gptq_b{bits}_asym_v2_act{int(desc_act)}", bits, 32, False, desc_act, "gptq_v2")
        if bits != 3:
            gptq_case(f"gptq_b{bits}_asym_v1_act{int(desc_act)}", bits, 32, False, desc_act, "gptq")
gptq_case("gptq_b4_sym_v2_g-1", 4, -1, True, False, "gptq_v2")

# ----- AWQ -----


def awq_case(name, version, group_size, K=256, N=32):
    G = K // group_size
    q = rng.integers(0, 16, size=(N, K))
    z = rng.integers(0, 16, size=(N, G))
    s = scales_f16((N, G))
    w = (torch.from_numpy(q).float() - torch.from_numpy(z).float().repeat_interleave(group_size, 1)) * s.float().repeat_interleave(group_size, 1)
    linear = torch.nn.Linear(K, N, bias=False)
    linear.weight.data = w.clone()
    if version == "gemm":
        m = WQLinear_GEMM.from_linear(linear, 4, group_size, scales=s.t().contiguous(), zeros=torch.from_numpy(z).t().contiguous().float())
        cross = dequantize_gemm(m.qweight, m.qzeros, m.scales.float(), 4, group_size).t()
        assert torch.equal(cross, w), name
    else:
        m = WQLinear_GEMV.from_linear(linear, 4, group_size, scales=s, zeros=torch.from_numpy(z).float())
    tensors.update({f"{name}.qweight": m.qweight, f"{name}.qzeros": m.qzeros, f"{name}.scales": m.scales, f"{name}.expected": w.contiguous()})
    manifest["cases"][name] = {"method": "awq", "version": version, "group_size": group_size, "shape": [N, K], "qweight": list(m.qweight.shape), "qzeros": list(m.qzeros.shape), "scales": list(m.scales.shape)}


for version in ("gemm", "gemv"):
    for gs in (32, 64, 128):
        awq_case(f"awq_{version}_g{gs}", version, gs)

save_cases(OUT, tensors, manifest)
print(sum(c.get("v1_quirk_corrupts", False) for c in manifest["cases"].values()), "cases show the v1 quirk")
