#!/usr/bin/env python
"""Test vectors for @llmq/schemes from the real compressed-tensors 0.20.0 (+ llm-compressor 0.14 observers).

Command that produced packages/schemes/fixtures/*.json (run from the repo root):

    $LLMQ_PYTHON -m pip install --no-deps --target $CT020_DIR compressed-tensors==0.20.0   # once
    PYTHONPATH=$CT020_DIR $LLMQ_PYTHON tools/gen_scheme_fixtures.py

(llmcompressor 0.14.0.1 pins compressed-tensors 0.19.0 for llmcompressor 0.14.0.1, so 0.20.0 is put first on the path; the
script refuses to run against any other version.) torch 2.13 CPU. Deterministic: fixed seeds, no timestamps.

Outputs (tensors as {"dtype", "shape", "b64"} = base64 of raw little-endian bytes, bf16 as its 16-bit pattern):
  fixtures/numerics.json  weight RTN cases (observer → calculate_qparams → quantize / fake_quantize / dequantize)
                          and activation cases (given min/max → calculate_qparams → quantize / fake_quantize)
  fixtures/args.json      model_dump() of every preset and of decoded args/configs, plus invalid args/schemes/configs
                          with CT's exception class and message
"""
import base64
import copy
import json
import os
import sys

import compressed_tensors
import torch

assert compressed_tensors.__version__ == "0.20.0", f"need compressed-tensors 0.20.0, got {compressed_tensors.__version__}"

from compressed_tensors.quantization import QuantizationArgs, QuantizationConfig, QuantizationScheme  # noqa: E402
from compressed_tensors.quantization.lifecycle.forward import dequantize, fake_quantize, quantize  # noqa: E402
from compressed_tensors.quantization.quant_scheme import PRESET_SCHEMES, preset_name_to_scheme  # noqa: E402
from compressed_tensors.quantization.utils import calculate_qparams, generate_gparam  # noqa: E402
from llmcompressor.observers import Observer  # noqa: E402
from pydantic import ValidationError  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "packages", "schemes", "fixtures")

DT = {
    torch.float32: "f32",
    torch.bfloat16: "bf16",
    torch.float16: "f16",
    torch.int8: "i8",
    torch.int16: "i16",
    torch.int32: "i32",
    torch.uint8: "u8",
    torch.float8_e4m3fn: "f8_e4m3fn",
}
VIEW = {torch.bfloat16: torch.int16, torch.float16: torch.int16, torch.float8_e4m3fn: torch.uint8}


def enc(t: torch.Tensor) -> dict:
    t = t.detach().contiguous().cpu()
    raw = t.view(VIEW[t.dtype]) if t.dtype in VIEW else t
    return {"dtype": DT[t.dtype], "shape": list(t.shape), "b64": base64.b64encode(raw.numpy().tobytes()).decode()}


def dump(obj) -> object:
    return json.loads(json.dumps(obj.model_dump()))


# ----------------------------------------------------------------------------------------------- weights (RTN)

def storage_dtype(args: QuantizationArgs):
    if args.type == "int" or args.num_bits == 8:
        return args.pytorch_dtype()
    return None  # fp4 / fp6 stay float (the nvfp4/mx compressors pack the float values themselves)


def weight_case(name: str, kw: dict, dtype, shape, seed: int, zero_rows=(), mul=1.0):
    args = QuantizationArgs(**kw)
    g = torch.Generator().manual_seed(seed)
    w = (torch.randn(shape, generator=g) * mul).to(dtype)
    for r in zero_rows:
        w[r] = 0
    obs = Observer.load_from_registry("memoryless_minmax", base_name="weight", args=copy.deepcopy(args))
    obs(w)
    qp = obs.get_qparams()
    # llm-compressor copies the observer output into the module parameters (weight dtype / zp_dtype / f32 global)
    scale = qp["scale"].to(dtype)
    zp = qp["zero_point"]
    gs = qp["global_scale"]
    q = quantize(x=w, scale=scale, zero_point=zp, args=args, dtype=storage_dtype(args), global_scale=gs)
    fq = fake_quantize(x=w, scale=scale, zero_point=zp, args=args, global_scale=gs)
    dq = dequantize(x_q=q, scale=scale, zero_point=zp, args=args, global_scale=gs)
    case = {
        "name": name,
        "kind": "weight",
        "args": dump(args),
        "kwargs": kw,
        "x": enc(w),
        "scale": enc(scale),
        "raw_scale": enc(qp["scale"]),
        "zero_point": enc(zp),
        "q": enc(q if q.dtype != w.dtype or True else q),
        "fq": enc(fq),
        "dq": enc(dq),
    }
    if gs is not None:
        case["global_scale"] = enc(gs)
    return case


