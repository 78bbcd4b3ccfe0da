#!/usr/bin/env python3
"""Golden vectors for @llmq/observers, produced by the REAL llm-compressor observers.

Command (run from the repo root; writes packages/observers/fixtures/observers.json):

    $LLMQ_PYTHON tools/gen_observer_fixtures.py

Versions used: llmcompressor 0.14.0.1, compressed-tensors 0.20.0, torch 2.13.0 (CPU).

Each case feeds several small random f32 batches (fixed seeds) through an llm-compressor observer
(`Observer.load_from_registry(name, base_name=..., args=QuantizationArgs(...))`) and records, after every
batch, the observer statistics (`min_vals`/`max_vals`: the EMA state for "minmax"/"mse"), and at the end the
`get_qparams()` result (scale, zero_point, global_scale). Weight observers (base_name "weight") only take the
first batch, as in llm-compressor. Histogram cases run torch.ao's HistogramObserver (the observer msModelSlim's
act_method 2 ports) and record its histogram state, the range chosen by `_non_linear_param_search` and\ncompressed-tensors' calculate_qparams of that range (int8 asymmetric per-tensor).\nThreads: torch's default (set OMP_NUM_THREADS=1 for a single-threaded run; results were identical).
All floats are written as the exact double value of the f32 (or other dtype) element.
"""

import json
import os
import sys

import torch
from compressed_tensors.quantization import QuantizationArgs
from llmcompressor.observers import Observer

OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "observers", "fixtures", "observers.json")


def tl(t):
    return t.detach().to(torch.float64).reshape(-1).tolist()


def tl32(t):
    # shortest repr that round-trips the f32 value (readers apply Math.fround)
    return [float(str(v)) for v in t.detach().reshape(-1).numpy().astype("float32")]


INPUTS = {}


def input_set(key, seed, shape, n):
    if key not in INPUTS:
        INPUTS[key] = {"shape": list(shape), "batches": batches(seed, shape, n)}
    return key, INPUTS[key]["batches"]


def batches(seed, shape, n, scale=1.0, outliers=True):
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        x = torch.randn(shape, generator=g, dtype=torch.float32) * scale
        if outliers:
            # a few large entries so that MSE shrinking and EMA smoothing have something to do
            idx = torch.randint(0, x.numel(), (2,), generator=g)
            x.view(-1)[idx] *= 4.0 + i
        out.append(x)
    return out


def run_case(name, observer, base, args_dict, shape, n_batches, seed, kwargs=None):
    args = QuantizationArgs(**args_dict)
    obs = Observer.load_from_registry(observer, base_name=base, args=args, **(kwargs or {}))
    key, xs = input_set(f"{base}/{'x'.join(map(str, shape))}/{n_batches}", seed, shape, n_batches)
    states = []
    for x in xs:
        # activations reach LC's hooks as (batch, seq, hidden); llmq observes [tokens, features]
        lc_rank = 3 if base in ("input", "output") else 4
        obs(x if base == "weight" or x.dim() == lc_rank else x.unsqueeze(0))
        states.append({"min_vals": tl(obs.min_vals), "max_vals": tl(obs.max_vals), "shape": list(obs.min_vals.shape)})
    q = obs.get_qparams()
    gs = q.get("global_scale")
    return {
        "name": name,
        "observer": observer,
        "base_name": base,
        "args": args_dict,
        "observer_kwargs": kwargs or {},
        "inputs": key,
        "states": states,
        "scale": tl(q["scale"]),
        "scale_dtype": str(q["scale"].dtype),
        "scale_shape": list(q["scale"].shape),
        "zero_point": tl(q["zero_point"]),
        "zero_point_dtype": str(q["zero_point"].dtype),
        "global_scale": None if gs is None else tl(gs),
    }


INT8_SYM = {"num_bits": 8, "type": "int", "symmetric": True}
INT4_ASYM = {"num_bits": 4, "type": "int", "symmetric": False}
INT4_SYM = {"num_bits": 4, "type": "int", "symmetric": True}
FP8 = {"num_bits": 8, "type": "float", "symmetric": True}
NVFP4 = {"num_bits": 4, "type": "float", "symmetric": True, "group_size": 16, "strategy": "tensor_group",
         "scale_dtype": "torch.float8_e4m3fn"}


