#!/usr/bin/env python
"""Generates packages/llmq/fixtures/transforms/ from llm-compressor's own SmoothQuant and AWQ (LC 0.14.0.1, CT 0.20.0).

Command (from the repo root; $LLMQ_PYTHON is the env documented in tools/requirements.txt; the stories260K HF
directory and its windows come from `node tools/dump_calibration_windows.mjs`-style export, see below):
    $LLMQ_PYTHON tools/gen_transform_fixtures.py --stories-fp <stories260K HF dir> --stories-windows <windows.json>
where <stories260K HF dir> is `llmq convert --from llama2c fixtures/stories260K/stories260K.bin --tokenizer
fixtures/stories260K/tok512.bin --output DIR` and <windows.json> the first 16 windows × 128 tokens of
fixtures/wikitext-2/valid.txt in llmq's sequential sampling (the transforms test in packages/llmq writes both).

Cases (each a model + calibration windows + recipe, run through LC's `oneshot` exactly as tools/oneshot_compare.py
does: batch size 1, no shuffling, the default independent pipeline):
  tiny-f32, tiny-bf16  a random Llama (MHA: 4 heads = 4 KV heads, so AWQ's v_proj → o_proj mapping applies; hidden 32,
                       intermediate 64, 2 layers, vocab 128), 4 random windows × 32 tokens, seed 0; saved beside the
                       records (model.safetensors + config.json) so that the test needs no Python.
  stories260k          the converted stories260K (GQA: v_proj → o_proj is skipped), 16 × 128 WikiText-2 tokens.
Recipes: SmoothQuantModifier(smoothing_strength 0.8) + W8A8, and AWQModifier(duo_scaling true, n_grid 20) +
W4A16_ASYM-style int4 asymmetric groups (group 16 on the tiny model, 32 / 43 on stories260K); on tiny-f32 also AWQ +
NVFP4A16 (fused global scales of q/k/v and gate/up inside the search) and AWQ(duo_scaling "both", n_grid 10) + W4A16_ASYM.

Recorded by wrapping LC's own methods (nothing recomputed here):
  SmoothQuant `_apply_smoothing`: per smooth layer the running min / max it calibrated, the scales
    (`_calculate_smoothing_scales` then the 1e-5 floor), and after smoothing the smooth layer's and balance layers'
    weights; before smoothing the balance weights (tiny models and layer 0 of stories260K).
  AWQ `_compute_best_scale`: x_mean (activation sum / count), w_mean (`_compute_layer_means` on the weights it
    searches from), every grid point with its loss (`_compute_loss` in call order), the best scales, and the balance
    weights before / smooth + balance weights after the mapping.
Writes packages/llmq/fixtures/transforms/<case>/{<recipe>.safetensors, <recipe>.json} (+ model files for tiny cases).
"""

import argparse
import json
import os
import shutil
import sys

os.environ.setdefault("TQDM_DISABLE", "1")
import torch
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oneshot_compare import run_oneshot  # noqa: E402  (also patches pin_memory on CPU-only torch)

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "packages", "llmq", "fixtures", "transforms")

SQ_RECIPE = """default_stage:
  default_modifiers:
    SmoothQuantModifier:
      smoothing_strength: 0.8
    QuantizationModifier:
      targets: [Linear]
      scheme: W8A8
      ignore: [lm_head]
"""


AWQ_NVFP4_RECIPE = """default_stage:
  default_modifiers:
    AWQModifier: {duo_scaling: true, n_grid: 20}
    QuantizationModifier: {targets: [Linear], scheme: NVFP4A16, ignore: [lm_head]}
"""


def awq_recipe(groups: dict[str, int], duo: str = "true", n_grid: int = 20) -> str:
    lines = ["default_stage:", "  default_modifiers:", "    AWQModifier:", f"      duo_scaling: {duo}", f"      n_grid: {n_grid}",
             "    QuantizationModifier:", '      ignore: ["lm_head"]', "      config_groups:"]
    for i, (target, g) in enumerate(groups.items()):
        lines += [f"        group_{i}:", f"          targets: ['{target}']",
                  f"          weights: {{num_bits: 4, type: int, symmetric: false, strategy: group, group_size: {g}}}"]
    return "\n".join(lines) + "\n"


