#!/usr/bin/env python
"""Loads llmq's rotated checkpoints (SpinQuant / QuIP, optionally quantized) with transformers + compressed-tensors and
compares their logits with llmq's (written by packages/llmq/src/rotations.test.ts as <dir>/llmq-logits.safetensors:
`tokens.<i>` int32 and `logits.<i>` f32).

Command (run by the test; by hand: LLMQ_ROTATION_KEEP=1 prints the directories):
    $LLMQ_PYTHON tools/rotation_interop.py DIR [DIR ...]

transformers 5.24 does not read `quantization_config.transform_config` (no reference to it in its source): the
online transform weights load as UNEXPECTED keys and no online transform runs. So each directory is checked twice:
  plain   AutoModelForCausalLM.from_pretrained(dir) (compressed-tensors decompresses the quantized weights); right
          whenever the config has only fused (offline) transforms.
  ct      the same model, then compressed-tensors' own apply_transform_config with the config's ONLINE TransformArgs
          only (the offline ones are already fused in the saved weights), and the saved transform weights loaded into
          the transforms it created (shared parameters: the first saved copy, as save_pretrained keeps it); this is
          what a runtime with transform support (vLLM) executes.
Prints one JSON object: {dir: {"online": bool, "plain": rel_err, "ct": rel_err}}, rel_err = max|a-b| / max|b| over
all windows.
"""

import json
import os
import sys
import warnings

os.environ.setdefault("TQDM_DISABLE", "1")
import torch
from safetensors import safe_open
from safetensors.torch import load_file


def rel_err(ours, ref):
    return max(float((a.double() - b.double()).abs().max() / b.double().abs().max()) for a, b in zip(ours, ref))


def logits(model, toks):
    with torch.no_grad():
        return [model(input_ids=t[None].long()).logits[0].float() for t in toks]


def saved_tensors(d):
    out = {}
    for f in sorted(os.listdir(d)):
        if f.endswith(".safetensors") and not f.startswith("llmq-"):
            with safe_open(os.path.join(d, f), "pt") as s:
                for k in s.keys():
                    out[k] = s.get_tensor(k)
    return out


def with_online_transforms(model, d):
    from compressed_tensors.transform import TransformConfig, apply_transform_config

    cfg = json.load(open(os.path.join(d, "config.json")))["quantization_config"]["transform_config"]
    tc = TransformConfig.model_validate(cfg)
    online = {}
    for name, scheme in tc.config_groups.items():
        args = [a for a in scheme.apply if a.is_online()]
        if args:
            online[name] = scheme.model_copy(update={"apply": args})
    if not online:
        return False
    apply_transform_config(model, TransformConfig(config_groups=online))
    saved = saved_tensors(d)
    params = dict(model.named_parameters(remove_duplicate=False))
    with torch.no_grad():
        seen = {}
        for k, p in params.items():
            if "_input.weight" not in k and "_output.weight" not in k:
                continue
            if id(p) in seen:
                continue
            if k not in saved:
                raise KeyError(f"{d} lacks {k}")
            p.copy_(saved[k].to(p.dtype))
            seen[id(p)] = k
    return True


def main():
    from transformers import AutoModelForCausalLM

    out = {}
    for d in sys.argv[1:]:
        dump = load_file(os.path.join(d, "llmq-logits.safetensors"))
        n = len([k for k in dump if k.startswith("tokens.")])
        toks = [dump[f"tokens.{i}"] for i in range(n)]
        ours = [dump[f"logits.{i}"] for i in range(n)]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32)
            r = {"plain": rel_err(ours, logits(model, toks))}
            r["online"] = with_online_transforms(model, d)
            r["ct"] = rel_err(ours, logits(model, toks)) if r["online"] else r["plain"]
        out[d] = r
    print(json.dumps(out))


if __name__ == "__main__":
    main()
