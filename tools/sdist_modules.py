# AutoAWQ / GPTQModel pure-torch modules straight from the registry's sdists: neither package installs on a CPU-only
# machine (both build GPU kernels), so the sdists are downloaded (~2 MB) and unpacked into a temp dir, and each
# package __init__ (which pulls the GPU stack) is replaced by an empty namespace. Used by gen_gptq_awq_fixtures.py and
# check_gptq_awq_dir.py.
import glob
import logging
import subprocess
import sys
import tarfile
import tempfile
import types


def stub(name, path=None, **attrs):
    m = types.ModuleType(name)
    if path:
        m.__path__ = [path]
    m.__dict__.update(attrs)
    sys.modules[name] = m


def load_sdists(*specs):
    """Downloads and unpacks the sdists (e.g. "gptqmodel==7.7.0"); awq / gptqmodel become importable namespaces."""
    tmp = tempfile.mkdtemp()
    subprocess.check_call([sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:", "--quiet", "-d", tmp, *specs])
    for sd in glob.glob(f"{tmp}/*.tar.gz"):
        with tarfile.open(sd) as t:
            t.extractall(tmp, filter="data")
    for spec in specs:
        name, version = spec.split("==")
        root = f"{tmp}/{name}-{version}"
        if name == "autoawq":
            stub("awq", f"{root}/awq")
        elif name == "gptqmodel":
            gqm = f"{root}/gptqmodel"
            stub("gptqmodel", gqm)
            stub("gptqmodel.utils", gqm + "/utils")
            stub("gptqmodel.quantization", gqm + "/quantization")
            stub("gptqmodel.utils.logger", setup_logger=lambda *a, **k: logging.getLogger("gptqmodel"))
            stub("gptqmodel.utils.torch", HAS_NPU=False)
    return tmp
