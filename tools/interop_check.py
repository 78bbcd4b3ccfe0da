#!/usr/bin/env python3
"""Interop check for llmq's end-to-end output: compressed-tensors and transformers read llmq's checkpoints as llmq does.

Command (run by packages/llmq/src/interop.test.ts when LLMQ_PYTHON is set; by hand on the directories that test keeps
with LLMQ_INTEROP_KEEP=1, which prints this command line):
    $LLMQ_PYTHON tools/interop_check.py --fp <fp_dir> <fp.llmq.safetensors> [--fp-llama2c-json <llmq.json>] \
        --quantized <dir> <dir.llmq.safetensors> [--quantized ...] [--llmcompressor] [--out summary.json]
The committed evidence packages/llmq/fixtures/interop/summary.json was made (in packages/llmq) by
    LLMQ_PYTHON=$LLMQ_PYTHON LLMQ_WRITE_EVIDENCE=1 npx vitest run src/interop.test.ts

Each `*.llmq.safetensors` is llmq's view of its directory, written by the test: every float tensor as llmq's
openModelDir reads it (compressed modules decompressed by @llmq/serialization), `llmq.tokens.<i>` (int32 token
windows) and `llmq.logits.<i>` (f32 [T, vocab], llmq's forwardLogits on that directory).

Per quantized directory:
  (a) weights: compressed-tensors' own model-free dequantizer (CompressedTensorsDequantizer, the `convert_checkpoint`
      converter, f32) decompresses every quantized module; each weight must equal llmq's bit for bit (f32 bit
      patterns). Tensors that are not quantized (norms, embedding) must pass through unchanged, and the format each
      config group declares must be the one compressed-tensors infers from its scheme.
  (b) logits: transformers `AutoModelForCausalLM.from_pretrained(dir)` (compressed-tensors integration, default
      route: modules compressed on load, then decompressed, here explicitly, as the first forward's hook would; CPU
      f32), every window, compared with llmq's logits as max|a-b| / max|b| <= 1e-4; transformers' decompressed
      weights must equal (a)'s. Schemes with input activation quantization (W8A8, FP8*) quantize activations at
      runtime in transformers while llmq's forward is weight-only: their runtime logits are only reported, and the
      comparison runs with `quantization_enabled = False` on every module (decompressed weights, no activation QDQ).
      Where transformers cannot load a checkpoint for a known upstream reason that llm-compressor's own checkpoints
      share (UPSTREAM_ISSUES), the logits come from transformers' Llama on (a)'s weights instead, and it is reported.
      transformers' `dequantize=True` route (the load-time CompressedTensorsDequantize op) is reported, not required.
  (d) with --llmcompressor, data-free recipes: llm-compressor's oneshot with the recipe.yaml llmq saved, on the same FP
      model, must write byte-identical tensors and an equal quantization_config (reported; the test asserts it).
The FP directory goes through tools/check_llama2c_hf.py (the models engineer's check: tokenizer + logits of the first
window) and (c) the same transformers logits comparison on every window.
Prints (and with --out writes) a JSON summary; exits 1 when a directory fails (a) or (b).
"""
import argparse
import json
import math
import os

os.environ.setdefault("TQDM_DISABLE", "1")  # compressed-tensors' per-module progress bars
import subprocess
import sys
import tempfile
import time
import warnings

import compressed_tensors
import safetensors
import torch
import transformers
from compressed_tensors.compressors.format import infer_module_format
from compressed_tensors.entrypoints.convert.converters.ct_dequantizer import CompressedTensorsDequantizer
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, CompressedTensorsConfig

TOL = 1e-4
HERE = os.path.dirname(os.path.abspath(__file__))


