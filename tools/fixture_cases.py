"""Shared by the tools/gen_*_fixtures.py scripts that write quantized-linear cases (imported, never run)."""
import json
import os

from safetensors.torch import save_file


def save_cases(out: str, tensors: dict, manifest: dict) -> None:
    """cases.safetensors (world-readable) and manifest.json in `out`, then a one-line summary."""
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, "cases.safetensors")
    save_file(tensors, path)
    os.chmod(path, 0o644)
    with open(os.path.join(out, "manifest.json"), "w") as f:
        json.dump(manifest, f, indent=1)
        f.write("\n")
    print(len(manifest["cases"]), "cases")