def observer_cases():
    cases = []
    seed = 1000
    weight_strats = [
        ("tensor", {"strategy": "tensor"}, (8, 32)),
        ("channel", {"strategy": "channel"}, (8, 32)),
        ("group8", {"strategy": "group", "group_size": 8}, (8, 32)),
        ("block4x8", {"strategy": "block", "block_structure": [4, 8]}, (10, 36)),
    ]
    for obs_name in ["memoryless_minmax", "static_minmax", "minmax", "memoryless_mse", "mse"]:
        for tname, tdict in [("int8sym", INT8_SYM), ("int4asym", INT4_ASYM), ("fp8", FP8)]:
            for sname, sdict, shape in weight_strats:
                seed += 1
                a = {**tdict, **sdict, "dynamic": False}
                cases.append(run_case(f"weight/{obs_name}/{tname}/{sname}", obs_name, "weight", a, shape, 2, seed))
        seed += 1
        cases.append(run_case(f"weight/{obs_name}/nvfp4/tensor_group16", obs_name, "weight",
                              {**NVFP4, "dynamic": False}, (8, 64), 1, seed))
    act_strats = [
        ("tensor", {"strategy": "tensor"}, (6, 32)),
        ("group8", {"strategy": "group", "group_size": 8}, (6, 32)),
    ]
    for obs_name in ["memoryless_minmax", "static_minmax", "minmax", "memoryless_mse", "mse"]:
        for tname, tdict in [("int8sym", INT8_SYM), ("int4asym", INT4_ASYM), ("fp8", FP8)]:
            for sname, sdict, shape in act_strats:
                seed += 1
                a = {**tdict, **sdict, "dynamic": False}
                cases.append(run_case(f"input/{obs_name}/{tname}/{sname}", obs_name, "input", a, shape, 4, seed))
        seed += 1
        cases.append(run_case(f"input/{obs_name}/nvfp4/tensor_group16", obs_name, "input",
                              {**NVFP4, "dynamic": "local"}, (6, 64), 3, seed))
    # attention states (LC base names q/k/v): [heads, seq, head_dim] and [batch, heads, seq, head_dim]
    for obs_name in ["memoryless_minmax", "static_minmax", "minmax", "memoryless_mse", "mse"]:
        seed += 1
        cases.append(run_case(f"k/{obs_name}/fp8/attn_head", obs_name, "k",
                              {**FP8, "strategy": "attn_head", "dynamic": False}, (4, 6, 8), 3, seed))
        seed += 1
        cases.append(run_case(f"v/{obs_name}/int8sym/tensor", obs_name, "v",
                              {**INT8_SYM, "strategy": "tensor", "dynamic": False}, (4, 6, 8), 3, seed))
        seed += 1
        cases.append(run_case(f"q/{obs_name}/int4asym/attn_head/batch2", obs_name, "q",
                              {**INT4_ASYM, "strategy": "attn_head", "dynamic": False}, (2, 4, 6, 8), 2, seed))
    # observer_kwargs overrides (read by the observers from QuantizationArgs.observer_kwargs or constructor kwargs)
    seed += 1
    cases.append(run_case("input/minmax/int8sym/tensor/c0.25", "minmax", "input",
                          {**INT8_SYM, "strategy": "tensor", "dynamic": False}, (6, 32), 5, seed,
                          {"averaging_constant": 0.25}))
    seed += 1
    cases.append(run_case("input/mse/int4asym/group8/custom", "mse", "input",
                          {**INT4_ASYM, "strategy": "group", "group_size": 8, "dynamic": False}, (6, 32), 3, seed,
                          {"averaging_constant": 0.5, "maxshrink": 0.5, "grid": 40, "norm": 2.0, "patience": 3}))
    seed += 1
    cases.append(run_case("weight/memoryless_mse/int4sym/group16/expand", "memoryless_mse", "weight",
                          {**INT4_SYM, "strategy": "group", "group_size": 16, "dynamic": False}, (8, 64), 1, seed,
                          {"expand": 1.25, "maxshrink": 0.4}))
    seed += 1
    cases.append(run_case("weight/nvfp4_expanded_mse/nvfp4/tensor_group16", "nvfp4_expanded_mse", "weight",
                          {**NVFP4, "dynamic": False}, (8, 64), 1, seed))
    return cases


def imatrix_cases():
    """imatrix_mse / nvfp4_expanded_imatrix: importance E[x^2] from a forward-pre hook on a Linear, then the weight."""
    cases = []
    specs = [
        ("imatrix_mse", "int4asym/channel", {**INT4_ASYM, "strategy": "channel"}, (8, 32), True),
        ("imatrix_mse", "int4sym/group16", {**INT4_SYM, "strategy": "group", "group_size": 16}, (8, 64), True),
        ("imatrix_mse", "fp8/channel", {**FP8, "strategy": "channel"}, (8, 32), True),
        ("imatrix_mse", "nvfp4/tensor_group16", dict(NVFP4), (8, 64), True),
        ("nvfp4_expanded_imatrix", "nvfp4/tensor_group16", dict(NVFP4), (8, 64), True),
        ("imatrix_mse", "int4sym/group16/no-importance", {**INT4_SYM, "strategy": "group", "group_size": 16}, (8, 64), False),
        ("imatrix_mse", "int8sym/tensor/fallback", {**INT8_SYM, "strategy": "tensor"}, (8, 32), True),
    ]
    for i, (name, tag, a, shape, with_acts) in enumerate(specs):
        args = QuantizationArgs(**{**a, "dynamic": False})
        obs = Observer.load_from_registry(name, base_name="weight", args=args)
        lin = torch.nn.Linear(shape[1], shape[0], bias=False)
        w = batches(7000 + i, shape, 1)[0]
        with torch.no_grad():
            lin.weight.copy_(w)
        obs.attach(lin)
        acts = batches(7100 + i, (1, 5, shape[1]), 3) if with_acts else []
        with torch.no_grad():
            for x in acts:
                lin(x)
        imp_sum = None if obs._imatrix_sum is None else tl(obs._imatrix_sum)
        imp_count = int(obs._imatrix_count.item())
        obs(lin.weight)
        st = {"min_vals": tl(obs.min_vals), "max_vals": tl(obs.max_vals), "shape": list(obs.min_vals.shape)}
        q = obs.get_qparams()
        gs = q.get("global_scale")
        cases.append({
            "name": f"weight/{name}/{tag}",
            "observer": name,
            "args": {**a, "dynamic": False},
            "weight_shape": list(shape),
            "weight": tl32(w),
            "activations": [tl32(x.reshape(-1, shape[1])) for x in acts],
            "importance_sum": imp_sum,
            "importance_count": imp_count,
            "state": st,
            "scale": tl(q["scale"]),
            "zero_point": tl(q["zero_point"]),
            "global_scale": None if gs is None else tl(gs),
        })
    return cases