def activation_case(name: str, kw: dict, dtype, shape, seed: int, reduce_dims, group=None, mul=1.0, local_global=False):
    """min/max reduced over `reduce_dims` (keepdim) or per group of the last dim; qparams + quantize + fake_quantize."""
    args = QuantizationArgs(**kw)
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g) * mul).to(dtype)
    if group is not None:
        xv = x.unflatten(-1, (shape[-1] // group, group))
        mn, mx = torch.amin(xv, dim=-1), torch.amax(xv, dim=-1)
    elif reduce_dims is None:
        mn, mx = torch.aminmax(x)
    else:
        mn, mx = torch.amin(x, dim=reduce_dims, keepdim=True), torch.amax(x, dim=reduce_dims, keepdim=True)
    gs = generate_gparam(torch.aminmax(x)[0].reshape(1), torch.aminmax(x)[1].reshape(1)) if local_global else None
    scale, zp = calculate_qparams(mn, mx, args, global_scale=gs)
    q = quantize(x=x, scale=scale, zero_point=zp, args=args, global_scale=gs)
    fq = fake_quantize(x=x, scale=scale, zero_point=zp, args=args, global_scale=gs)
    case = {
        "name": name,
        "kind": "activation",
        "args": dump(args),
        "kwargs": kw,
        "x": enc(x),
        "min": enc(mn.reshape(1) if mn.ndim == 0 else mn),
        "max": enc(mx.reshape(1) if mx.ndim == 0 else mx),
        "scale": enc(scale),
        "zero_point": enc(zp),
        "q": enc(q),
        "fq": enc(fq),
    }
    if gs is not None:
        case["global_scale"] = enc(gs)
    return case


def numerics():
    cases = []
    seed = 1000
    for dtype in (torch.float32, torch.bfloat16):
        dn = DT[dtype]

        def W(name, kw, shape=(8, 64), zero_rows=(), mul=1.0):
            nonlocal seed
            seed += 1
            cases.append(weight_case(f"{dn}/{name}", kw, dtype, shape, seed, zero_rows, mul))

        for bits in range(2, 9):
            for sym in (True, False):
                W(f"int{bits}-group32-{'sym' if sym else 'asym'}", dict(num_bits=bits, group_size=32, symmetric=sym), zero_rows=(3,))
        for sym in (True, False):
            s = "sym" if sym else "asym"
            W(f"int8-channel-{s}", dict(num_bits=8, strategy="channel", symmetric=sym), zero_rows=(2,))
            W(f"int4-channel-{s}", dict(num_bits=4, strategy="channel", symmetric=sym))
            W(f"int4-tensor-{s}", dict(num_bits=4, strategy="tensor", symmetric=sym))
            W(f"int8-tensor-{s}", dict(num_bits=8, symmetric=sym), mul=0.01)
            W(f"int4-block4x8-pad-{s}", dict(num_bits=4, strategy="block", block_structure=[4, 8], symmetric=sym), shape=(10, 20))
            W(f"int3-group16-{s}-scaled", dict(num_bits=3, group_size=16, symmetric=sym), mul=37.0)
        W("int16-channel-sym", dict(num_bits=16, strategy="channel"), mul=3.0)
        W("int16-tensor-asym", dict(num_bits=16, symmetric=False))
        W("fp8-tensor", dict(num_bits=8, type="float"))
        W("fp8-channel", dict(num_bits=8, type="float", strategy="channel"), zero_rows=(1,))
        W("fp8-channel-asym", dict(num_bits=8, type="float", strategy="channel", symmetric=False))
        W("fp8-group16", dict(num_bits=8, type="float", group_size=16), mul=1e-3)
        W("fp8-block4x8-pad", dict(num_bits=8, type="float", strategy="block", block_structure=[4, 8]), shape=(10, 20))
        W("fp8-block128-pad", dict(num_bits=8, type="float", strategy="block", block_structure=[128, 128]), shape=(6, 130))
        W("fp8-tensor-bf16scale", dict(num_bits=8, type="float", scale_dtype="torch.bfloat16"), mul=3.3)
        # degenerate cells found by the live test: NaN fp8 zero point of an all-zero asymmetric row, int bounds that
        # round up in bf16/f16 (4095 → 4096, 32767 → 32768 wrapping in the int16 cast)
        W("fp8-channel-asym-zero-row", dict(num_bits=8, type="float", strategy="channel", symmetric=False), zero_rows=(2,))
        W("int13-channel-asym", dict(num_bits=13, strategy="channel", symmetric=False), mul=40.0)
        W("int16-channel-asym-zero-row", dict(num_bits=16, strategy="channel", symmetric=False), zero_rows=(1,))
        # every preset's weight args (NVFP4 tensor_group, MX group 32 with E8M0 exponents, int presets, FP8 variants)
        seen = set()
        for pname, p in PRESET_SCHEMES.items():
            wa = p.get("weights")
            if wa is None:
                continue
            key = json.dumps(dump(wa), sort_keys=True)
            if key in seen:
                continue
            seen.add(key)
            fields = {k: getattr(wa, k) for k in wa.model_fields_set}
            fields = {k: (str(v) if isinstance(v, torch.dtype) else v) for k, v in fields.items()}
            W(f"preset-{pname}", fields, shape=(8, 128), zero_rows=(5,))
        nv = dict(PRESET_SCHEMES["NVFP4A16"]["weights"].model_dump())
        nv = {k: v for k, v in nv.items()}
        W("nvfp4-small-values", dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, scale_dtype="torch.float8_e4m3fn"), mul=1e-4)
        W("nvfp4-large-values", dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, scale_dtype="torch.float8_e4m3fn"), mul=300.0)
        W("mxfp4-large", dict(num_bits=4, type="float", group_size=32, scale_dtype="torch.uint8"), mul=1000.0)
        W("mxfp8-small", dict(num_bits=8, type="float", group_size=32, scale_dtype="torch.uint8"), mul=1e-3)
        W("mxfp6-wide", dict(num_bits=6, type="float", group_size=32, scale_dtype="torch.uint8"), mul=50.0)

        def A(name, kw, shape, reduce_dims, group=None, mul=1.0, local_global=False):
            nonlocal seed
            seed += 1
            cases.append(activation_case(f"{dn}/{name}", kw, dtype, shape, seed, reduce_dims, group, mul, local_global))

        A("token-int8-dynamic", dict(num_bits=8, strategy="token", dynamic=True), (2, 3, 64), (2,))
        A("token-int8-dynamic-asym", dict(num_bits=8, strategy="token", dynamic=True, symmetric=False), (2, 3, 64), (2,))
        A("token-fp8-dynamic", dict(num_bits=8, type="float", strategy="token", dynamic=True), (2, 3, 64), (2,), mul=20.0)
        A("token-int4-dynamic", dict(num_bits=4, strategy="token", dynamic=True), (2, 3, 64), (2,))
        A("tensor-fp8-static", dict(num_bits=8, type="float", observer="static_minmax"), (4, 64), None)
        A("tensor-int8-asym-static", dict(num_bits=8, symmetric=False), (4, 64), None)
        A("group128-fp8-dynamic", dict(num_bits=8, type="float", group_size=128, dynamic=True), (2, 3, 256), None, group=128)
        A("group32-mxfp4-dynamic", dict(num_bits=4, type="float", group_size=32, dynamic=True, scale_dtype="torch.uint8"), (2, 3, 64), None, group=32)
        A("group32-mxfp8-dynamic", dict(num_bits=8, type="float", group_size=32, dynamic=True, scale_dtype="torch.uint8"), (2, 3, 64), None, group=32)
        A(
            "tensor_group-nvfp4-local",
            dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, dynamic="local", scale_dtype="torch.float8_e4m3fn"),
            (2, 3, 64),
            None,
            group=16,
            local_global=True,
        )
        A("attn_head-int8", dict(num_bits=8, strategy="attn_head"), (1, 4, 5, 16), (0, 2, 3))
        A("attn_head-fp8", dict(num_bits=8, type="float", strategy="attn_head"), (2, 4, 3, 8), (0, 2, 3), mul=5.0)

    # f16 models (e.g. Mistral checkpoints): a subset covering each arithmetic path once
    dtype = torch.float16
    for name, kw, shape, mul in [
        ("int4-group32-sym", dict(num_bits=4, group_size=32), (8, 64), 1.0),
        ("int4-group32-asym", dict(num_bits=4, group_size=32, symmetric=False), (8, 64), 1.0),
        ("int8-channel-asym", dict(num_bits=8, strategy="channel", symmetric=False), (8, 64), 0.1),
        ("int8-tensor-sym-tiny", dict(num_bits=8), (8, 64), 1e-6),
        ("fp8-channel", dict(num_bits=8, type="float", strategy="channel"), (8, 64), 1.0),
        ("fp8-block4x8-pad", dict(num_bits=8, type="float", strategy="block", block_structure=[4, 8]), (10, 20), 1.0),
        ("nvfp4", dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, scale_dtype="torch.float8_e4m3fn"), (8, 64), 1.0),
        ("mxfp4", dict(num_bits=4, type="float", group_size=32, scale_dtype="torch.uint8"), (8, 64), 1.0),
        ("mxfp4-small", dict(num_bits=4, type="float", group_size=32, scale_dtype="torch.uint8"), (8, 64), 1e-3),
        ("mxfp8", dict(num_bits=8, type="float", group_size=32, scale_dtype="torch.uint8"), (8, 64), 10.0),
        ("int16-channel-asym", dict(num_bits=16, strategy="channel", symmetric=False), (8, 64), 1.0),
        ("int13-channel-asym", dict(num_bits=13, strategy="channel", symmetric=False), (8, 64), 40.0),
        ("fp8-channel-asym", dict(num_bits=8, type="float", strategy="channel", symmetric=False), (8, 64), 1.0),
    ]:
        seed += 1
        cases.append(weight_case(f"f16/{name}", kw, dtype, shape, seed, (1,), mul))
    seed += 1
    cases.append(activation_case("f16/token-int8-dynamic", dict(num_bits=8, strategy="token", dynamic=True), dtype, (2, 3, 64), seed, (2,)))
    return cases


