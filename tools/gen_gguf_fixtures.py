#!/usr/bin/env python3
# GGUF test vectors for @llmq/serialization, made with the `gguf` Python package (llama.cpp's gguf-py).
#
# Command (from the repo root; writes packages/serialization/fixtures/gguf/, deterministic):
#   $LLMQ_PYTHON tools/gen_gguf_fixtures.py
#
# Versions used: gguf 0.19.0, numpy 2.x. The script prints them and refuses another gguf version.
#
# Outputs:
#   quants.gguf          written by gguf.GGUFWriter: one tensor per ggml type llmq dequantizes (F32, F16, BF16, Q4_0,
#                        Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K), 2- and 3-dimensional, plus metadata
#                        of every GGUF value type (scalars and arrays)
#   quants.expected.safetensors
#                        per tensor its f32 values as gguf.quants.dequantize gives them (the numpy port of ggml's
#                        dequantize_row_*), in torch order
#   aligned64.gguf       general.alignment = 64, odd-sized tensors (padding between them), a 1-D and a 4-D tensor
#   manifest.json        per file: the metadata as gguf.GGUFReader reads it (64-bit ints as strings) and per tensor
#                        its ggml type, ne (ggml order), shape (torch order), byte length and data offset
#
# How the quantized bytes are made: for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/BF16, gguf.quants.quantize — gguf-py's port of
# llama.cpp's quantize_row_*_ref (Q8_0 documented as bit-exact with ggml-quants.c). gguf-py has no quantizer for the
# k-quants (Q2_K…Q6_K): their blocks are random bytes whose fp16 super-block scales (d, dmin) are replaced by finite
# random halves, so every bit pattern of the 6-/4-bit sub-block scales and quants is exercised; the expected values
# come from gguf-py's dequantizer in both cases.
import json
import os
import sys

import numpy as np

import gguf
from gguf import GGMLQuantizationType as Q
from gguf.quants import dequantize, quantize

from importlib.metadata import version as pkg_version

GGUF_VERSION = pkg_version("gguf")
if GGUF_VERSION != "0.19.0":
    sys.exit(f"expected gguf 0.19.0, found {GGUF_VERSION}")
print(f"gguf {GGUF_VERSION}, numpy {np.__version__}")

from safetensors.numpy import save_file

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "gguf")
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(14)

# k-quant block layouts: byte offsets of the fp16 fields that must stay finite
HALF_FIELDS = {Q.Q2_K: [80, 82], Q.Q3_K: [108], Q.Q4_K: [0, 2], Q.Q5_K: [0, 2], Q.Q6_K: [208]}


def random_blocks(qtype, n_values):
    block, size = gguf.GGML_QUANT_SIZES[qtype]
    n_blocks = n_values // block
    raw = rng.integers(0, 256, size=(n_blocks, size), dtype=np.uint8)
    for off in HALF_FIELDS[qtype]:
        h = (rng.standard_normal(n_blocks) * 0.02).astype(np.float16)
        raw[:, off : off + 2] = h.view(np.uint8).reshape(n_blocks, 2)
    # a zero super-block scale and a negative one, as real files have
    raw[0, HALF_FIELDS[qtype][0] : HALF_FIELDS[qtype][0] + 2] = 0
    return raw


def weights(shape):
    w = rng.standard_normal(shape).astype(np.float32) * 0.05
    w.reshape(-1)[:32] = 0.0  # an all-zero block (d = 0 paths)
    w.reshape(-1)[40] = 0.9  # an outlier
    return w


def quants_file():
    path = os.path.join(OUT, "quants.gguf")
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4000000000)
    writer.add_int32("test.i32", -2000000000)
    writer.add_float32("test.f32", 0.1)
    writer.add_bool("test.bool", True)
    writer.add_string("test.string", "héllo ✓")
    writer.add_uint64("test.u64", 2**63 + 5)
    writer.add_int64("test.i64", -(2**62))
    writer.add_float64("test.f64", 0.1)
    writer.add_array("test.strings", ["a", "", "ü"])
    writer.add_array("test.ints", [1, -2, 3])
    writer.add_array("test.floats", [0.5, -1.25])
    expected = {}
    shapes = {}
    for qtype in [Q.F32, Q.F16, Q.BF16, Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0]:
        shape = (3, 2, 256) if qtype == Q.Q4_1 else (4, 256)
        w = weights(shape)
        data = w if qtype == Q.F32 else w.astype(np.float16) if qtype == Q.F16 else quantize(w, qtype)
        name = f"t.{qtype.name.lower()}"
        writer.add_tensor(name, data, raw_dtype=None if qtype in (Q.F32, Q.F16) else qtype)
        expected[name] = dequantize(data.view(np.uint8) if qtype not in (Q.F32, Q.F16) else data, qtype).astype(np.float32).reshape(shape)
        shapes[name] = shape
    for qtype in [Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
        shape = (6, 512)
        raw = random_blocks(qtype, shape[0] * shape[1]).reshape(shape[0], -1)
        name = f"t.{qtype.name.lower()}"
        writer.add_tensor(name, raw, raw_dtype=qtype)
        expected[name] = dequantize(raw, qtype).astype(np.float32).reshape(shape)
        shapes[name] = shape
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file(expected, os.path.join(OUT, "quants.expected.safetensors"))
    return path


def aligned_file():
    path = os.path.join(OUT, "aligned64.gguf")
    writer = gguf.GGUFWriter(path, arch="llama")
    writer.data_alignment = 64
    writer.add_custom_alignment(64)
    writer.add_tensor("one_d", np.arange(5, dtype=np.float32))
    writer.add_tensor("four_d", (np.arange(2 * 3 * 1 * 7, dtype=np.float32) / 7).reshape(2, 3, 1, 7))
    writer.add_tensor("half", np.arange(3, dtype=np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def plain(v):
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and abs(int(v)) > 2**53:
        return str(int(v))
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, list):
        return [plain(x) for x in v]
    return v


def describe(path):
    r = gguf.GGUFReader(path)
    meta = {}
    for k, f in r.fields.items():
        if k.startswith("GGUF."):
            continue
        types = [t.name for t in f.types]
        meta[k] = {"types": types, "value": plain(f.contents())}
    tensors = [
        {
            "name": t.name,
            "type": t.tensor_type.name,
            "ne": [int(x) for x in t.shape],
            "shape": [int(x) for x in reversed(t.shape)],
            "n_bytes": int(t.n_bytes),
            "data_offset": int(t.data_offset),
        }
        for t in r.tensors
    ]
    return {"alignment": int(r.alignment), "data_offset": int(r.data_offset), "metadata": meta, "tensors": tensors}


manifest = {"gguf": GGUF_VERSION, "files": {}}
for p in [quants_file(), aligned_file()]:
    manifest["files"][os.path.basename(p)] = describe(p)
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote", OUT)