def fused_cases():
    """q/k/v weight observers fused by LC's FusionHandler: one global scale from the absmax over all three."""
    from llmcompressor.observers.fusion import FusionHandler

    cases = []
    for obs_name in ["memoryless_minmax", "memoryless_mse"]:
        args = QuantizationArgs(**{**NVFP4, "dynamic": False})
        mods, obss, ws = [], [], []
        for j, scale in enumerate([1.0, 3.0, 0.5]):
            lin = torch.nn.Linear(64, 8, bias=False)
            w = batches(8000 + j, (8, 64), 1)[0] * scale
            with torch.no_grad():
                lin.weight.copy_(w)
            mods.append(lin)
            ws.append(w)
            obss.append(Observer.load_from_registry(obs_name, base_name="weight", args=args.model_copy(deep=True)))
        FusionHandler.fuse(list(zip(obss, mods)))
        out = []
        for o, lin in zip(obss, mods):
            o(lin.weight)
            q = o.get_qparams()
            out.append({"scale": tl(q["scale"]), "zero_point": tl(q["zero_point"]), "global_scale": tl(q["global_scale"])})
        cases.append({
            "name": f"fused/{obs_name}/nvfp4",
            "observer": obs_name,
            "args": {**NVFP4, "dynamic": False},
            "weight_shape": [8, 64],
            "weights": [tl32(w) for w in ws],
            "qparams": out,
        })
    return cases


def histogram_cases():
    from compressed_tensors.quantization.utils import calculate_qparams
    from torch.ao.quantization.observer import HistogramObserver

    qargs = QuantizationArgs(num_bits=8, type="int", symmetric=False, strategy="tensor", dynamic=False)
    cases = []
    specs = [
        ((6, 32), 3, 2048, None),
        ((16, 48), 4, 2048, None),
        ((4, 16), 2, 256, None),
        ((32, 64), 4, 2048, None),
        ((32, 64), 3, 512, "repeat"),  # second batch identical: the range does not move
        ((8, 32), 3, 2048, "constant"),  # first batch constant: orig_min == orig_max path
    ]
    for i, (shape, n, bins, mode) in enumerate(specs):
        obs = HistogramObserver(bins=bins, dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        xs = batches(5000 + i, shape, n)
        if mode == "repeat":
            xs[1] = xs[0].clone()
        if mode == "constant":
            xs[0] = torch.full(shape, 0.75)
        states = []
        for x in xs:
            obs(x)
            states.append({"min_val": obs.min_val.item(), "max_val": obs.max_val.item()})
        new_min, new_max = obs._non_linear_param_search()
        scale, zp = calculate_qparams(new_min.reshape(1), new_max.reshape(1), qargs)
        cases.append({
            "name": f"histogram/{i}" + (f"/{mode}" if mode else ""),
            "bins": bins,
            "upsample_rate": obs.upsample_rate,
            "input_shape": list(shape),
            "inputs": [tl32(x) for x in xs],
            "states": states,
            "histogram": tl(obs.histogram),
            "search_min": new_min.item(),
            "search_max": new_max.item(),
            "ct_args": {"num_bits": 8, "type": "int", "symmetric": False, "strategy": "tensor", "dynamic": False},
            "ct_scale": tl(scale),
            "ct_zero_point": tl(zp),
        })
    return cases


def main():
    import compressed_tensors
    import llmcompressor

    data = {
        "generator": "tools/gen_observer_fixtures.py",
        "command": "$LLMQ_PYTHON tools/gen_observer_fixtures.py",
        "versions": {"llmcompressor": llmcompressor.__version__, "compressed_tensors": compressed_tensors.__version__,
                     "torch": torch.__version__},
        "observers": observer_cases(),
        "histogram": histogram_cases(),
        "imatrix": imatrix_cases(),
        "fused": fused_cases(),
    }
    data["inputs"] = {k: {"shape": v["shape"], "batches": [tl32(x) for x in v["batches"]]} for k, v in INPUTS.items()}
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        json.dump(data, f, separators=(",", ":"))
    print(f"wrote {OUT}: {len(data['observers'])} observer cases, {len(data['histogram'])} histogram cases",
          file=sys.stderr)


if __name__ == "__main__":
    main()
