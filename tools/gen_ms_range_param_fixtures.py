#!/usr/bin/env python3
# msModelSlim's range_param (Calibrator disable_level / act_method 3) on fixed random linear inputs, computed with
# torch exactly as msModelSlim's hook does (msmodelslim/pytorch/llm_ptq/llm_ptq_tools/layer_select.py StdMethod,
# the pure-Python twin of the compiled quant_funcs.get_features): per sample, x.float().reshape(-1, hidden);
# shift = max(dim 0) + min(dim 0); t_max / t_min running global extremes; std = max over samples of
# torch.std(x - shift); range_param = max(|t_max|, |t_min|) / std; auto-disabled = top n by range_param.
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_ms_range_param_fixtures.py
#
# Versions used: torch 2.13.0 CPU. Output: packages/observers/fixtures/ms-range-param.json (layers × samples of
# [tokens, hidden] f32 inputs as base64 little-endian bytes, with torch's t_max, t_min, std, range_param per layer and
# the sorted ranking).
import base64
import json
import os

import torch

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "observers", "fixtures", "ms-range-param.json")
torch.manual_seed(18)


def stats(samples):
    st = {}
    for x in samples:
        t = x.float().reshape(-1, x.shape[-1])
        shift = torch.max(t, dim=0)[0] + torch.min(t, dim=0)[0]
        st["t_max"] = torch.max(st["t_max"], torch.max(t)) if "t_max" in st else torch.max(t)
        st["t_min"] = torch.min(st["t_min"], torch.min(t)) if "t_min" in st else torch.min(t)
        s = torch.std(t - shift)
        st["std"] = torch.max(st["std"], s) if "std" in st else s
    return st


layers = []
for i, (tokens, hidden, outlier) in enumerate([(7, 8, 0.0), (5, 16, 40.0), (9, 8, 0.0), (6, 12, 6.0), (4, 8, -25.0)]):
    samples = []
    for k in range(3):
        x = torch.randn(tokens, hidden) * (1 + 0.5 * i)
        if outlier != 0.0 and k == 1:
            x[2, 3] = outlier
        samples.append(x)
    st = stats(samples)
    rp = max(abs(st["t_max"]), abs(st["t_min"])) / st["std"]
    layers.append({
        "name": f"layer{i}",
        "hidden": hidden,
        "samples": [base64.b64encode(x.numpy().astype("<f4").tobytes()).decode() for x in samples],
        "t_max": st["t_max"].item(), "t_min": st["t_min"].item(), "std": st["std"].item(), "range_param": rp.item(),
    })

ranked = [l["name"] for l in sorted(layers, key=lambda l: l["range_param"], reverse=True)]
with open(OUT, "w") as f:
    json.dump({"torch": torch.__version__, "layers": layers, "ranked": ranked}, f, indent=1)
    f.write("\n")
print(OUT, ranked)