def load_dir_tensors(d: str) -> dict[str, torch.Tensor]:
    index = os.path.join(d, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            files = sorted(set(json.load(f)["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    out: dict[str, torch.Tensor] = {}
    for fn in files:
        out.update(load_file(os.path.join(d, fn)))
    return out


def windows_of(dump: dict[str, torch.Tensor]) -> list[tuple[torch.Tensor, torch.Tensor]]:
    n = sum(1 for k in dump if k.startswith("llmq.tokens."))
    return [(dump[f"llmq.tokens.{i}"].long(), dump[f"llmq.logits.{i}"]) for i in range(n)]


def rel_err(ours: torch.Tensor, ref: torch.Tensor) -> float:
    return float((ours - ref).abs().max() / ref.abs().max())


def hf_logits(model, windows) -> list[torch.Tensor]:
    with torch.no_grad():
        return [model(input_ids=t[None]).logits[0].float() for t, _ in windows]


def logits_report(hf: list[torch.Tensor], windows) -> dict:
    diffs = [float((h - l).abs().max()) for h, (_, l) in zip(hf, windows)]
    maxabs = [float(l.abs().max()) for _, l in windows]
    return {
        "logits_rel_err": max(d / m for d, m in zip(diffs, maxabs)),
        "logits_max_abs_diff": max(diffs),
        "argmax_agreement": sum(int((h.argmax(-1) == l.argmax(-1)).sum()) for h, (_, l) in zip(hf, windows))
        / sum(len(t) for t, _ in windows),
    }


def bit_diff(a: torch.Tensor, b: torch.Tensor) -> tuple[float, int]:
    """Max |a-b| and the number of elements whose f32 bit patterns differ (so -0 vs 0 and NaN payloads count)."""
    a = a.float().contiguous()
    b = b.float().contiguous()
    if a.shape != b.shape:
        return float("inf"), max(a.numel(), b.numel())
    bad = int((a.view(torch.int32) != b.view(torch.int32)).sum())
    d = (a - b).abs()
    return float(d.nan_to_num(nan=float("inf")).max()) if d.numel() else 0.0, bad


def check_weights(d: str, dump: dict[str, torch.Tensor]) -> dict:
    raw = load_dir_tensors(d)
    quantized = sorted(k[: -len(".weight_scale")] for k in raw if k.endswith(".weight_scale"))
    # Model-free matching treats a "Linear" target as "every tensor named *.weight" (it cannot see module classes), so
    # modules stored dense (the embedding, lm_head) are named in `ignore`, as the dequantizer's API intends.
    dense_modules = [k[: -len(".weight")] for k in raw if k.endswith(".weight") and k[: -len(".weight")] not in quantized]
    deq = CompressedTensorsDequantizer(d, ignore=dense_modules, dtype=torch.float32)
    # The dequantizer decompresses each group with the format compressed-tensors infers from its scheme; the config
    # must declare that same format (vLLM reads the declared one).
    with open(os.path.join(d, "config.json")) as f:
        declared_groups = json.load(f)["quantization_config"]["config_groups"]
    formats = {g: {"declared": declared_groups[g].get("format"), "inferred": s.format.value} for g, s in deq.quant_config.config_groups.items()}
    # Activation qparams (static FP8 `input_scale`, NVFP4 `input_global_scale`) are runtime inputs of vLLM's kernels,
    # not part of a weight: the model-free dequantizer would report them as orphans, so they are checked apart.
    act_suffixes = (".input_scale", ".input_zero_point", ".input_global_scale")
    activation_qparams = sorted(k for k in raw if k.endswith(act_suffixes))
    dense = deq.validate({k: v for k, v in raw.items() if not k.endswith(act_suffixes)})
    max_diff, bad, per_module = 0.0, 0, {}
    for m in quantized:
        diff, n = bit_diff(dense[f"{m}.weight"], dump[f"{m}.weight"])
        max_diff, bad = max(max_diff, diff), bad + n
        if n:
            per_module[m] = {"max_abs_diff": diff, "mismatched_elements": n}
    passthrough = [k for k in dense if k not in {f"{m}.weight" for m in quantized} and dense[k].is_floating_point()]
    pt_max, pt_bad = 0.0, 0
    for k in passthrough:
        diff, n = bit_diff(dense[k], dump[k])
        pt_max, pt_bad = max(pt_max, diff), pt_bad + n
    missing = sorted(k for k in dump if not k.startswith("llmq.") and k not in dense and k not in activation_qparams)
    # llmq reads activation qparams through as stored: they must be the checkpoint's values bit for bit.
    act_mismatch = [k for k in activation_qparams if k in dump and bit_diff(raw[k], dump[k])[1] != 0]
    bad_act = [k for k in activation_qparams if not bool(torch.isfinite(raw[k].float()).all()) or float(raw[k].float().min()) <= 0]
    return {
        "modules": len(quantized),
        "elements": sum(dense[f"{m}.weight"].numel() for m in quantized),
        "max_abs_diff": max_diff,
        "mismatched_elements": bad,
        "mismatched_modules": per_module,
        "passthrough_tensors": len(passthrough),
        "passthrough_max_abs_diff": pt_max,
        "passthrough_mismatched_elements": pt_bad,
        "llmq_tensors_missing_in_compressed_tensors": missing,
        "activation_qparams": len(activation_qparams),
        "activation_qparams_not_finite_positive": bad_act,
        "activation_qparams_mismatched": act_mismatch,
        "group_formats": formats,
        "formats_agree": all(f["declared"] in (None, f["inferred"]) for f in formats.values()),
        "dense": dense,
    }


# Failures of transformers' own loading that llm-compressor's checkpoints share (reproduced on an llm-compressor 0.14
# checkpoint of the same recipe): the check then falls back to transformers' forward on compressed-tensors' weights.
UPSTREAM_ISSUES = {
    "ignore_mismatched_sizes": "compressed-tensors 0.20.0 PackedQuantizationCompressor.compress on meta (the transformers "
    "load path) does not pack the asymmetric weight_zero_point, so the [out/8, groups] int32 tensor that compress() "
    "writes on save no longer fits the [out, groups] parameter",
}


# transformers' `dequantize=True` route: CompressedTensorsDequantize decompresses every dense module with
# get_dense_scheme(config) (the first group not aimed at MoE experts), so a second config group (down_proj here) is
# decompressed with the first group's args (its log: "tensor column shape must be divisble by the given group_size 32
# but got 172").
DEQUANTIZE_TRUE_ISSUE = "transformers 5.24 CompressedTensorsDequantize uses the first config group's scheme for every dense module"


def known_issue(err: str) -> str | None:
    return next((v for k, v in UPSTREAM_ISSUES.items() if k in err), None)


def load_hf(d: str, **kw):
    transformers.logging.set_verbosity_error()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model, info = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32, output_loading_info=True, **kw)
    return model.eval(), sorted(info.get("missing_keys", []))


def check_transformers(d: str, fp_dir: str, windows, fp_windows, dense: dict[str, torch.Tensor], quantized: list[str], act_quant: bool, n_groups: int) -> dict:
    out: dict = {"weight_only": not act_quant}
    try:
        model, missing = load_hf(d)
        out["missing_keys"] = missing
        # What the decompression hook does on the first forward, done first so the weights can be checked.
        model.hf_quantizer.compressor.decompress_model(model)
        params = dict(model.named_parameters())
        out["decompressed_weight_dtypes"] = sorted({str(params[f"{m}.weight"].dtype) for m in quantized})
        out["decompressed_weights_mismatched_elements"] = sum(bit_diff(params[f"{m}.weight"], dense[f"{m}.weight"])[1] for m in quantized)
        # Scales with a low-precision dtype (NVFP4's fp8, MX's e8m0) decompress to bf16 weights; f32 holds them exactly.
        for m in quantized:
            params[f"{m}.weight"].data = params[f"{m}.weight"].data.float()
        if act_quant:
            try:
                out["runtime"] = logits_report(hf_logits(model, windows), windows)
            except Exception as e:  # noqa: BLE001 — reported
                out["runtime"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
            for mod in model.modules():
                if hasattr(mod, "quantization_scheme"):
                    mod.quantization_enabled = False
        out.update(logits_report(hf_logits(model, windows), windows))
    except Exception as e:  # noqa: BLE001 — reported in the summary, which fails the check unless it is a known issue
        out["error"] = f"{type(e).__name__}: {str(e)[:300]}"
        issue = known_issue(out["error"])
        if issue is not None:
            out["upstream_issue"] = issue
            model, _ = load_hf(fp_dir)
            model.load_state_dict({k: v for k, v in dense.items() if k in dict(model.named_parameters())}, strict=False)
            out["fallback_dense_in_transformers"] = logits_report(hf_logits(model, windows), windows)
    out["logits_rel_err_vs_fp"] = max(rel_err(l, fl) for (_, l), (_, fl) in zip(windows, fp_windows))
    try:
        model, _ = load_hf(d, quantization_config=CompressedTensorsConfig(dequantize=True))
        params = dict(model.named_parameters())
        out["dequantize_true"] = {
            "weights_mismatched_elements": sum(bit_diff(params[f"{m}.weight"], dense[f"{m}.weight"])[1] for m in quantized),
            **({} if act_quant else logits_report(hf_logits(model.float(), windows), windows)),
        }
    except Exception as e:  # noqa: BLE001 — informational only
        out["dequantize_true"] = {"error": f"{type(e).__name__}: {str(e)[:300]}"}
        if n_groups > 1:
            out["dequantize_true"]["upstream_issue"] = DEQUANTIZE_TRUE_ISSUE
    return out


def llmcompressor_reference(d: str, fp_dir: str) -> dict:
    """llm-compressor's oneshot with the recipe.yaml llmq saved beside its checkpoint, on the same FP model: every
    tensor of the two checkpoints must be byte-identical, and the quantization_config equal. Data-free recipes only
    (GPTQ and static activation scales depend on the calibration samples, which the two tools draw differently)."""
    with open(os.path.join(d, "recipe.yaml")) as f:
        recipe = f.read()
    with open(os.path.join(d, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    static_acts = any((g.get("input_activations") or {}).get("dynamic") is False for g in qc["config_groups"].values())
    if "GPTQModifier" in recipe or static_acts:
        return {"skipped": "needs calibration data"}
    try:
        from llmcompressor import oneshot
    except ImportError as e:
        return {"skipped": f"llmcompressor is not installed ({e})"}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32)
        oneshot(model=model, recipe=os.path.join(d, "recipe.yaml"), output_dir=tmp)
        ref = load_dir_tensors(tmp)
        with open(os.path.join(tmp, "config.json")) as f:
            ref_qc = json.load(f)["quantization_config"]
    ours = load_dir_tensors(d)
    as_bytes = lambda t: t.contiguous().view(torch.uint8) if t.numel() else t  # noqa: E731
    differing = sorted(
        k for k in set(ref) | set(ours)
        if k not in ref or k not in ours or ref[k].dtype != ours[k].dtype or ref[k].shape != ours[k].shape
        or not torch.equal(as_bytes(ref[k]), as_bytes(ours[k]))
    )
    return {
        "tensors": len(ref),
        "differing_tensors": len(differing),
        "differing": differing[:12],
        "quantization_config_equal": ref_qc == qc,
    }


def strict_json(o):
    """Non-finite floats as strings ("nan", "inf"), so the summary is strict JSON."""
    if isinstance(o, float) and not math.isfinite(o):
        return str(o)
    if isinstance(o, dict):
        return {k: strict_json(v) for k, v in o.items()}
    if isinstance(o, list):
        return [strict_json(v) for v in o]
    return o


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fp", nargs=2, metavar=("DIR", "LLMQ_DUMP"), required=True)
    ap.add_argument("--fp-llama2c-json", help="llmq.json for tools/check_llama2c_hf.py (tokens, logits, texts, ids)")
    ap.add_argument("--quantized", nargs=2, metavar=("DIR", "LLMQ_DUMP"), action="append", default=[])
    ap.add_argument("--llmcompressor", action="store_true", help="also compare data-free checkpoints with llm-compressor's")
    ap.add_argument("--out")
    a = ap.parse_args()
    torch.manual_seed(0)
    t_all = time.perf_counter()

    fp_dir, fp_dump_path = a.fp
    fp_dump = load_file(fp_dump_path)
    fp_windows = windows_of(fp_dump)
    fp: dict = {"dir": os.path.basename(fp_dir)}
    if a.fp_llama2c_json:
        with tempfile.TemporaryDirectory() as tmp:
            rp = os.path.join(tmp, "report.json")
            r = subprocess.run(
                [sys.executable, os.path.join(HERE, "check_llama2c_hf.py"), fp_dir, a.fp_llama2c_json, "--out", rp],
                capture_output=True, text=True,
            )
            fp["check_llama2c_hf"] = json.load(open(rp)) if os.path.exists(rp) else {"error": r.stderr[-2000:]}
            fp["check_llama2c_hf"]["exit_code"] = r.returncode
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(fp_dir, dtype=torch.float32).eval()
    fp["transformers"] = logits_report(hf_logits(model, fp_windows), fp_windows)

    ok = fp["transformers"]["logits_rel_err"] <= TOL and fp.get("check_llama2c_hf", {}).get("exit_code", 0) == 0
    results = []
    for d, dump_path in a.quantized:
        t0 = time.perf_counter()
        dump = load_file(dump_path)
        windows = windows_of(dump)
        with open(os.path.join(d, "config.json")) as f:
            qc = json.load(f)["quantization_config"]
        act_quant = any(g.get("input_activations") for g in qc["config_groups"].values())
        entry: dict = {"name": os.path.basename(d), "format": qc["format"]}
        try:
            w = check_weights(d, dump)
        except Exception as e:  # noqa: BLE001 — reported
            w = {"error": f"{type(e).__name__}: {e}", "dense": {}, "modules": 0}
        dense = w.pop("dense")
        quantized = sorted(k[: -len(".weight_scale")] for k in load_dir_tensors(d) if k.endswith(".weight_scale"))
        entry["weights"] = w
        entry["transformers"] = t = check_transformers(d, fp_dir, windows, fp_windows, dense, quantized, act_quant, len(qc["config_groups"]))
        if a.llmcompressor:
            entry["llmcompressor"] = llmcompressor_reference(d, fp_dir)
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        logits = t if "error" not in t else t.get("fallback_dense_in_transformers", {})
        entry["ok"] = (
            "error" not in w
            and w["mismatched_elements"] == 0
            and w["passthrough_mismatched_elements"] == 0
            and not w["llmq_tensors_missing_in_compressed_tensors"]
            and w["formats_agree"]
            and not w.get("activation_qparams_not_finite_positive")
            and not w.get("activation_qparams_mismatched")
            and not t.get("missing_keys")
            and ("error" not in t or "upstream_issue" in t)
            and t.get("decompressed_weights_mismatched_elements", 0) == 0
            and logits.get("logits_rel_err", float("inf")) <= TOL
        )
        ok = ok and entry["ok"]
        results.append(entry)

    summary = {
        "ok": ok,
        "failing": [r["name"] for r in results if not r["ok"]],
        "tolerance": TOL,
        "versions": {
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "compressed_tensors": compressed_tensors.__version__,
            "safetensors": safetensors.__version__,
        },
        "windows": [len(t) for t, _ in fp_windows],
        "fp": fp,
        "quantized": results,
        "seconds": round(time.perf_counter() - t_all, 2),
    }
    text = json.dumps(strict_json(summary), indent=2, allow_nan=False)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
