#!/usr/bin/env python3
"""llm-compressor's oneshot on given calibration windows, compared with an llmq checkpoint tensor by tensor.

Command (from the repo root; $LLMQ_PYTHON is the env documented in tools/requirements.txt):
    $LLMQ_PYTHON tools/oneshot_compare.py --fp <fp_dir> --recipe <recipe.yaml> --tokens <windows.json> \
        --llmq <llmq_out_dir> [--lc-out <dir>] [--out summary.json] [--threads N] [--trace]
    $LLMQ_PYTHON tools/oneshot_compare.py --fp <fp_dir> --recipe <recipe.yaml> --tokens <windows.json> \
        --lc-only --lc-out <dir> [--trace]
Windows in llmq's order come from tools/dump_calibration_windows.mjs (llmq's own dataset loader).

1. oneshot: `AutoModelForCausalLM.from_pretrained(fp_dir, dtype="auto")`, then llm-compressor's `oneshot` with the
   recipe and a `datasets.Dataset` of the windows (`input_ids` as given, `attention_mask` all ones; no BOS added, no
   re-tokenisation: LC returns a dataset that already has `input_ids` unchanged), `num_calibration_samples` =
   number of windows, `max_seq_length` = the longest window, `shuffle_calibration_samples=False`, batch size 1, the
   default "truncation" collator and the default ("independent") pipeline; saved to --lc-out (a temporary directory
   when not given). The processor (tokenizer) is the one LC loads from fp_dir itself; it is only saved, never used.
   Without shuffling LC orders samples with its LengthAwareSampler (torch.argsort of the lengths, descending, not
   stable): for equal-length windows that is the given order for small counts (16) but NOT in general (64 windows
   come out permuted). The script therefore records every batch LC's collator hands out and reports the window
   order LC actually fed (`lc_data`); compare with llmq only when `lc_data.order_is_given` is true.
2. compare (unless --lc-only): every tensor of the two checkpoints (name sets, dtype, shape, bytes); for each
   differing tensor the number of differing elements and max |a-b| of its raw values, for `weight_packed` the
   differing int codes, and per module with any differing tensor the max |a-b| of the dequantized weights
   (compressed-tensors' CompressedTensorsDequantizer, f32). config.json as parsed JSON (deep-equal, differing key
   paths) and as raw text.
--trace: records (i) each modifier's lifecycle events in order (initialize, calibration start, sequential epoch
ends with the decoder layers they cover, calibration end, finalize) and (ii) for the linears of the first decoder
layer, per (active modifier, pass) the forward calls and whether the weight the forward used was quantized: the
module's `quantization_enabled`, whether its stored weight is already its own fake-quantization (GPTQ writes the
quantized weight back), and whether the output equals F.linear with the raw stored weight.
Prints (and with --out writes) a JSON summary; exits 0 whatever differs (a report, not an assertion).
"""
import argparse
import json
import os

os.environ.setdefault("TQDM_DISABLE", "1")
import shutil
import sys
import tempfile
import time
import warnings
from collections import OrderedDict

import torch
import torch.nn.functional as F

# llm-compressor's AWQ pins its cached activations for a GPU; on a CPU-only torch pin_memory needs a CUDA driver.
if not torch.cuda.is_available():
    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self
from interop_check import load_dir_tensors  # one loader for both checks (tools/ is on sys.path as the script dir)


# ----- checkpoint comparison -----


def as_bytes(t: torch.Tensor) -> torch.Tensor:
    return t.contiguous().view(torch.uint8) if t.numel() else t.reshape(0).to(torch.uint8)


