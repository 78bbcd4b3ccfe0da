#!/usr/bin/env python3
# Test vectors for @llmq/serialization, made with the real Python libraries.
#
# Command (from the repo root; writes packages/serialization/fixtures/, deterministic):
#   $LLMQ_PYTHON tools/gen_serialization_fixtures.py
#
# Versions used: safetensors 0.8.0, compressed-tensors 0.20.0, transformers 5.24.0, huggingface_hub 2.4.0,
# torch 2.13.0 (CPU). The script prints them and refuses other compressed-tensors versions.
#
# Outputs (all small):
#   safetensors/*.safetensors  files written by safetensors.torch.save_file (+ manifest.json: per tensor dtype, shape,
#                              raw bytes as hex, and the order in which the dict was given)
#   compressors/<case>.*       per compressed-tensors format and bit width: the compressor inputs (codes, scale, zp,
#                              g_idx, global scale), the compressor's output state dict, and its decompressed weight,
#                              each saved with safetensors (metadata {"format": "pt"}); manifest.json has the scheme
#                              (QuantizationScheme.model_dump) and the inferred format
#   sharded/                   a tiny Llama saved by transformers' save_pretrained with a tiny max_shard_size
#                              (+ order.json: the state-dict order and max_shard_size)
#   config/                    config.json files written by ModelCompressor.update_config (+ the inputs)
import json
import os
import shutil
import sys

import torch

import compressed_tensors
import huggingface_hub
import safetensors
import transformers
from safetensors.torch import save_file

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "packages", "serialization", "fixtures")

if compressed_tensors.__version__ != "0.20.0":
    sys.exit(f"expected compressed-tensors 0.20.0, found {compressed_tensors.__version__}")

from compressed_tensors.compressors import BaseCompressor  # noqa: E402
from compressed_tensors.compressors.format import infer_module_format  # noqa: E402
from compressed_tensors.compressors.model_compressors.model_compressor import ModelCompressor  # noqa: E402
from compressed_tensors.quantization import (  # noqa: E402
    QuantizationArgs,
    QuantizationConfig,
    QuantizationScheme,
    QuantizationStatus,
    preset_name_to_scheme,
)
from compressed_tensors.quantization.lifecycle.forward import quantize  # noqa: E402
from compressed_tensors.quantization.utils import calculate_qparams, generate_gparam  # noqa: E402

torch.manual_seed(1234)
gen = torch.Generator().manual_seed(1234)


def fresh(d):
    p = os.path.join(ROOT, d)
    shutil.rmtree(p, ignore_errors=True)
    os.makedirs(p)
    return p


def rnd(shape, dtype=torch.float32, scale=1.0):
    return (torch.randn(shape, generator=gen) * scale).to(dtype)


# ------------------------------------------------------------------------------------------------------------
# 1. plain safetensors files
# ------------------------------------------------------------------------------------------------------------


def st_manifest_entry(name, t):
    return {
        "name": name,
        "dtype": str(t.dtype).replace("torch.", ""),
        "shape": list(t.shape),
        "hex": t.contiguous().view(-1).view(torch.uint8).numpy().tobytes().hex() if t.numel() else "",
    }