class Records:
    def __init__(self, full_layers: set[int] | None):
        self.tensors: dict[str, torch.Tensor] = {}
        self.mappings: list[dict] = []
        self.full_layers = full_layers  # layers whose weights are recorded (None: all)

    def keep_weights(self, name: str) -> bool:
        if self.full_layers is None:
            return True
        parts = name.split(".")
        return len(parts) > 2 and parts[1] == "layers" and int(parts[2]) in self.full_layers

    def put(self, key: str, t: torch.Tensor):
        self.tensors[key] = t.detach().clone().contiguous()


CURRENT: list[Records] = []  # the case being recorded (the wrappers are installed once)


def install():
    from llmcompressor.modifiers.transform.awq.base import AWQModifier
    from llmcompressor.modifiers.transform.smoothquant.base import SmoothQuantModifier

    def names(model):
        return {m: n for n, m in model.named_modules()}

    orig_sq = SmoothQuantModifier._apply_smoothing
    orig_calc = SmoothQuantModifier._calculate_smoothing_scales

    def sq_apply(self, model):
        nm = names(model)
        todo = [m for m in self.resolved_mappings_ if m.smooth_name in self.scales_]
        for m in todo:
            s = self.scales_[m.smooth_name]
            rec.put(f"sq.{m.smooth_name}.min", s.min_channel_vals)
            rec.put(f"sq.{m.smooth_name}.max", s.max_channel_vals)
            if rec.keep_weights(m.smooth_name):
                for b in m.balance_layers:
                    rec.put(f"before.{nm[b]}.weight", b.weight)
        out = orig_sq(self, model)
        for m in todo:
            entry = {"smooth": m.smooth_name, "balance": [nm[b] for b in m.balance_layers]}
            rec.mappings.append(entry)
            if rec.keep_weights(m.smooth_name):
                rec.put(f"after.{m.smooth_name}.weight", m.smooth_layer.weight)
                for b in m.balance_layers:
                    rec.put(f"after.{nm[b]}.weight", b.weight)
        return out

    def sq_calc(self, balance_layers, activation_scales):
        out = orig_calc(self, balance_layers, activation_scales)
        smooth = [m.smooth_name for m in self.resolved_mappings_ if m.balance_layers == balance_layers][0]
        rec.put(f"sq.{smooth}.scales", torch.maximum(out, torch.Tensor([1e-5])))
        return out

    orig_best = AWQModifier._compute_best_scale
    orig_loss = AWQModifier._compute_loss
    losses: list[float] = []

    def awq_loss(self, fp16_outputs, int_w_outputs):
        v = orig_loss(self, fp16_outputs, int_w_outputs)
        losses.append(v)
        return v

    def awq_best(self, mapping, fp16_outputs, orig_layer_weights):
        losses.clear()
        x_sum, count = self._smooth_activation_stats[mapping.smooth_name]
        key = mapping.smooth_name
        rec.put(f"awq.{key}.x_mean", x_sum / count)
        rec.put(f"awq.{key}.w_mean", self._compute_layer_means(mapping.balance_layers))
        if rec.keep_weights(key):
            for n, b in zip(mapping.balance_names, mapping.balance_layers):
                rec.put(f"before.{key}.{n}.weight", orig_layer_weights[b])
            rec.put(f"before.{key}.{key}.weight", mapping.smooth_layer.weight)
        best = orig_best(self, mapping, fp16_outputs, orig_layer_weights)
        grid = self._get_grid_search_params()
        rec.put(f"awq.{key}.scales", best)
        rec.mappings.append({"smooth": key, "balance": list(mapping.balance_names), "parent": mapping.parent_name,
                             "grid": [[r, d] for r, d in grid], "losses": list(losses)})
        return best

    orig_apply = AWQModifier._apply_smoothing

    def awq_apply(self, model):
        todo = [m for m in self._resolved_mappings if m.smooth_name in self._smooth_activation_stats]
        out = orig_apply(self, model)
        for m in todo:
            if rec.keep_weights(m.smooth_name):
                rec.put(f"after.{m.smooth_name}.{m.smooth_name}.weight", m.smooth_layer.weight)
                for n, b in zip(m.balance_names, m.balance_layers):
                    rec.put(f"after.{m.smooth_name}.{n}.weight", b.weight)
        return out

    class Current:
        def __getattr__(self, k):
            return getattr(CURRENT[-1], k)

    rec = Current()  # noqa: F841 (closures above read it)
    SmoothQuantModifier._apply_smoothing = sq_apply
    SmoothQuantModifier._calculate_smoothing_scales = sq_calc
    AWQModifier._compute_best_scale = awq_best
    AWQModifier._compute_loss = awq_loss
    AWQModifier._apply_smoothing = awq_apply