# ----------------------------------------------------------------------------------------------- args / configs

def err(fn):
    try:
        fn()
    except ValidationError as e:
        first = e.errors()[0]
        # keep field names only (drop pydantic's union-branch / validator segments)
        loc = [str(x) for x in first["loc"] if not any(c in str(x) for c in "[(")]
        return {"error": "ValidationError", "loc": ".".join(loc), "message": first["msg"]}
    except Exception as e:  # noqa: BLE001 - we record whatever CT raises
        msg = str(e)
        return {"error": type(e).__name__, "loc": "", "message": msg.splitlines()[0] if msg else ""}
    return None


def _full(**kw):
    """A CT 0.18-style fully dumped QuantizationArgs (every key present), as in llm-compressor.md §1."""
    base = {"actorder": None, "block_structure": None, "dynamic": False, "group_size": None, "num_bits": 8,
            "observer": "memoryless_minmax", "observer_kwargs": {}, "scale_dtype": None, "strategy": "tensor",
            "symmetric": True, "type": "int", "zp_dtype": None}
    base.update(kw)
    return base


# The example configs of shared/reference/llm-compressor.md §1 (1.1 verbatim; 1.3–1.11 as described there).
REFERENCE_EXAMPLES = [
    {  # 1.1 W4A16 (written by CT 0.18.1.dev0)
        "config_groups": {"group_0": {"format": "pack-quantized", "input_activations": None, "output_activations": None,
                                      "targets": ["Linear"], "weights": _full(group_size=128, num_bits=4, strategy="group")}},
        "format": "pack-quantized", "global_compression_ratio": None, "ignore": ["lm_head"], "kv_cache_scheme": None,
        "quant_method": "compressed-tensors", "quantization_status": "compressed", "sparsity_config": {},
        "transform_config": {}, "version": "0.18.1.dev0",
    },
    {  # 1.1 with GPTQ's actorder static
        "config_groups": {"group_0": {"targets": ["Linear"], "weights": _full(group_size=128, num_bits=4, strategy="group", actorder="static")}},
        "format": "pack-quantized", "quantization_status": "compressed", "ignore": ["lm_head"],
    },
    {  # 1.3 W4A16_ASYM
        "config_groups": {"group_0": {"format": "pack-quantized", "targets": ["Linear"],
                                      "weights": _full(group_size=128, num_bits=4, strategy="group", symmetric=False, zp_dtype="torch.int8")}},
        "format": "pack-quantized", "quantization_status": "compressed",
    },
    {  # 1.4 W8A8
        "config_groups": {"group_0": {"format": "int-quantized", "targets": ["Linear"], "output_activations": None,
                                      "input_activations": _full(dynamic=True, observer=None, strategy="token"),
                                      "weights": _full(strategy="channel")}},
        "format": "int-quantized", "quantization_status": "compressed", "ignore": ["lm_head"],
    },
    {  # 1.5 FP8 / 1.6 FP8_DYNAMIC / 1.7 FP8_BLOCK as separate groups of a mixed-precision config
        "config_groups": {
            "group_0": {"format": "float-quantized", "targets": ["re:.*q_proj$"], "weights": _full(type="float"),
                        "input_activations": _full(type="float", observer="static_minmax")},
            "group_1": {"format": "float-quantized", "targets": ["re:.*mlp.*"], "weights": _full(type="float", strategy="channel"),
                        "input_activations": _full(type="float", strategy="token", dynamic=True, observer=None)},
            "group_2": {"format": "float-quantized", "targets": ["Linear"], "weights": _full(type="float", strategy="block", block_structure=[128, 128]),
                        "input_activations": _full(type="float", strategy="group", group_size=128, dynamic=True, observer=None)},
        },
        "format": "mixed-precision", "quantization_status": "compressed",
    },
    {  # 1.8 NVFP4
        "config_groups": {"group_0": {
            "format": "nvfp4-pack-quantized", "output_activations": None, "targets": ["Linear"],
            "input_activations": _full(dynamic="local", group_size=16, num_bits=4, observer="static_minmax", scale_dtype="torch.float8_e4m3fn",
                                       strategy="tensor_group", type="float"),
            "weights": _full(group_size=16, num_bits=4, scale_dtype="torch.float8_e4m3fn", strategy="tensor_group", type="float")}},
        "format": "nvfp4-pack-quantized", "quantization_status": "compressed", "ignore": ["lm_head"],
    },
    {  # 1.9 MXFP4
        "config_groups": {"group_0": {
            "format": "mxfp4-pack-quantized", "targets": ["Linear"],
            "weights": _full(type="float", num_bits=4, strategy="group", group_size=32, scale_dtype="torch.uint8"),
            "input_activations": _full(type="float", num_bits=4, strategy="group", group_size=32, scale_dtype="torch.uint8", dynamic=True, observer=None)}},
        "format": "mxfp4-pack-quantized", "quantization_status": "compressed",
    },
    {  # 1.10 W4A8 and 1.11 kv cache
        "config_groups": {"group_0": {"format": "int-quantized", "targets": ["Linear"],
                                      "weights": _full(num_bits=4, strategy="group", group_size=128),
                                      "input_activations": _full(strategy="token", dynamic=True, observer=None)}},
        "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True, "observer": "static_minmax"},
        "format": "int-quantized", "quantization_status": "compressed",
    },
]