def value_diff(a: torch.Tensor, b: torch.Tensor) -> dict:
    """Differing elements (bit patterns for floats, so -0/0 and NaN payloads count) and max |a-b| as f64."""
    if a.dtype.is_floating_point:
        ia, ib = a.contiguous().view(torch.uint8).reshape(*a.shape, -1), b.contiguous().view(torch.uint8).reshape(*b.shape, -1)
        ne = (ia != ib).any(-1)
    else:
        ne = a != b
    d = (a.double() - b.double()).abs()
    out = {"differing_elements": int(ne.sum()), "elements": a.numel()}
    out["max_abs_diff"] = float(d.nan_to_num(nan=float("inf")).max()) if d.numel() else 0.0
    if out["differing_elements"]:
        idx = ne.nonzero()[0].tolist()
        out["first_differing_index"] = idx
        out["first_values"] = [a[tuple(idx)].item(), b[tuple(idx)].item()]
    return out


def json_diff(a, b, path="") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = []
        for k in sorted(set(a) | set(b), key=str):
            p = f"{path}.{k}" if path else str(k)
            if k not in a:
                out.append(f"{p}: only in llmq = {json.dumps(b[k])[:200]}")
            elif k not in b:
                out.append(f"{p}: only in llm-compressor = {json.dumps(a[k])[:200]}")
            else:
                out += json_diff(a[k], b[k], p)
        return out
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in json_diff(x, y, f"{path}[{i}]")]
    if a != b or type(a) is not type(b):
        return [f"{path}: llm-compressor {json.dumps(a)[:200]} vs llmq {json.dumps(b)[:200]}"]
    return []


def dequantized(d: str, tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor] | str:
    from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import CompressedTensorsDequantizer

    try:
        quantized = {k[: -len(".weight_scale")] for k in tensors if k.endswith(".weight_scale")}
        dense = [k[: -len(".weight")] for k in tensors if k.endswith(".weight") and k[: -len(".weight")] not in quantized]
        deq = CompressedTensorsDequantizer(d, ignore=dense, dtype=torch.float32)
        return deq.process(dict(tensors))
    except Exception as e:  # noqa: BLE001 — reported
        return f"{type(e).__name__}: {e}"


