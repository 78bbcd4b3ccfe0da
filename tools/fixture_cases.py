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


def layer0_sources(src: str, tensors: dict) -> None:
    """Layer 0's dense linear weights of the HF directory `src`, as `src/<name>` (the quantize-on-load fixtures)."""
    from safetensors import safe_open
    with safe_open(os.path.join(src, "model.safetensors"), "pt") as f:
        for k in f.keys():
            if k.startswith("model.layers.0.") and k.endswith("_proj.weight"):
                tensors[f"src/{k}"] = f.get_tensor(k).contiguous()


def saved_case(model, name: str, tensors: dict) -> dict:
    """save_pretrained(model) into a temp dir: config.json's quantization_config / dtype, model.safetensors' whole header
    (length, tensor entries, __metadata__ as a map) and data sha256; layer 0's saved linear tensors into `tensors`."""
    import hashlib
    import struct
    import tempfile
    from safetensors import safe_open
    with tempfile.TemporaryDirectory() as d:
        model.save_pretrained(d)
        with open(os.path.join(d, "config.json")) as c:
            saved = json.load(c)
        path = os.path.join(d, "model.safetensors")
        with open(path, "rb") as f:
            raw = f.read()
        n = struct.unpack("<Q", raw[:8])[0]
        entries = json.loads(raw[8:8 + n])
        with safe_open(path, "pt") as f:
            for k in f.keys():
                if k.startswith("model.layers.0.") and "_proj." in k:
                    tensors[f"{name}/{k}"] = f.get_tensor(k).contiguous()
    meta = entries.pop("__metadata__")
    return {"quantization_config": saved["quantization_config"], "saved_dtype": saved.get("dtype"), "header_length": n,
            "metadata": meta, "entries": entries, "data_sha256": hashlib.sha256(raw[8 + n:]).hexdigest()}


def logits_rel_diff(model, logits_file: str) -> float:
    """max |a − b| / max |b| of `model`'s logits against llmq's on the windows of a logits file (llmq.tokens.i /
    llmq.logits.i, packages/llmq/src/test-support/logits-file.ts), worst over the windows."""
    import torch
    from safetensors.torch import load_file
    ll = load_file(logits_file)
    rel = 0.0
    with torch.no_grad():
        for i in range(len([k for k in ll if k.startswith("llmq.tokens.")])):
            got = model(ll[f"llmq.tokens.{i}"].long().unsqueeze(0)).logits[0].float()
            want = ll[f"llmq.logits.{i}"]
            rel = max(rel, ((got - want).abs().max() / want.abs().max()).item())
    return rel
