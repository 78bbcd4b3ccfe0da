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
# How the quantized bytes are made:
# - `t.<type>`: for Q4_0/Q4_1/Q5_0/Q5_1/Q8_0/BF16, gguf.quants.quantize — gguf-py's port of llama.cpp's
#   quantize_row_*_ref. gguf-py has no quantizer for the k-quants (Q2_K…Q6_K): their blocks are random bytes whose fp16
#   super-block scales (d, dmin) are replaced by finite random halves, so every bit pattern of the 6-/4-bit sub-block
#   scales and quants is exercised.
# - `t.<type>.lcpp`: llama.cpp's own C reference quantizers (quantize_row_<type>_ref from ggml/src/ggml-quants.c),
#   compiled from the llama.cpp vendored in the registry's llama-cpp-python 0.3.36 sdist (76 MB download, ~1 min;
#   ggml-quants.c alone with a 20-line harness and stubs for the four ggml.c helpers it references), run on real
#   weights-like data: Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K.
# The expected values are gguf-py's dequantizer's in every case (the numpy port of ggml's dequantize_row_*).
import glob
import json
import os
import subprocess
import sys
import tarfile
import tempfile

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


HARNESS = r"""
#include <stdio.h>
#include <stdlib.h>
#include "ggml-quants.h"
void ggml_abort(const char * file, int line, const char * fmt, ...) { fprintf(stderr, "abort %s:%d\n", file, line); abort(); }
size_t ggml_row_size(enum ggml_type type, int64_t ne) { (void)type; (void)ne; abort(); }
size_t ggml_type_size(enum ggml_type type) { (void)type; abort(); }
const char * ggml_type_name(enum ggml_type type) { (void)type; return "?"; }
int main(int argc, char ** argv) {
  int t = atoi(argv[1]); long n = atol(argv[2]);
  float * x = malloc(n * 4); void * y = malloc(n * 2); size_t b = 0;
  if (fread(x, 4, n, stdin) != (size_t)n) return 2;
  switch (t) {
    case 2: quantize_row_q4_0_ref(x, y, n); b = n / 32 * 18; break;
    case 3: quantize_row_q4_1_ref(x, y, n); b = n / 32 * 20; break;
    case 6: quantize_row_q5_0_ref(x, y, n); b = n / 32 * 22; break;
    case 7: quantize_row_q5_1_ref(x, y, n); b = n / 32 * 24; break;
    case 8: quantize_row_q8_0_ref(x, y, n); b = n / 32 * 34; break;
    case 10: quantize_row_q2_K_ref(x, y, n); b = n / 256 * 84; break;
    case 11: quantize_row_q3_K_ref(x, y, n); b = n / 256 * 110; break;
    case 12: quantize_row_q4_K_ref(x, y, n); b = n / 256 * 144; break;
    case 13: quantize_row_q5_K_ref(x, y, n); b = n / 256 * 176; break;
    case 14: quantize_row_q6_K_ref(x, y, n); b = n / 256 * 210; break;
    default: return 3;
  }
  fwrite(y, 1, b, stdout);
  return 0;
}
"""


def llama_cpp_quantizer():
    """Builds llama.cpp's reference quantizers (ggml-quants.c) from the llama-cpp-python sdist; returns the binary."""
    work = tempfile.mkdtemp()
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet", "-d", work, "llama-cpp-python==0.3.36"])
    root = "llama_cpp_python-0.3.36/vendor/llama.cpp/ggml"
    with tarfile.open(glob.glob(f"{work}/*.tar.gz")[0]) as t:
        members = [m for m in t.getmembers() if m.name.startswith(f"{root}/include/") or m.name in (f"{root}/src/{f}" for f in ("ggml-quants.c", "ggml-quants.h", "ggml-common.h", "ggml-impl.h")) or m.name.startswith(f"{root}/src/ggml-cpu/") and m.name.endswith(".h")]
        t.extractall(work, members=members, filter="data")
    g = f"{work}/{root}"
    with open(f"{work}/harness.c", "w") as f:
        f.write(HARNESS)
    subprocess.check_call(["gcc", "-O2", "-std=c11", f"-I{g}/include", f"-I{g}/src", f"-I{g}/src/ggml-cpu", "-c", f"{g}/src/ggml-quants.c", "-o", f"{work}/q.o"])
    subprocess.check_call(["gcc", "-O2", f"-I{g}/include", f"-I{g}/src", f"{work}/harness.c", f"{work}/q.o", "-lm", "-o", f"{work}/harness"])
    return f"{work}/harness"


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
    harness = llama_cpp_quantizer()
    gguf_py_matches = {}
    for qtype in [Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0, Q.Q2_K, Q.Q3_K, Q.Q4_K, Q.Q5_K, Q.Q6_K]:
        shape = (4, 512)
        w = weights(shape)
        raw = subprocess.run([harness, str(int(qtype)), str(w.size)], input=w.tobytes(), capture_output=True, check=True).stdout
        block, size = gguf.GGML_QUANT_SIZES[qtype]
        data = np.frombuffer(raw, dtype=np.uint8).reshape(shape[0], -1)
        name = f"t.{qtype.name.lower()}.lcpp"
        if qtype in (Q.Q4_0, Q.Q4_1, Q.Q5_0, Q.Q5_1, Q.Q8_0):  # gguf-py's ports give llama.cpp's bytes?
            gguf_py_matches[qtype.name] = bool(np.array_equal(quantize(w, qtype).reshape(shape[0], -1), data))
        writer.add_tensor(name, data, raw_dtype=qtype)
        expected[name] = dequantize(data, qtype).astype(np.float32).reshape(shape)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    save_file(expected, os.path.join(OUT, "quants.expected.safetensors"))
    os.chmod(os.path.join(OUT, "quants.expected.safetensors"), 0o644)
    print("gguf-py quantizers byte-equal to llama.cpp's C reference:", gguf_py_matches)
    return path, gguf_py_matches


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


quants_path, matches = quants_file()
manifest = {"gguf": GGUF_VERSION, "llama_cpp": "vendored in llama-cpp-python 0.3.36", "gguf_py_quantizer_equals_llama_cpp": matches, "files": {}}
for p in [quants_path, aligned_file()]:
    manifest["files"][os.path.basename(p)] = describe(p)
with open(os.path.join(OUT, "manifest.json"), "w") as f:
    json.dump(manifest, f, indent=1, ensure_ascii=False)
    f.write("\n")
print("wrote", OUT)