def tiny_model(dir_: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=4, max_position_embeddings=64, rms_norm_eps=1e-5, tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # norms away from 1 so that smoothing moves them visibly
        for n, p in model.named_parameters():
            if n.endswith("norm.weight"):
                p.copy_(0.5 + torch.rand_like(p))
    model.to(dtype).save_pretrained(dir_, safe_serialization=True)


def run_case(case: str, fp: str, windows: list[list[int]], recipes: dict[str, str], full_layers):
    out_dir = os.path.join(OUT, case)
    os.makedirs(out_dir, exist_ok=True)
    for rname, text in recipes.items():
        rec = Records(full_layers)
        CURRENT.append(rec)
        path = os.path.join(out_dir, f"{rname}.yaml")
        with open(path, "w") as f:
            f.write(text)
        import tempfile

        with tempfile.TemporaryDirectory() as lc_out:
            run_oneshot(fp, path, windows, lc_out, False)
        save_file(rec.tensors, os.path.join(out_dir, f"{rname}.safetensors"))
        with open(os.path.join(out_dir, f"{rname}.json"), "w") as f:
            json.dump({"case": case, "recipe": rname, "windows": len(windows), "mappings": rec.mappings}, f, indent=1)
        print(f"{case}/{rname}: {len(rec.mappings)} mappings, {len(rec.tensors)} tensors")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories-fp", required=True)
    ap.add_argument("--stories-windows", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    install()
    g = torch.Generator().manual_seed(0)
    tiny_windows = torch.randint(0, 128, (4, 32), generator=g).tolist()
    for case, dtype in [("tiny-f32", torch.float32), ("tiny-bf16", torch.bfloat16)]:
        d = os.path.join(OUT, case)
        tiny_model(d, dtype)
        # LC needs a processor when a dataset is given (it only saves it): stories260K's tokenizer stands in.
        for t in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
            shutil.copyfile(os.path.join(a.stories_fp, t), os.path.join(d, t))
        with open(os.path.join(d, "windows.json"), "w") as f:
            json.dump(tiny_windows, f)
        recipes = {"smoothquant-w8a8": SQ_RECIPE, "awq-w4a16-asym": awq_recipe({"Linear": 16})}
        if dtype == torch.float32:
            # the fused NVFP4 global scale inside the search, and the "both" grid (no-duo and duo at each ratio)
            recipes["awq-nvfp4a16"] = AWQ_NVFP4_RECIPE
            recipes["awq-both-w4a16-asym"] = awq_recipe({"Linear": 16}, duo="both", n_grid=10)
        run_case(case, d, tiny_windows, recipes, None)
    with open(a.stories_windows) as f:
        sw = json.load(f)
    with open(os.path.join(OUT, "stories260k-windows.json"), "w") as f:
        json.dump(sw, f)
    awq = awq_recipe({"re:.*(q|k|v|o|gate|up)_proj$": 32, "re:.*down_proj$": 43})
    run_case("stories260k", a.stories_fp, sw, {"smoothquant-w8a8": SQ_RECIPE, "awq-w4a16-asym": awq}, {0})
    return 0


if __name__ == "__main__":
    sys.exit(main())