def args_fixtures():
    presets = {name: dump(preset_name_to_scheme(name, ["Linear"])) for name in PRESET_SCHEMES}
    valid_args = [
        {},
        {"num_bits": 4, "group_size": 128},
        {"num_bits": 4, "group_size": 128, "symmetric": False},
        {"num_bits": 4, "group_size": 128, "symmetric": False, "zp_dtype": "torch.int8"},
        {"num_bits": 8, "type": "FLOAT", "strategy": "TOKEN", "dynamic": True},
        {"num_bits": 8, "type": "float", "strategy": "token", "dynamic": True, "observer": "memoryless"},
        {"num_bits": 8, "strategy": "block", "block_structure": "128x64", "type": "float"},
        {"num_bits": 8, "strategy": "block", "block_structure": [64, 32]},
        {"num_bits": 4, "group_size": -1},
        {"num_bits": 4, "group_size": 128, "actorder": "weight"},
        {"num_bits": 4, "group_size": 128, "actorder": "static"},
        {"num_bits": 4, "group_size": 128, "actorder": False},
        {"num_bits": 4, "group_size": 128, "actorder": None},
        {"num_bits": 16},
        {"num_bits": 12, "symmetric": False},
        {"num_bits": 32, "strategy": "channel"},
        {"num_bits": 4, "type": "float", "strategy": "tensor_group", "group_size": 16, "dynamic": "LOCAL", "observer": "static_minmax"},
        {"num_bits": 8, "observer": "minmax", "observer_kwargs": {"averaging_constant": 0.1}},
        {"num_bits": 8, "observer_kwargs": {}},
        {"num_bits": 8, "scale_dtype": "float16", "zp_dtype": "torch.int"},
        {"num_bits": 8, "scale_dtype": "torch.float", "observer": None},
        {"num_bits": 6, "type": "float", "group_size": 32, "scale_dtype": "torch.uint8"},
        {"num_bits": 4, "strategy": "channel", "group_size": 0},
        {"num_bits": "4", "symmetric": "yes", "group_size": 64},
        {"num_bits": 8, "strategy": "attn_head"},
        {"num_bits": 8, "dynamic": True},
    ]
    args = [{"input": a, "dump": dump(QuantizationArgs(**a))} for a in valid_args]
    invalid_args = [
        {"num_bits": 4, "group_size": 0},
        {"num_bits": 4, "group_size": -2},
        {"num_bits": 8, "strategy": "token"},
        {"num_bits": 4, "strategy": "group"},
        {"num_bits": 4, "strategy": "tensor_group", "type": "float"},
        {"num_bits": 4, "strategy": "channel", "group_size": 128},
        {"num_bits": 8, "strategy": "block"},
        {"num_bits": 8, "block_structure": [128, 128]},
        {"num_bits": 8, "strategy": "block", "block_structure": [128]},
        {"num_bits": 8, "strategy": "block", "block_structure": [128, 0]},
        {"num_bits": 8, "strategy": "block", "block_structure": "128by128"},
        {"num_bits": 8, "strategy": "channel", "dynamic": True},
        {"num_bits": 8, "strategy": "block", "block_structure": [2, 2], "dynamic": True},
        {"num_bits": 8, "dynamic": "local"},
        {"num_bits": 8, "dynamic": "sometimes"},
        {"num_bits": 4, "group_size": 128, "actorder": True},
        {"num_bits": 4, "group_size": 128, "actorder": "group"},
        {"num_bits": 4, "group_size": 128, "actorder": "DYNAMIC"},
        {"num_bits": 4, "group_size": 128, "actorder": "WEIGHT"},
        {"num_bits": 16, "type": "float"},
        {"num_bits": 5, "type": "float"},
        {"num_bits": 8, "type": "uint"},
        {"num_bits": 8, "strategy": "row"},
        {"num_bits": 8, "scale_dtype": "torch.float128"},
        {"num_bits": 8, "zp_dtype": 8},
        {"num_bits": 8, "bits": 4},
        {"num_bits": 4.5},
        {"num_bits": None},
        {"num_bits": 8, "symmetric": "maybe"},
        {"num_bits": 8, "observer_kwargs": []},
        {"num_bits": 4, "group_size": "64"},
    ]
    bad_args = [{"input": a, **err(lambda a=a: QuantizationArgs(**a))} for a in invalid_args]
    for b in bad_args:
        assert "error" in b, b
    w4 = {"num_bits": 4, "group_size": 128}
    invalid_schemes = [
        {"targets": ["Linear"], "input_activations": {"num_bits": 8, "strategy": "channel"}},
        {"targets": ["Linear"], "input_activations": {"num_bits": 8, "strategy": "block", "block_structure": [2, 2]}},
        {"targets": ["Linear"], "input_activations": {"num_bits": 8, "group_size": 128, "actorder": "weight"}},
        {"targets": ["Linear"], "output_activations": {"num_bits": 8, "group_size": 128, "actorder": "static"}},
        {"targets": ["Linear"], "weights": w4, "format": "mixed-precision"},
        {"targets": ["Linear"], "weights": w4, "format": "gguf"},
        {"targets": "Linear", "weights": w4},
        {"weights": w4},
        {"targets": ["Linear"], "weights": w4, "kv_cache_scheme": None},
        {"targets": ["Linear"], "weights": {"num_bits": 8, "strategy": "token"}},
    ]
    bad_schemes = [{"input": s, **err(lambda s=s: QuantizationScheme(**s))} for s in invalid_schemes]
    for b in bad_schemes:
        assert "error" in b, b
    configs_valid = [
        {"config_groups": {"W4A16": ["Linear"]}},
        {"config_groups": {"w8a8": ["Linear"], "group_1": {"targets": ["re:.*lm_head"], "weights": {"num_bits": 8}}}, "ignore": ["model.embed"]},
        {
            "config_groups": {"group_0": {"targets": ["Linear"], "weights": w4, "format": "pack-quantized"}},
            "format": "pack-quantized",
            "quantization_status": "compressed",
            "version": "0.20.0",
            "sparsity_config": {},
            "transform_config": {},
            "quant_method": "compressed-tensors",
            "kv_cache_scheme": {"num_bits": 8, "type": "float", "strategy": "tensor", "dynamic": False, "symmetric": True, "observer": "static_minmax"},
        },
        {"config_groups": {"NVFP4": ["Linear"]}, "global_compression_ratio": 1.5, "moe_sparsity_config": None},
    ] + REFERENCE_EXAMPLES
    configs = [{"input": c, "dump": dump(QuantizationConfig(**c))} for c in configs_valid]
    invalid_configs = [
        {"config_groups": {"W4A17": ["Linear"]}},
        {"config_groups": {"group_0": {"targets": ["Linear"], "weights": {"num_bits": 8, "strategy": "token"}}}},
        {"config_groups": {"group_0": {"targets": ["Linear"], "weights": w4, "extra": 1}}},
        {"ignore": ["lm_head"]},
        {"config_groups": {"W4A16": ["Linear"]}, "quantization_status": "done"},
        {"config_groups": {"W4A16": ["Linear"]}, "kv_cache_scheme": {"num_bits": 8, "strategy": "token"}},
        {"config_groups": {"W4A16": ["Linear"]}, "ignore": "lm_head"},
    ]
    bad_configs = [{"input": c, **err(lambda c=c: QuantizationConfig(**c))} for c in invalid_configs]
    for b in bad_configs:
        assert "error" in b, b
    # compressors/format.py infer_module_format for a Linear with every preset (and a few custom schemes)
    from compressed_tensors.compressors.format import infer_module_format

    fmt_schemes = {name: preset_name_to_scheme(name, ["Linear"]) for name in PRESET_SCHEMES if name != "UNQUANTIZED"}
    fmt_schemes["int16-weight-only"] = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(num_bits=16))
    fmt_schemes["fp8-weight-only"] = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(num_bits=8, type="float"))
    fmt_schemes["mxfp8-fp16-scale"] = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(num_bits=8, type="float", group_size=32))
    fmt_schemes["kv-only"] = QuantizationScheme(targets=["Linear"], input_activations=QuantizationArgs(num_bits=8, type="float"))
    formats = [{"scheme": dump(sc), "format": infer_module_format(torch.nn.Linear, sc).value, "name": n} for n, sc in fmt_schemes.items()]
    return {
        "formats": formats,
        "presets": presets,
        "args": args,
        "invalid_args": bad_args,
        "invalid_schemes": bad_schemes,
        "configs": configs,
        "invalid_configs": bad_configs,
    }


