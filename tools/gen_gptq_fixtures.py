#!/usr/bin/env python
"""Generates packages/gptq/fixtures/ from llm-compressor's own GPTQ code (LC 0.14.0.1, compressed-tensors 0.20.0).

Command (from the repo root):
    $LLMQ_PYTHON tools/gen_gptq_fixtures.py

Writes
  packages/gptq/fixtures/gptq.safetensors   all tensors (inputs and LC outputs), raw little-endian
  packages/gptq/fixtures/gptq.json          case list: quantization args, tensor names, LC loss, RTN-fallback flag

For every case: a random weight W and a Hessian from random calibration activations accumulated with LC's
`accumulate_hessian` (on a real nn.Linear) and normalised as LC's `prepare_batch` does (H_sum / num_samples);
the weight qparams from LC's registered weight observer (memoryless_minmax or mse) on the ORIGINAL weight, as
`GPTQModifier.on_sequential_epoch_end` does; then `quantize_weight` (eager torch CPU path) and the integer / fp8
codes that compressed-tensors' compressor stores (`quantize(weight, scale, zp, args)` of the GPTQ output).
A separate Hessian-accumulation case records H_sum / num_samples after several batches of different ranks.
Everything runs on CPU in f32 with a fixed seed; torch threads pinned to 1 for reproducibility.
"""

import json
import os
import sys

import torch
from compressed_tensors.quantization import QuantizationArgs
from compressed_tensors.quantization.lifecycle.forward import quantize
from safetensors.torch import save_file

from llmcompressor.modifiers.gptq.gptq_quantize import quantize_weight
from llmcompressor.modifiers.gptq.helpers import accumulate_hessian, make_empty_hessian
from llmcompressor.observers import Observer

torch.set_num_threads(1)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "packages", "gptq", "fixtures")
ROWS, COLS = 32, 256

tensors: dict[str, torch.Tensor] = {}
cases = []


def hessian_from(x_batches, cols):
    lin = torch.nn.Linear(cols, 1, bias=False)
    h = make_empty_hessian(lin)
    n = torch.zeros(())
    for x in x_batches:
        h, n = accumulate_hessian(x, lin, h, n)
    return h, n


def make_problem(seed, dead=0):
    g = torch.Generator().manual_seed(seed)
    # Activations with per-channel magnitudes spread over two decades, like real LLM inputs.
    mag = torch.exp(torch.randn(COLS, generator=g) * 1.0)
    xs = [torch.randn(4, 64, COLS, generator=g) * mag for _ in range(2)]
    if dead:
        for x in xs:
            x[..., :dead] = 0
    h_sum, n = hessian_from(xs, COLS)
    H = (h_sum / n).contiguous()
    W = (torch.randn(ROWS, COLS, generator=g) * 0.02).contiguous()
    W[3, 7] = 0.15  # an outlier
    return W, H


problems = {"p0": make_problem(1), "p1": make_problem(2, dead=8)}
# A bf16 model: LC observes the bf16 weight (bf16 scales), runs GPTQ in f32 and dequantizes in bf16.
problems["pbf16"] = (problems["p0"][0].to(torch.bfloat16), problems["p0"][1])
for k, (W, H) in problems.items():
    tensors[f"{k}.W"] = W
    if k != "pbf16":
        tensors[f"{k}.H"] = H

# A small non-positive-definite Hessian: LC falls back to round-to-nearest (identity factor).
g = torch.Generator().manual_seed(3)
Wn = (torch.randn(16, 64, generator=g) * 0.02).contiguous()
A = torch.randn(64, 64, generator=g)
Hn = (-(A @ A.T) / 64).contiguous()
tensors["pneg.W"] = Wn
tensors["pneg.H"] = Hn
problems["pneg"] = (Wn, Hn)


def run_case(name, problem, wargs: dict, observer="memoryless_minmax", blocksize=128, percdamp=0.01):
    W, H = problems[problem]
    args = QuantizationArgs(**wargs, observer=observer)
    obs = Observer.load_from_registry(observer, base_name="weight", args=args)
    obs(W)
    qp = obs.get_qparams()
    scale, zp, gs = qp["scale"], qp["zero_point"], qp["global_scale"]
    fq, losses, fallback = quantize_weight(
        W.clone()[None], H.clone()[None], scale[None], zp[None], None if gs is None else gs.reshape(1, -1)[:, 0],
        args, blocksize=blocksize, percdamp=percdamp,
    )
    fq = fq[0]
    # What the compressor stores: quantize() of the written-back weight, in the weight's dtype.
    codes = quantize(fq, scale, zp, args, global_scale=gs)
    if args.type == "float":
        codes = codes.to(torch.float8_e4m3fn) if args.num_bits == 8 else codes.float()
    else:
        codes = codes.to(torch.int8)
    tensors[f"{name}.scale"] = scale.contiguous()
    tensors[f"{name}.zp"] = zp.contiguous()
    tensors[f"{name}.codes"] = codes.contiguous()
    if W.dtype == torch.bfloat16:
        tensors[f"{name}.fq"] = fq.contiguous()  # the bf16 weight LC writes back
    if gs is not None:
        tensors[f"{name}.global_scale"] = gs.contiguous()
    cases.append({
        "name": name,
        "problem": problem,
        "weight": f"{problem}.W",
        "hessian": "p0.H" if problem == "pbf16" else f"{problem}.H",
        "args": json.loads(args.model_dump_json()),
        "observer": observer,
        "block_size": blocksize,
        "dampening_frac": percdamp,
        "loss": float(losses[0]),
        "used_rtn_fallback": bool(fallback[0]),
    })


