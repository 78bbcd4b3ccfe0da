"""EETQ int8 fixtures from EETQ's own host code (kernels-community/quantization-eetq, what transformers 5.24 loads).

transformers' EetqQuantize hands `torch.t(weight).contiguous()` (the [in, out] matrix) to the kernel's
`quant_weights(w, torch.int8, False)`, a CPU op: symmetric_quantize in cutlass_kernels/cutlass_preprocessors.cc, which
quantizes every column (output channel) and then runs preprocess_weights_for_mixed_gemm for the SM version the CUDA
driver reports. That file is plain C++; tools/eetq_harness/ compiles it unchanged with g++ against host-only stand-ins
for cuda_utils.h (getSMVersion answers the SM version given) and the few CUTLASS type tags mixed_gemm_B_layout.h reads.
No GPU is involved: EETQ's GEMM (w8_a16_gemm) is CUDA-only, so transformers cannot load the result on this machine.

    git clone https://github.com/huggingface/kernels-community /tmp/kernels-community
    git -C /tmp/kernels-community checkout 40d4194f48b6775c4be4776ed08035fabb0e758f
    $LLMQ_PYTHON tools/gen_eetq_fixtures.py /tmp/kernels-community   # ~5 s; writes packages/serialization/fixtures/eetq/
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np
import torch
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "packages", "serialization", "fixtures", "eetq")
KERNEL_COMMIT = "40d4194f48b6775c4be4776ed08035fabb0e758f"
# SM versions whose preprocessing must agree byte for byte (EETQ picks cutlass::arch::Sm75 / Sm80 layout traits,
# which are the same for int8); 70 (Volta, row-major) differs and 90+ is refused ("Unsupported Arch").
SAME_LAYOUT = [75, 80, 86, 89]


def build(kc):
    src = os.path.join(kc, "quantization-eetq")
    exe = os.path.join(tempfile.mkdtemp(), "eetq_harness")
    subprocess.run(
        ["g++", "-O2", "-std=c++17", "-I", os.path.join(HERE, "eetq_harness", "shim"), "-I", os.path.join(src, "cutlass_kernels"),
         "-I", os.path.join(src, "cutlass_extensions", "include"), os.path.join(HERE, "eetq_harness", "eetq_harness.cc"),
         os.path.join(src, "cutlass_kernels", "cutlass_preprocessors.cc"), "-o", exe],
        check=True,
    )
    return exe


def run(exe, kn, sm):
    """quant_weights on the [in, out] matrix kn (float32 or float16): (codes, preprocessed, scales) or the FT_CHECK text."""
    rows, cols = kn.shape
    bits = 32 if kn.dtype == np.float32 else 16
    r = subprocess.run([exe], input=f"{rows} {cols} {bits} {sm}\n".encode() + kn.tobytes(), capture_output=True)
    if r.returncode == 2:
        return r.stderr.decode().split(" Assertion fail")[0]
    assert r.returncode == 0, r
    n = rows * cols
    codes = np.frombuffer(r.stdout[:n], np.int8).reshape(rows, cols)
    processed = np.frombuffer(r.stdout[n : 2 * n], np.int8).reshape(rows, cols)
    scales = np.frombuffer(r.stdout[2 * n :], kn.dtype)
    return codes, processed, scales


def edges(out, inp, dtype):
    """Columns that hit EETQ's corner cases: all zero (0/0), exact .5 ties, -amax (-128) and +amax (clipped 127),
    and (in float16) a scale below float16's normal range (quantized with the unrounded float scale)."""
    g = torch.Generator().manual_seed(7)
    w = torch.randn(out, inp, generator=g) * 0.05
    w[0] = 0.0
    w[1] = (torch.arange(inp) - inp / 2 + 0.5).clamp(-127.5, 127.5)  # amax 128 -> scale 1: every value a tie
    w[1, 0] = 128.0
    w[2, 3], w[2, 5] = -1.0, 1.0  # -amax -> -128, +amax -> 128 clipped to 127
    w[3] = torch.randn(inp, generator=g) * 3e-4
    return w.to(dtype)


def main():
    kc = sys.argv[1]
    exe = build(kc)
    g = torch.Generator().manual_seed(0)
    cases = {
        "f32-64x64": (torch.randn(64, 64, generator=g) * 0.05).float(),
        "f32-192x128": (torch.randn(192, 128, generator=g) ** 3).float(),
        "f16-64x128": (torch.randn(64, 128, generator=g) * 0.02).half(),
        "f32-edges-64x64": edges(64, 64, torch.float32),
        "f16-edges-128x64": edges(128, 64, torch.float16),
    }
    tensors, manifest = {}, {"kernel": f"huggingface/kernels-community@{KERNEL_COMMIT} quantization-eetq", "sm": SAME_LAYOUT, "cases": {}}
    for name, w in cases.items():
        kn = torch.t(w).contiguous().numpy()  # what EetqQuantize.convert hands to quant_weights
        codes, processed, scales = run(exe, kn, 80)
        for sm in SAME_LAYOUT:
            other = run(exe, kn, sm)
            assert all(np.array_equal(a, b) for a, b in zip(other, (codes, processed, scales))), (name, sm)
        volta = run(exe, kn, 70)
        tensors[f"{name}/source"] = w.numpy()
        tensors[f"{name}/codes"] = codes
        tensors[f"{name}/weight"] = processed
        tensors[f"{name}/weight_scales"] = scales
        manifest["cases"][name] = {"dtype": str(w.dtype).removeprefix("torch."), "sm70_differs": not np.array_equal(volta[1], processed)}
    probe = np.zeros((64, 64), np.float32)
    manifest["sm90"] = run(exe, probe, 90)
    # Shapes EETQ refuses ([out, in] of the linear): its own FT_CHECK messages.
    manifest["refused"] = {f"{o}x{i}": run(exe, np.ones((i, o), np.float32), 80) for o, i in [(32, 64), (172, 64), (64, 48)]}
    os.makedirs(OUT, exist_ok=True)
    save_file(tensors, os.path.join(OUT, "cases.safetensors"))
    with open(os.path.join(OUT, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)
        f.write("\n")
    print(json.dumps(manifest, indent=1))


if __name__ == "__main__":
    main()