def live(seed: int, count: int):
    """Random weight/activation cases for the optional live interop test (LLMQ_PYTHON); JSON on stdout."""
    import random

    rnd = random.Random(seed)
    cases = []
    for k in range(count):
        dtype = rnd.choice([torch.float32, torch.bfloat16, torch.float16])
        fam = rnd.choice(["int-group", "int-channel", "int-tensor", "int-block", "fp8", "fp8-block", "nvfp4", "mx"])
        sym = rnd.random() < 0.5
        rows = rnd.randint(1, 12)
        if fam == "int-group":
            gs = rnd.choice([8, 16, 32])
            kw, cols = dict(num_bits=rnd.randint(2, 8), group_size=gs, symmetric=sym), gs * rnd.randint(1, 4)
        elif fam == "int-channel":
            kw, cols = dict(num_bits=rnd.randint(2, 16), strategy="channel", symmetric=sym), rnd.randint(1, 70)
        elif fam == "int-tensor":
            kw, cols = dict(num_bits=rnd.randint(2, 8), symmetric=sym), rnd.randint(1, 70)
        elif fam == "int-block":
            kw, cols = dict(num_bits=rnd.randint(2, 8), strategy="block", block_structure=[rnd.randint(1, 6), rnd.randint(1, 9)], symmetric=sym), rnd.randint(1, 40)
        elif fam == "fp8":
            kw, cols = dict(num_bits=8, type="float", strategy=rnd.choice(["tensor", "channel"]), symmetric=sym), rnd.randint(1, 70)
        elif fam == "fp8-block":
            kw, cols = dict(num_bits=8, type="float", strategy="block", block_structure=[rnd.randint(1, 6), rnd.randint(1, 9)]), rnd.randint(1, 40)
        elif fam == "nvfp4":
            kw, cols = dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, scale_dtype="torch.float8_e4m3fn"), 16 * rnd.randint(1, 4)
        else:
            kw, cols = dict(num_bits=rnd.choice([4, 6, 8]), type="float", group_size=32, scale_dtype="torch.uint8"), 32 * rnd.randint(1, 3)
        mul = 10 ** rnd.uniform(-6, 3)
        zero = (rnd.randrange(rows),) if rnd.random() < 0.3 else ()
        cases.append(weight_case(f"live-{seed}-{k}/{DT[dtype]}/{fam}", kw, dtype, (rows, cols), seed * 1000 + k, zero, mul))
        # and one activation case per weight case
        afam = rnd.choice(["token", "tensor", "group-fp8", "group-mx", "nvfp4-local", "attn_head"])
        b, t = rnd.randint(1, 3), rnd.randint(1, 4)
        sd = seed * 1000 + 500 + k
        if afam == "token":
            akw = dict(num_bits=rnd.choice([4, 8]), type=rnd.choice(["int", "float"]), strategy="token", dynamic=True, symmetric=sym)
            if akw["type"] == "float":
                akw["num_bits"] = 8
            case = activation_case(f"live-{seed}-{k}/{DT[dtype]}/a-{afam}", akw, dtype, (b, t, 8 * rnd.randint(1, 8)), sd, (2,), mul=mul)
        elif afam == "tensor":
            akw = dict(num_bits=rnd.randint(2, 8), symmetric=sym)
            case = activation_case(f"live-{seed}-{k}/{DT[dtype]}/a-{afam}", akw, dtype, (t, 8 * rnd.randint(1, 8)), sd, None, mul=mul)
        elif afam == "group-fp8":
            akw = dict(num_bits=8, type="float", group_size=16, dynamic=True)
            case = activation_case(f"live-{seed}-{k}/{DT[dtype]}/a-{afam}", akw, dtype, (b, t, 16 * rnd.randint(1, 4)), sd, None, group=16, mul=mul)
        elif afam == "group-mx":
            akw = dict(num_bits=rnd.choice([4, 6, 8]), type="float", group_size=32, dynamic=True, scale_dtype="torch.uint8")
            case = activation_case(f"live-{seed}-{k}/{DT[dtype]}/a-{afam}", akw, dtype, (b, t, 32 * rnd.randint(1, 3)), sd, None, group=32, mul=mul)
        elif afam == "nvfp4-local":
            akw = dict(num_bits=4, type="float", strategy="tensor_group", group_size=16, dynamic="local", scale_dtype="torch.float8_e4m3fn")
            case = activation_case(f"live-{seed}-{k}/{DT[dtype]}/a-{afam}", akw, dtype, (b, t, 16 * rnd.randint(1, 4)), sd, None, group=16, mul=mul, local_global=True)
        else:
            akw = dict(num_bits=8, type=rnd.choice(["int", "float"]), strategy="attn_head", symmetric=sym)
            case = activation_case(f"live-{seed}-{k}/{DT[dtype]}/a-{afam}", akw, dtype, (b, rnd.randint(1, 4), t, 8), sd, (0, 2, 3), mul=mul)
        cases.append(case)
    json.dump({"meta": {"compressed_tensors": compressed_tensors.__version__}, "cases": cases}, sys.stdout)