def gen_safetensors():
    out = fresh("safetensors")
    manifest = {}

    def emit(fname, tensors, metadata):
        save_file(tensors, os.path.join(out, fname), metadata=metadata)
        manifest[fname] = {
            "metadata": metadata,
            "order": list(tensors.keys()),
            "tensors": [st_manifest_entry(k, v) for k, v in tensors.items()],
        }

    every = {
        "w.f64": rnd((3, 5), torch.float64),
        "w.f32": rnd((7,), torch.float32),
        "w.f16": rnd((2, 3, 1), torch.float16),
        "w.bf16": rnd((5, 3), torch.bfloat16),
        "w.f8_e4m3": rnd((3, 3), torch.float32, 50).clamp(-448, 448).to(torch.float8_e4m3fn),
        "w.f8_e5m2": rnd((9,), torch.float32, 1000).to(torch.float8_e5m2),
        "w.i64": torch.tensor([-(2**62) - 3, 2**53 + 1, -1, 0, 7], dtype=torch.int64),
        "w.i32": torch.randint(-(2**31), 2**31 - 1, (2, 2), generator=gen, dtype=torch.int32),
        "w.i16": torch.randint(-(2**15), 2**15 - 1, (3,), generator=gen, dtype=torch.int16),
        "w.i8": torch.randint(-128, 127, (11,), generator=gen, dtype=torch.int8),
        "w.u8": torch.randint(0, 255, (4, 2), generator=gen, dtype=torch.uint8),
        "w.bool": torch.tensor([True, False, True], dtype=torch.bool),
    }
    emit("all-dtypes.safetensors", every, {"format": "pt"})
    # dict order different from the sorted order, no metadata
    emit("all-dtypes-nometa.safetensors", dict(reversed(list(every.items()))), None)
    # ordering of names (byte order, not natural order), escapes and non-ASCII names, scalar and empty tensors,
    # header lengths that need padding
    edge = {
        "layers.10.w": rnd((2,), torch.float32),
        "layers.9.w": rnd((2,), torch.float32),
        "B": rnd((1,), torch.float32),
        "a": rnd((1,), torch.float32),
        "é": rnd((), torch.float32),
        "日本": rnd((3,), torch.bfloat16),
        "q\"u\\o/te\ttab": rnd((2,), torch.float16),
        "empty": torch.zeros((0,), dtype=torch.float32),
        "empty2": torch.zeros((2, 0, 3), dtype=torch.int8),
        "scalar_i64": torch.tensor(5, dtype=torch.int64),
    }
    emit("edge.safetensors", edge, {"format": "pt"})
    for pad in range(8):
        # names of growing length so every header length mod 8 is hit
        emit(f"pad-{pad}.safetensors", {"x" * (pad + 1): rnd((1,), torch.float32)}, None)
    # several metadata keys: safetensors serialises its metadata from a Rust HashMap, so the key order differs
    # between runs; tests compare these headers as JSON, not as bytes.
    emit("multi-meta.safetensors", {"t": rnd((2, 2), torch.float16)}, {"format": "pt", "author": "llmq ü", "x": "1"})
    emit("empty-file.safetensors", {}, None)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


# ------------------------------------------------------------------------------------------------------------
# 2. compressors
# ------------------------------------------------------------------------------------------------------------