def compare_dirs(lc_dir: str, llmq_dir: str) -> dict:
    from compressed_tensors.compressors.pack_quantized.helpers import unpack_from_int32

    lc, lq = load_dir_tensors(lc_dir), load_dir_tensors(llmq_dir)
    with open(os.path.join(lc_dir, "config.json")) as f:
        lc_text = f.read()
    with open(os.path.join(llmq_dir, "config.json")) as f:
        lq_text = f.read()
    lc_cfg, lq_cfg = json.loads(lc_text), json.loads(lq_text)
    groups = (lc_cfg.get("quantization_config") or {}).get("config_groups") or {}

    def num_bits_of(module: str) -> int | None:
        from compressed_tensors.utils.match import match_name

        for g in groups.values():
            if any(match_name(module, t) for t in g.get("targets", [])):
                return (g.get("weights") or {}).get("num_bits")
        return None

    def codes_of(tensors: dict, k: str):
        """The integer codes of a quantized weight: unpacked `weight_packed`, or an int8 `weight` beside a scale."""
        if k.endswith(".weight_packed") and tensors[k].dtype == torch.int32:
            m = k[: -len(".weight_packed")]
            nb, shape = num_bits_of(m), tensors.get(f"{m}.weight_shape")
            if nb is None or shape is None:
                return None
            return unpack_from_int32(tensors[k], nb, torch.Size(shape.tolist()))
        if k.endswith(".weight") and tensors[k].dtype == torch.int8 and f"{k}_scale" in tensors:
            return tensors[k]
        return None

    # every quantized weight's codes: how many there are and how many differ (transforms compare at this level)
    code_total, code_diff = 0, 0
    for k in sorted(set(lc) & set(lq)):
        ca, cb = codes_of(lc, k), codes_of(lq, k)
        if ca is not None and cb is not None and ca.shape == cb.shape:
            code_total += ca.numel()
            code_diff += int((ca != cb).sum())

    differing, details = [], OrderedDict()
    only_lc = sorted(set(lc) - set(lq))
    only_lq = sorted(set(lq) - set(lc))
    for k in sorted(set(lc) & set(lq)):
        a, b = lc[k], lq[k]
        if a.dtype != b.dtype or a.shape != b.shape:
            differing.append(k)
            details[k] = {"dtype": [str(a.dtype), str(b.dtype)], "shape": [list(a.shape), list(b.shape)]}
            continue
        if torch.equal(as_bytes(a), as_bytes(b)):
            continue
        differing.append(k)
        det = {"dtype": str(a.dtype), "shape": list(a.shape), "raw": value_diff(a, b)}
        if k.endswith(".weight_packed") and a.dtype == torch.int32:
            m = k[: -len(".weight_packed")]
            nb, shape = num_bits_of(m), lc.get(f"{m}.weight_shape")
            if nb is not None and shape is not None:
                try:
                    shp = torch.Size(shape.tolist())
                    ca, cb = unpack_from_int32(a, nb, shp), unpack_from_int32(b, nb, shp)
                    det["codes"] = value_diff(ca, cb)
                    det["codes"]["rows_with_differences"] = int((ca != cb).any(1).sum())
                except Exception as e:  # noqa: BLE001
                    det["codes"] = f"{type(e).__name__}: {e}"
        details[k] = det
    for k in only_lc + only_lq:
        differing.append(k)
        details[k] = {"only_in": "llm-compressor" if k in lc else "llmq"}

    # dequantized weights of every module with a differing tensor
    modules = sorted({k.rsplit(".", 1)[0] for k in differing})
    deq_cmp = {}
    if modules:
        dlc, dlq = dequantized(lc_dir, lc), dequantized(llmq_dir, lq)
        for m in modules:
            w = f"{m}.weight"
            if isinstance(dlc, str) or isinstance(dlq, str):
                deq_cmp[m] = {"error": dlc if isinstance(dlc, str) else dlq}
            elif w in dlc and w in dlq and dlc[w].shape == dlq[w].shape:
                deq_cmp[m] = value_diff(dlc[w].float(), dlq[w].float())
                deq_cmp[m]["max_abs_weight"] = float(dlc[w].abs().max())
    return {
        "tensors": len(set(lc) | set(lq)),
        "codes": {"total": code_total, "differing": code_diff},
        "differing": differing,
        "details": details,
        "dequantized_weights": deq_cmp,
        "first_differing_layer": first_layer(differing),
        "config_equal": lc_cfg == lq_cfg,
        "config_text_equal": lc_text == lq_text,
        "config_diff": json_diff(lc_cfg, lq_cfg),
    }


def first_layer(names: list[str]) -> int | None:
    layers = [int(n.split(".layers.")[1].split(".")[0]) for n in names if ".layers." in n]
    return min(layers) if layers else None


# ----- llm-compressor run -----


class Recorder:
    """Batches LC's collator hands out, lifecycle events, and (--trace) forward calls of layer-0 linears."""

    def __init__(self):
        self.batches: list[dict] = []
        self.events: list[str] = []
        self.forward: "OrderedDict[tuple, dict]" = OrderedDict()
        self.model = None


def install_hooks(rec: Recorder, trace: bool):
    import llmcompressor.datasets.utils as du
    from llmcompressor.modifiers import Modifier

    orig_call = du.DataCollatorWithTruncation.__call__

    def recording_call(self, features, return_tensors="pt"):
        out = orig_call(self, features, return_tensors)
        rec.batches.append({k: v.clone() for k, v in out.items() if isinstance(v, torch.Tensor)})
        return out

    du.DataCollatorWithTruncation.__call__ = recording_call
    if not trace:
        return

    def layers_of(modules) -> str:
        names = {id(m): n for n, m in rec.model.named_modules()} if rec.model is not None else {}
        ls = sorted({int(names[id(m)].split(".layers.")[1].split(".")[0]) for m in modules if ".layers." in names.get(id(m), "")})
        return f"{len(list(modules))} modules, layers {ls}" if ls else f"{len(list(modules))} modules"

    orig_init, orig_fin, orig_update = Modifier.initialize, Modifier.finalize, Modifier.update_event

    def initialize(self, state, **kw):
        rec.events.append(f"{type(self).__name__}: initialize")
        return orig_init(self, state, **kw)

    def finalize(self, state, **kw):
        rec.events.append(f"{type(self).__name__}: finalize")
        return orig_fin(self, state, **kw)

    def update_event(self, state, event, **kw):
        what = event.type_.name
        if "modules" in kw:
            what += f" ({layers_of(kw['modules'])})"
        rec.events.append(f"{type(self).__name__}: {what}")
        return orig_update(self, state, event, **kw)

    Modifier.initialize, Modifier.finalize, Modifier.update_event = initialize, finalize, update_event


