#!/usr/bin/env python
"""Generates packages/llmq/fixtures/kv-cache/ from llm-compressor's own kv_cache_scheme calibration (LC 0.14.0.1,
compressed-tensors 0.20.0).

Command (from the repo root; $LLMQ_PYTHON is the env documented in tools/requirements.txt):
    node packages/llmq/dist/cli.js convert --from llama2c fixtures/stories260K/stories260K.bin \
        --tokenizer fixtures/stories260K/tok512.bin --output /tmp/stories260k-fp
    PYTHONPATH=../transformers-5.17 $LLMQ_PYTHON tools/gen_kv_cache_fixtures.py --stories-fp /tmp/stories260k-fp
(transformers <= 5.17 first on the path: tools/requirements.txt says why and how to install it beside the env)

Cases (model + calibration windows, run through LC's `oneshot` as tools/oneshot_compare.py does: batch size 1, no
shuffling):
  tiny-gqa-f32, tiny-gqa-bf16  a random Llama with grouped-query attention (4 heads, 2 KV heads, head_dim 16, hidden
                               64, 2 layers, vocab 128), 4 random windows × 32 tokens (seed 0); model files saved beside
                               the records so that the test needs no Python.
  stories260k                  the converted stories260K (8 heads, 4 KV heads), the 16 × 128 WikiText-2 windows of
                               packages/llmq/fixtures/transforms/stories260k-windows.json.
Recipes: QuantizationModifier with int4 channel-wise weights (ignore lm_head; W4A16's group 128 does not divide these
widths) with a kv_cache_scheme: fp8 per tensor (static_minmax, and with
no observer named: compressed-tensors' default), fp8 per attention head, int8 symmetric per tensor, int8 asymmetric per
head (the case compressed-tensors warns about); on stories260k also GPTQModifier int4 channel + fp8 per tensor.
Writes packages/llmq/fixtures/kv-cache/<case>/<recipe>.{yaml,json,safetensors}: the recipe, LC's saved
config.json `quantization_config` with the kv tensors' names, dtypes and shapes, and the kv tensors themselves
(`*.self_attn.{k,v}_scale`, `*_zero_point`) exactly as LC saved them.
"""

import argparse
import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TQDM_DISABLE", "1")
import torch
from safetensors import safe_open
from safetensors.torch import save_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from oneshot_compare import run_oneshot  # noqa: E402  (also patches pin_memory on CPU-only torch)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "packages", "llmq", "fixtures", "kv-cache")


def recipe(kv: str, modifier: str = "QuantizationModifier") -> str:
    return f"""default_stage:
  default_modifiers:
    {modifier}:
      ignore: [lm_head]
      config_groups:
        group_0:
          targets: [Linear]
          weights: {{num_bits: 4, type: int, symmetric: true, strategy: channel}}
      kv_cache_scheme: {kv}
"""


RECIPES = {
    "fp8-tensor": recipe("{num_bits: 8, type: float, strategy: tensor, dynamic: false, symmetric: true, observer: static_minmax}"),
    "fp8-tensor-default-observer": recipe("{num_bits: 8, type: float, strategy: tensor, dynamic: false, symmetric: true}"),
    "fp8-attn-head": recipe("{num_bits: 8, type: float, strategy: attn_head, dynamic: false, symmetric: true, observer: static_minmax}"),
    "int8-tensor": recipe("{num_bits: 8, type: int, strategy: tensor, dynamic: false, symmetric: true, observer: static_minmax}"),
    "int8-asym-attn-head": recipe("{num_bits: 8, type: int, strategy: attn_head, dynamic: false, symmetric: false, observer: static_minmax}"),
}


def tiny_model(dir_: str, dtype: torch.dtype):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, head_dim=16, max_position_embeddings=64, rms_norm_eps=1e-5,
                      tie_word_embeddings=False)
    model = LlamaForCausalLM(cfg)
    model.to(dtype).save_pretrained(dir_, safe_serialization=True)


def kv_records(lc_out: str) -> tuple[dict[str, torch.Tensor], dict]:
    with open(os.path.join(lc_out, "config.json")) as f:
        qc = json.load(f)["quantization_config"]
    tensors, infos = {}, {}
    for fn in sorted(os.listdir(lc_out)):
        if not fn.endswith(".safetensors"):
            continue
        with safe_open(os.path.join(lc_out, fn), "pt") as f:
            for k in f.keys():
                if ".self_attn." in k and k.rsplit(".", 1)[-1] in ("k_scale", "v_scale", "q_scale", "k_zero_point", "v_zero_point", "q_zero_point"):
                    t = f.get_tensor(k)
                    tensors[k] = t.contiguous()
                    infos[k] = {"dtype": str(t.dtype).replace("torch.", ""), "shape": list(t.shape)}
    return tensors, {"quantization_config": qc, "tensors": infos}


def run_case(case: str, fp: str, windows: list[list[int]], recipes: dict[str, str]):
    out_dir = os.path.join(OUT, case)
    os.makedirs(out_dir, exist_ok=True)
    for rname, text in recipes.items():
        path = os.path.join(out_dir, f"{rname}.yaml")
        with open(path, "w") as f:
            f.write(text)
        with tempfile.TemporaryDirectory() as lc_out:
            run_oneshot(fp, path, windows, lc_out, False)
            tensors, info = kv_records(lc_out)
        save_file(tensors, os.path.join(out_dir, f"{rname}.safetensors"))
        with open(os.path.join(out_dir, f"{rname}.json"), "w") as f:
            json.dump({"case": case, "recipe": rname, "windows": len(windows), **info}, f, indent=1)
        print(f"{case}/{rname}: {len(tensors)} kv tensors")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--stories-fp", required=True)
    a = ap.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    tiny_windows = torch.randint(0, 128, (4, 32), generator=g).tolist()
    for case, dtype in [("tiny-gqa-f32", torch.float32), ("tiny-gqa-bf16", torch.bfloat16)]:
        d = os.path.join(OUT, case)
        tiny_model(d, dtype)
        # LC needs a processor when a dataset is given (it only saves it): stories260K's tokenizer stands in.
        for t in ["tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"]:
            src = os.path.join(a.stories_fp, t)
            if os.path.exists(src):
                shutil.copyfile(src, os.path.join(d, t))
        with open(os.path.join(d, "windows.json"), "w") as f:
            json.dump(tiny_windows, f)
        run_case(case, d, tiny_windows, RECIPES)
    with open(os.path.join(ROOT, "packages", "llmq", "fixtures", "transforms", "stories260k-windows.json")) as f:
        sw = json.load(f)
    stories = {k: RECIPES[k] for k in ("fp8-tensor", "fp8-attn-head", "int8-tensor")}
    stories["gptq-fp8-tensor"] = recipe(
        "{num_bits: 8, type: float, strategy: tensor, dynamic: false, symmetric: true, observer: static_minmax}", "GPTQModifier")
    run_case("stories260k", a.stories_fp, sw, stories)
    return 0


if __name__ == "__main__":
    sys.exit(main())