def minmax(w, args):
    """Per-strategy min/max as CT's observers reduce them (weights)."""
    out_f, in_f = w.shape[-2], w.shape[-1]
    s = args.strategy
    if s == "tensor":
        return w.amin().reshape(1), w.amax().reshape(1)
    if s == "channel":
        return w.amin(dim=1, keepdim=True), w.amax(dim=1, keepdim=True)
    if s in ("group", "tensor_group"):
        g = w.reshape(*w.shape[:-1], w.shape[-1] // args.group_size, args.group_size)
        return g.amin(-1), g.amax(-1)
    if s == "block":
        bh, bw = args.block_structure
        import math

        ro, co = math.ceil(out_f / bh), math.ceil(in_f / bw)
        mn = torch.empty(ro, co, dtype=w.dtype)
        mx = torch.empty(ro, co, dtype=w.dtype)
        for i in range(ro):
            for j in range(co):
                blk = w[i * bh : (i + 1) * bh, j * bw : (j + 1) * bw]
                mn[i, j], mx[i, j] = blk.amin(), blk.amax()
        return mn, mx
    raise ValueError(s)


def gen_compressors():
    out = fresh("compressors")
    manifest = {}

    def case(name, scheme, shape, wdtype=torch.bfloat16, g_idx=False):
        args = scheme.weights
        w = rnd(shape, torch.float32, 0.05).to(wdtype)
        mn, mx = minmax(w, args)
        gscale = None
        if args.strategy == "tensor_group":
            gscale = generate_gparam(w.amin(), w.amax())
        scale, zp = calculate_qparams(mn, mx, args, global_scale=gscale)
        if args.type == "int":
            codes = quantize(w, scale, zp, args, dtype=torch.int8 if args.num_bits <= 8 else torch.int16)
        elif args.num_bits == 8:
            codes = quantize(w, scale, zp, args, dtype=torch.float8_e4m3fn)
        else:  # fp4 values, kept as float32 values
            codes = quantize(w, scale, zp, args, global_scale=gscale).to(torch.float32)
        sd = {"weight": w, "weight_scale": scale}
        inputs = {"weight_codes": codes.contiguous(), "weight_scale": scale.contiguous()}
        if zp is not None and not args.symmetric:
            sd["weight_zero_point"] = zp
            inputs["weight_zero_point"] = zp.contiguous()
        elif zp is not None:
            sd["weight_zero_point"] = zp  # symmetric zero points must be dropped by the compressor
        if gscale is not None:
            sd["weight_global_scale"] = gscale
            inputs["weight_global_scale"] = gscale
        if g_idx:
            perm = torch.randperm(shape[1], generator=gen)
            gi = (perm // args.group_size).to(torch.int32)
            sd["weight_g_idx"] = gi
            inputs["weight_g_idx"] = gi
        if scheme.input_activations is not None and not scheme.input_activations.dynamic:
            sd["input_scale"] = torch.tensor([0.0125], dtype=wdtype)
            inputs["input_scale"] = sd["input_scale"]
        fmt = infer_module_format(torch.nn.Linear, scheme)
        comp = BaseCompressor.get_value_from_registry(fmt.value)
        compressed = comp.compress(dict(sd), scheme)
        compressed = {k: v.contiguous() for k, v in compressed.items()}
        decompressed = comp.decompress(dict(compressed), scheme)
        save_file(inputs, os.path.join(out, f"{name}.inputs.safetensors"), metadata={"format": "pt"})
        save_file(compressed, os.path.join(out, f"{name}.compressed.safetensors"), metadata={"format": "pt"})
        save_file(
            {"weight": decompressed["weight"].contiguous()},
            os.path.join(out, f"{name}.decompressed.safetensors"),
            metadata={"format": "pt"},
        )
        manifest[name] = {
            "format": fmt.value,
            "scheme": json.loads(scheme.model_dump_json()),
            "compressed_order": list(compressed.keys()),
            "decompressed_dtype": str(decompressed["weight"].dtype).replace("torch.", ""),
        }

    def group_args(bits, sym, gs=32, strategy="group", actorder=None):
        return QuantizationArgs(
            num_bits=bits, type="int", symmetric=sym, strategy=strategy,
            group_size=gs if strategy == "group" else None, actorder=actorder,
        )

    for bits in range(1, 9):
        for sym in (True, False):
            sch = QuantizationScheme(targets=["Linear"], weights=group_args(bits, sym))
            case(f"pack-b{bits}-{'sym' if sym else 'asym'}-group", sch, (20, 96))
    # channel strategy, odd in-features (row padding to 32 elements), asym zero points packed along dim 0
    for bits in (3, 4, 8):
        sch = QuantizationScheme(targets=["Linear"], weights=group_args(bits, False, strategy="channel"))
        case(f"pack-b{bits}-asym-channel", sch, (37, 100))
    sch = QuantizationScheme(targets=["Linear"], weights=group_args(4, True, strategy="channel"))
    case("pack-b4-sym-channel-f16", sch, (9, 40), torch.float16)
    sch = QuantizationScheme(targets=["Linear"], weights=group_args(4, True, strategy="tensor"))
    case("pack-b4-sym-tensor-f32", sch, (5, 64), torch.float32)
    # 3-D (MoE experts [E, out, in]): packed per 2-D slice, zero points packed along dim 0 of each slice
    for bits in (3, 4):
        sch = QuantizationScheme(targets=["Linear"], weights=group_args(bits, False))
        case(f"pack-b{bits}-asym-group-moe3d", sch, (3, 10, 64))
    # act-order: CT 0.20 removed actorder="group" (only "weight"/"static"); a legacy weight_g_idx still passes through
    sch = QuantizationScheme(targets=["Linear"], weights=group_args(4, True, actorder="weight"))
    case("pack-b4-sym-group-actorder", sch, (16, 128), g_idx=True)
    sch = QuantizationScheme(targets=["Linear"], weights=group_args(6, False, actorder="weight"))
    case("pack-b6-asym-group-actorder", sch, (16, 128), g_idx=True)
    # int-quantized: W8A8 (weights int8 channel + dynamic per-token int8 activations)
    case("int-w8a8", preset_name_to_scheme("W8A8", ["Linear"]), (24, 64))
    # int-quantized, asym weights with static asym input activations
    sch = QuantizationScheme(
        targets=["Linear"], weights=group_args(8, False, strategy="channel"),
        input_activations=QuantizationArgs(num_bits=8, type="int", symmetric=True, strategy="tensor", dynamic=False),
    )
    case("int-w8a8-asym-static", sch, (12, 48))
    # float-quantized: FP8 (static per-tensor weights + activations) and FP8_DYNAMIC and FP8_BLOCK (padding path)
    case("float-fp8", preset_name_to_scheme("FP8", ["Linear"]), (24, 64))
    case("float-fp8-dynamic", preset_name_to_scheme("FP8_DYNAMIC", ["Linear"]), (24, 64))
    blk = preset_name_to_scheme("FP8_BLOCK", ["Linear"])
    blk.weights = QuantizationArgs(num_bits=8, type="float", strategy="block", symmetric=True, dynamic=False,
                                   block_structure=[8, 16])
    case("float-fp8-block", blk, (20, 40))
    # naive-quantized: fp8 weight-only, and int16 weights (too wide to pack)
    sch = QuantizationScheme(targets=["Linear"], weights=QuantizationArgs(num_bits=8, type="float", strategy="channel"))
    case("naive-fp8-weight-only", sch, (8, 32))
    # nvfp4 (tensor_group, fp8 scales, fp32 global scale) and mxfp4 (E8M0 uint8 scales), mxfp8
    case("nvfp4", preset_name_to_scheme("NVFP4", ["Linear"]), (16, 64))
    case("nvfp4a16", preset_name_to_scheme("NVFP4A16", ["Linear"]), (8, 48))
    case("mxfp4", preset_name_to_scheme("MXFP4", ["Linear"]), (16, 64))
    case("mxfp8", preset_name_to_scheme("MXFP8", ["Linear"]), (8, 64))
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)


# ------------------------------------------------------------------------------------------------------------
# 3. sharded save by transformers
# ------------------------------------------------------------------------------------------------------------


def gen_sharded():
    out = fresh("sharded")
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=64, tie_word_embeddings=False,
    )
    torch.manual_seed(7)
    model = LlamaForCausalLM(cfg).to(torch.bfloat16)
    max_shard = "12KB"
    model.save_pretrained(out, max_shard_size=max_shard)
    for extra in ("config.json", "generation_config.json"):
        p = os.path.join(out, extra)
        if os.path.exists(p):
            os.remove(p)
    with open(os.path.join(out, "order.json"), "w") as f:
        json.dump({"max_shard_size": max_shard, "order": list(model.state_dict().keys()),
                   "total_parameters": model.num_parameters()}, f, indent=1)