def live_args(seed: int, count: int):
    """Random QuantizationArgs inputs (valid and invalid) with CT's verdict, for the optional live decoder test."""
    import random

    rnd = random.Random(seed)
    pools = {
        "num_bits": [1, 2, 3, 4, 5, 6, 7, 8, 8, 4, 12, 16, 32, 0, -1, "4", 4.5, None, True],
        "type": ["int", "float", "float", "INT", "Float", "uint", None, 3],
        "symmetric": [True, False, "yes", "no", 0, 1, "maybe", None],
        "group_size": [None, -1, 0, 16, 32, 128, 128, -2, "64"],
        "strategy": [None, "tensor", "channel", "group", "block", "token", "tensor_group", "attn_head", "GROUP", "row"],
        "block_structure": [None, [128, 128], [2, 4], "8x16", [128], [0, 1], "axb", [1.5, 2]],
        "dynamic": [False, True, "local", "LOCAL", "sometimes", None, 0, 1],
        "actorder": [None, False, True, "weight", "static", "group", "WEIGHT", "dynamic"],
        "scale_dtype": [None, "torch.float8_e4m3fn", "torch.uint8", "float16", "torch.float", "torch.float128", 8],
        "zp_dtype": [None, "torch.float8_e4m3fn", "torch.uint8", "torch.int8", "int16", "torch.float128", 8],
        "observer": [None, "minmax", "mse", 3],
        "observer_kwargs": [{}, {"averaging_constant": 0.1}, [], None],
    }
    out = []
    for _ in range(count):
        a = {k: rnd.choice(v) for k, v in pools.items() if rnd.random() < 0.35}
        if rnd.random() < 0.03:
            a["bits"] = 4
        e = err(lambda a=a: QuantizationArgs(**a))
        out.append({"input": a, **(e if e else {"dump": dump(QuantizationArgs(**a))})})
    json.dump({"meta": {"compressed_tensors": compressed_tensors.__version__}, "args": out}, sys.stdout)


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "--live-args":
        live_args(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 500)
        return
    if len(sys.argv) > 1 and sys.argv[1] == "--live":
        live(int(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) > 3 else 200)
        return
    os.makedirs(OUT, exist_ok=True)
    meta = {"compressed_tensors": compressed_tensors.__version__, "torch": torch.__version__.split("+")[0]}
    with open(os.path.join(OUT, "args.json"), "w") as f:
        json.dump({"meta": meta, **args_fixtures()}, f, indent=1, sort_keys=False)
        f.write("\n")
    with open(os.path.join(OUT, "numerics.json"), "w") as f:
        json.dump({"meta": meta, "cases": numerics()}, f, separators=(",", ":"))
        f.write("\n")
    for n in ("args.json", "numerics.json"):
        print(n, os.path.getsize(os.path.join(OUT, n)), "bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