def trace_linears(rec: Recorder, model):
    from compressed_tensors.quantization.lifecycle.forward import fake_quantize
    from llmcompressor.core import active_session
    from llmcompressor.modifiers.utils.hooks import HooksMixin

    def hook(name):
        def fn(module, args, output):
            try:
                mods = active_session().lifecycle.recipe.modifiers or []
                stage = "+".join(type(m).__name__ for m in mods)
            except Exception:  # noqa: BLE001
                stage = "?"
            phase = "propagate (hooks disabled)" if HooksMixin._HOOKS_DISABLED else "calibrate"
            key = (stage, phase, name)
            r = rec.forward.setdefault(key, {"calls": 0, "quantization_enabled": set(), "status": set(), "stored_weight_is_qdq": set(), "output_is_raw_weight_linear": set()})
            r["calls"] += 1
            r["quantization_enabled"].add(getattr(module, "quantization_enabled", None))
            r["status"].add(str(getattr(module, "quantization_status", None)))
            with torch.no_grad():
                w = module.weight.data
                scheme = getattr(module, "quantization_scheme", None)
                if scheme is not None and scheme.weights is not None and hasattr(module, "weight_scale"):
                    q = fake_quantize(w, module.weight_scale, getattr(module, "weight_zero_point", None), scheme.weights, global_scale=getattr(module, "weight_global_scale", None))
                    r["stored_weight_is_qdq"].add(bool(torch.equal(q, w)))
                r["output_is_raw_weight_linear"].add(bool(torch.equal(output, F.linear(args[0], w, module.bias))))

        return fn

    for n, m in model.named_modules():
        if ".layers.0." in n and isinstance(m, torch.nn.Linear):
            m.register_forward_hook(hook(n))