# ------------------------------------------------------------------------------------------------------------
# 4. config.json quantization_config
# ------------------------------------------------------------------------------------------------------------


def gen_config():
    out = fresh("config")
    base = {
        "architectures": ["LlamaForCausalLM"], "hidden_size": 32, "rms_norm_eps": 1e-05, "rope_theta": 10000.0,
        "initializer_range": 0.02, "torch_dtype": "bfloat16", "name": "tiny \u00e9\u65e5 \U0001F600 \u007f \"q\"",
        "big": 1e16, "small": 0.0001, "tiny": 1.5e-07, "neg": -2.5, "int_big": 12345678901234567890,
        "nested": {"b": [1, 2.0, None, True, False, {}], "a": [], "Z": "x"},
    }
    cases = {}
    w4 = preset_name_to_scheme("W4A16", ["Linear"])
    w4.format = "pack-quantized"
    cases["w4a16"] = QuantizationConfig(
        config_groups={"group_0": w4}, format="pack-quantized", ignore=["lm_head"],
        quantization_status=QuantizationStatus.COMPRESSED,
    )
    asym = preset_name_to_scheme("W4A16_ASYM", ["Linear"])
    asym.format = "pack-quantized"
    fp8 = preset_name_to_scheme("FP8", ["re:.*down_proj$"])
    fp8.format = "float-quantized"
    cases["mixed-kv"] = QuantizationConfig(
        config_groups={"group_0": asym, "group_1": fp8}, format="mixed-precision", ignore=["lm_head", "re:.*gate$"],
        quantization_status=QuantizationStatus.COMPRESSED,
        kv_cache_scheme=QuantizationArgs(num_bits=8, type="float", strategy="tensor", dynamic=False, symmetric=True),
    )
    nv = preset_name_to_scheme("NVFP4", ["Linear"])
    nv.format = "nvfp4-pack-quantized"
    cases["nvfp4"] = QuantizationConfig(
        config_groups={"group_0": nv}, format="nvfp4-pack-quantized", ignore=["lm_head"],
        quantization_status=QuantizationStatus.COMPRESSED, global_compression_ratio=1.5,
    )
    manifest = {}
    for name, qc in cases.items():
        d = os.path.join(out, name)
        os.makedirs(d)
        with open(os.path.join(d, "config.json"), "w") as f:
            json.dump(base, f, indent=2)
        shutil.copy(os.path.join(d, "config.json"), os.path.join(d, "config.before.json"))
        ModelCompressor(quantization_config=qc).update_config(d)
        manifest[name] = json.loads(qc.model_dump_json())
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
    # Python float repr and json string escaping, for the JSON writer
    import random
    import struct

    r = random.Random(5)
    floats = [0.0, -0.0, 1.0, 0.1, 1e-05, 0.0001, 1e16, 1e15, 1234567890123456.0, 12345678901234567.0, 5e-324,
              1.7976931348623157e308, 2.0**-1074 * 3, 100.0, -2.5, 1.5e-07, 0.3, 2 / 3, 1e22, 1e21, 123.456]
    floats += [struct.unpack("<d", struct.pack("<Q", r.getrandbits(64)))[0] for _ in range(300)]
    floats += [r.uniform(-1e6, 1e6) for _ in range(100)] + [r.random() * 10.0 ** r.randint(-30, 30) for _ in range(100)]
    floats = [x for x in floats if x == x and abs(x) != float("inf")]
    strings = ["plain", "q\"uote", "back\\slash", "nl\n tab\t cr\r bs\b ff\f", "\x00\x1f\x7f", "caf\u00e9 \u65e5\u672c \U0001F600",
               "\ud800", "/slash"]
    with open(os.path.join(out, "python-json.json"), "w") as f:
        json.dump({
            "floats": [[struct.pack("<d", x).hex(), repr(x), json.dumps(x)] for x in floats],
            "strings": [[s.encode("utf-16-le", "surrogatepass").hex(), json.dumps(s)] for s in strings],
        }, f, indent=0)


if __name__ == "__main__":
    print(
        f"safetensors {safetensors.__version__}, compressed-tensors {compressed_tensors.__version__}, "
        f"transformers {transformers.__version__}, huggingface_hub {huggingface_hub.__version__}, torch {torch.__version__}"
    )
    gen_safetensors()
    gen_compressors()
    gen_sharded()
    gen_config()
    total = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(ROOT) for f in fs)
    print(f"fixtures: {total} bytes under {os.path.relpath(ROOT)}")