strategies = {
    "channel": dict(strategy="channel"),
    "g32": dict(strategy="group", group_size=32),
    "g64": dict(strategy="group", group_size=64),
    "tensor": dict(strategy="tensor"),
    "block": dict(strategy="block", block_structure=[16, 64]),
}
for actorder in (None, "static"):
    for sname, s in strategies.items():
        for bits in (4, 8):
            for sym in (True, False):
                problem = "p1" if (sname == "g64" and bits == 4) else "p0"
                name = f"int{bits}-{sname}-{'sym' if sym else 'asym'}-{actorder or 'none'}"
                run_case(name, problem, dict(num_bits=bits, type="int", symmetric=sym, actorder=actorder, **s))
    for sname in ("channel", "tensor", "block", "g32"):
        run_case(f"fp8-{sname}-sym-{actorder or 'none'}", "p0", dict(num_bits=8, type="float", symmetric=True, actorder=actorder, **strategies[sname]))
# NVFP4 weights (fp4 e2m1 codes, fp8-rounded group-16 scales under an f32 global scale).
for actorder in (None, "static"):
    run_case(f"nvfp4-g16-{actorder or 'none'}", "p0", dict(num_bits=4, type="float", symmetric=True, strategy="tensor_group", group_size=16, actorder=actorder, scale_dtype="float8_e4m3fn", zp_dtype="float8_e4m3fn"))
# bf16 weights: the loop codes (f32 division by a bf16 scale, bf16 dequantization) and the written-back weight.
for bits, sym in ((4, False), (8, True)):
    run_case(f"bf16-int{bits}-g32-{'sym' if sym else 'asym'}-static", "pbf16", dict(num_bits=bits, type="int", symmetric=sym, strategy="group", group_size=32, actorder="static"))
# The MSE observer (grid search over shrunk ranges), a different block size and damping, and the RTN fallback.
run_case("int4-g32-sym-static-mse", "p0", dict(num_bits=4, type="int", symmetric=True, actorder="static", strategy="group", group_size=32), observer="mse")
run_case("int4-channel-asym-none-mse", "p0", dict(num_bits=4, type="int", symmetric=False, actorder=None, strategy="channel"), observer="mse")
run_case("int4-g64-sym-static-b32-d0.1", "p1", dict(num_bits=4, type="int", symmetric=True, actorder="static", strategy="group", group_size=64), blocksize=32, percdamp=0.1)
run_case("int4-channel-sym-static-notpd", "pneg", dict(num_bits=4, type="int", symmetric=True, actorder="static", strategy="channel"))

# Hessian accumulation: batches of rank 3 ([B, T, in], B samples) and rank 2 ([T, in], one sample).
g = torch.Generator().manual_seed(4)
acc_x = [torch.randn(2, 8, 48, generator=g), torch.randn(5, 48, generator=g), torch.randn(3, 4, 48, generator=g)]
h_sum, n = hessian_from(acc_x, 48)
for i, x in enumerate(acc_x):
    tensors[f"acc.x{i}"] = x.contiguous()
tensors["acc.h_sum"] = h_sum.contiguous()
tensors["acc.h"] = (h_sum / n).contiguous()

os.makedirs(OUT, exist_ok=True)
save_file(tensors, os.path.join(OUT, "gptq.safetensors"))
meta = {
    "generator": "tools/gen_gptq_fixtures.py",
    "command": "$LLMQ_PYTHON tools/gen_gptq_fixtures.py",
    "versions": {"torch": torch.__version__, "llmcompressor": __import__("llmcompressor").__version__,
                 "compressed_tensors": __import__("compressed_tensors").__version__},
    "accumulation": {"inputs": [f"acc.x{i}" for i in range(len(acc_x))], "num_samples": float(n)},
    "cases": cases,
}
with open(os.path.join(OUT, "gptq.json"), "w") as f:
    json.dump(meta, f, indent=1)
print(f"{len(cases)} cases, {os.path.getsize(os.path.join(OUT, 'gptq.safetensors'))} bytes", file=sys.stderr)