def run_oneshot(fp: str, recipe: str, windows: list[list[int]], lc_out: str, trace: bool) -> dict:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM

    import llmcompressor
    from llmcompressor import oneshot

    rec = Recorder()
    install_hooks(rec, trace)
    ds = Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]})
    model = AutoModelForCausalLM.from_pretrained(fp, dtype="auto")
    rec.model = model
    if trace:
        trace_linears(rec, model)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oneshot(
            model=model,
            recipe=recipe,
            dataset=ds,
            num_calibration_samples=len(windows),
            max_seq_length=max(len(w) for w in windows),
            shuffle_calibration_samples=False,
            output_dir=lc_out,
        )
    seconds = time.perf_counter() - t0

    # which window each collated batch is (batch size 1)
    key = {tuple(w): i for i, w in reversed(list(enumerate(windows)))}
    fed, exact = [], True
    for b in rec.batches:
        ids = b["input_ids"]
        if ids.shape[0] != 1:
            exact = False
            fed.append(None)
            continue
        i = key.get(tuple(ids[0].tolist()))
        am = b.get("attention_mask")
        if i is None or (am is not None and not bool((am == 1).all())) or ids.dtype != torch.int64:
            exact = False
        fed.append(i)
    # LC iterates the dataloader once per pass (a trace sample, then every window per modifier needing data):
    # report the passes as the index sequences of consecutive full epochs.
    n = len(windows)
    epochs, rest = [], list(fed)
    while rest:
        if len(rest) >= n and sorted(x for x in rest[:n] if x is not None) == list(range(n)):
            epochs.append(rest[:n])
            rest = rest[n:]
        else:
            epochs.append([rest[0]])
            rest = rest[1:]
    orders = [e for e in epochs if len(e) == n]
    data = {
        "windows": n,
        "window_lengths": sorted({len(w) for w in windows}),
        "collated_batches": len(rec.batches),
        "passes_over_data": [e if len(e) < n else f"{n} windows" for e in epochs],
        "all_batches_are_given_windows": exact,
        "order_is_given": bool(orders) and all(o == list(range(n)) for o in orders),
        "first_fed_window": rec.batches[0]["input_ids"][0].tolist() if rec.batches else None,
        "first_fed_attention_mask_all_ones": bool((rec.batches[0]["attention_mask"] == 1).all()) if rec.batches else None,
    }
    if orders and not data["order_is_given"]:
        data["fed_orders"] = orders
    out = {
        "llmcompressor": llmcompressor.__version__,
        "seconds": round(seconds, 2),
        "torch_threads": torch.get_num_threads(),
        "lc_data": data,
    }
    if trace:
        out["lifecycle"] = rec.events
        out["layer0_forward"] = [
            {"modifier": k[0], "pass": k[1], "module": k[2], **{f: (v if f == "calls" else sorted(v, key=str)) for f, v in r.items()}}
            for k, r in rec.forward.items()
        ]
    with open(os.path.join(lc_out, "config.json")) as f:
        out["quantization_config"] = json.load(f).get("quantization_config")
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--fp", required=True, help="FP Hugging Face Llama directory (with tokenizer files)")
    ap.add_argument("--recipe", required=True, help="llm-compressor recipe YAML")
    ap.add_argument("--tokens", required=True, help="JSON array of token-id arrays (calibration windows, used as given)")
    ap.add_argument("--llmq", help="llmq output directory to compare with")
    ap.add_argument("--lc-only", action="store_true", help="only run llm-compressor (keep its output at --lc-out)")
    ap.add_argument("--lc-out", help="where llm-compressor saves (default: a temporary directory, removed)")
    ap.add_argument("--out", help="also write the JSON summary here")
    ap.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1, for reproducibility)")
    ap.add_argument("--trace", action="store_true", help="record lifecycle events and layer-0 forward quantization state")
    a = ap.parse_args()
    if not a.lc_only and not a.llmq:
        ap.error("--llmq is required unless --lc-only")
    if a.lc_only and not a.lc_out:
        ap.error("--lc-only needs --lc-out")
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    with open(a.tokens) as f:
        windows = json.load(f)
    if not isinstance(windows, list) or not windows or not all(isinstance(w, list) and w and all(isinstance(t, int) for t in w) for w in windows):
        ap.error(f"{a.tokens}: expected a non-empty JSON array of non-empty token-id arrays")

    tmp = None
    lc_out = a.lc_out
    if lc_out is None:
        tmp = tempfile.mkdtemp(prefix="oneshot_compare_")
        lc_out = tmp
    elif os.path.isdir(lc_out) and os.listdir(lc_out):
        # replace only a previous checkpoint directory, never an arbitrary one
        if not os.path.exists(os.path.join(lc_out, "config.json")):
            ap.error(f"--lc-out {lc_out} is not empty and holds no config.json: refusing to replace it")
        shutil.rmtree(lc_out)
    try:
        summary = {"recipe": os.path.basename(a.recipe), "tokens": os.path.basename(a.tokens)}
        run = run_oneshot(a.fp, a.recipe, windows, lc_out, a.trace)
        if not a.lc_only:
            summary.update(compare_dirs(lc_out, a.llmq))
        summary["lc_out"] = a.lc_out
        summary.update(run)
    finally:
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    text = json.dumps(summary, indent=2, default=str)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
