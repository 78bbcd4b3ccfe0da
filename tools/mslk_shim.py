"""mslk's int4 quantization, from its real Python source, for torchao 0.18's Int4Tensor on CPU (imported, never run).

torchao 0.18's Int4WeightOnlyConfig (int4_packing_format "plain" = Int4Tensor.from_hp) calls
`mslk.quantize.shuffle.int4_row_quantize_zp` and `pack_int4`, pure torch functions. The mslk wheel on PyPI is an empty
0.0.0 placeholder and the real package is a CUDA build, so `install()` builds a minimal `mslk` package in a temp
directory and puts it first on sys.path: `mslk/quantize/shuffle.py` is MSLK's file byte for byte (read from a clone,
checked against the sha256 below), every other module is empty except `mslk/quantize/triton/fp8_quantize.py`, whose
`quantize_fp8_row` (a Triton kernel shuffle.py imports at module level, used only by the fp8-activation and
preshuffled paths llmq does not take) raises. The empty `mslk.conv` / `mslk.gemm` exist because torchao's
float8_tensor.py imports them whenever `mslk` is importable. Nothing compiled is loaded: Int4Tensor's linear
(torch.ops.mslk.bf16i4bf16_rowwise, a CUTLASS kernel) stays unavailable.

Source: https://github.com/meta-pytorch/MSLK at commit MSLK_COMMIT, file mslk/quantize/shuffle.py. Give a clone in
$LLMQ_MSLK (a git directory or a work tree; `git clone https://github.com/meta-pytorch/MSLK`), read at that commit.
"""
import hashlib
import os
import subprocess
import sys
import tempfile

MSLK_COMMIT = "2a3c89786adf55359cfcc5d5cb9f4c41875eaac6"
SHUFFLE_SHA256 = "da6f37f5628559906b36079a31ac639a618d199aa1a0e10d4943bc63e536ebe3"
_FP8_STUB = "def quantize_fp8_row(*args, **kwargs):\n    raise NotImplementedError('mslk_shim: quantize_fp8_row is a Triton kernel')\n"


def shuffle_source(clone: str) -> str:
    git = ["git", "--git-dir", clone] if clone.endswith(".git") or os.path.isfile(os.path.join(clone, "HEAD")) else ["git", "-C", clone]
    src = subprocess.check_output([*git, "show", f"{MSLK_COMMIT}:mslk/quantize/shuffle.py"], text=True)
    digest = hashlib.sha256(src.encode()).hexdigest()
    if digest != SHUFFLE_SHA256:
        raise RuntimeError(f"mslk/quantize/shuffle.py at {MSLK_COMMIT} has sha256 {digest}, expected {SHUFFLE_SHA256}")
    return src


def install(clone: str | None = None) -> str:
    """Put the minimal mslk package on sys.path (before torchao is imported); returns its directory."""
    clone = clone or os.environ.get("LLMQ_MSLK")
    if not clone:
        raise RuntimeError("Int4WeightOnlyConfig needs mslk's source: set LLMQ_MSLK to a clone of https://github.com/meta-pytorch/MSLK")
    if "torchao" in sys.modules:
        raise RuntimeError("mslk_shim.install() must run before torchao is imported (torchao looks for mslk at import)")
    root = tempfile.mkdtemp(prefix="mslk-shim-")
    files = {"quantize/shuffle.py": shuffle_source(clone), "quantize/triton/fp8_quantize.py": _FP8_STUB}
    for pkg in ("", "conv", "gemm", "quantize", "quantize/triton"):
        files[os.path.join(pkg, "__init__.py")] = ""
    for rel, text in files.items():
        path = os.path.join(root, "mslk", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    sys.path.insert(0, root)
    return root
