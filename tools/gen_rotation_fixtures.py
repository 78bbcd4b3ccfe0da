#!/usr/bin/env python
"""Reference SpinQuant / QuIP rotations from compressed-tensors 0.20.0 and llm-compressor 0.14.0.1 (torch 2.13 CPU).

Command (from the repo root):
    $LLMQ_PYTHON tools/gen_rotation_fixtures.py
Writes packages/transforms/fixtures/rotations/:
  (and packages/tensor/fixtures/torch-generator.json: torch.Generator streams (default seed and manual seeds): randint(0, 2) bits, rand f32 / f64
                       values as float.hex, and an interleaved stream (randint then rand on one generator))
  factories.json       CT's own factories (TransformFactory.from_scheme) drawing matrices of several sizes in order
  factories.safetensors  (the weight cache key is the size): "hadamard" / "random-hadamard" as '0'/'1' sign strings
                       ('1' = -1) in the json, "random-matrix" weights and their inverses (high_precision_invert) as F64
                       tensors `<case>.<i>.weight` / `<case>.<i>.inverse`.
  transform-configs.json  TransformConfig dumps that LC's SpinQuantModifier / QuIPModifier build at on_initialize for
                       the tiny models below, each with the config.json text CT's ModelCompressor.update_config writes
                       for it alone (no quantization).
  tiny-gqa/            a random tied Llama (hidden 64, 4 heads, 2 KV heads, head_dim 16, intermediate 128, 2 layers,
                       vocab 128, f32, seed 0).
  tiny-gqa-bf16/       the same weights as tiny-gqa (same seed), stored in bf16 (rounding after every fused step).
  tiny-hd80/           a random untied Llama with a non-power-of-two head_dim (hidden 160, 2 heads, 1 KV head,
                       head_dim 80, intermediate 320, 1 layer, vocab 96, f32, seed 1).
  <model>/<case>/      llm-compressor's oneshot output (config.json, model.safetensors, recipe.yaml) for the recipes in
                       CASES (input.yaml: the recipe as given; LC's saved recipe.yaml of a GPTQ run holds Python tags),
                       data-free unless GPTQ, plus logits.safetensors: LC's in-memory model logits on TOKENS (f32) before
                       and after the modifiers (online transforms applied by CT's hooks); for bf16 models also
                       after_f32, the same model cast to f32 after oneshot. GPTQ cases calibrate on WINDOWS (4 × 32
                       random token ids, seed 0, batch 1, no shuffle; saved as windows.json).
"""

import json
import os
import shutil
import sys
import tempfile

os.environ.setdefault("TQDM_DISABLE", "1")
import torch
from safetensors.torch import save_file

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "packages", "transforms", "fixtures", "rotations")
TOKENS = [[1, 5, 9, 17, 33, 2, 64, 77, 3, 90, 11, 0, 42, 8, 31, 60]]


def bits(m):
    return "".join("1" if v < 0 else "0" for v in m.reshape(-1).tolist())


def generator_streams():
    out = {}
    g = torch.Generator()
    out["default_seed"] = int(g.initial_seed())
    out["default_randint2"] = "".join(str(int(v)) for v in torch.randint(0, 2, (64,), generator=g).tolist())
    out["seeded"] = []
    for seed in [0, 42, 2**32 + 5, 123456789012]:
        g = torch.Generator().manual_seed(seed)
        r = {"seed": str(seed)}
        r["randint2"] = "".join(str(int(v)) for v in torch.randint(0, 2, (40,), generator=g, dtype=torch.float64).tolist())
        r["rand_f32"] = [float(v).hex() for v in torch.rand(12, generator=g, dtype=torch.float32).tolist()]
        r["rand_f64"] = [float(v).hex() for v in torch.rand(12, generator=g, dtype=torch.float64).tolist()]
        r["randint2_after"] = "".join(str(int(v)) for v in torch.randint(0, 2, (8,), generator=g).tolist())
        out["seeded"].append(r)
    # a 64x64 draw (vectorised paths, if any, would show here)
    g = torch.Generator().manual_seed(3)
    big = torch.rand((64, 64), generator=g, dtype=torch.float64)
    out["rand_f64_64x64_seed3_last"] = [float(v).hex() for v in big.reshape(-1)[-8:].tolist()]
    g = torch.Generator().manual_seed(3)
    big = torch.rand((64, 64), generator=g, dtype=torch.float32)
    out["rand_f32_64x64_seed3_last"] = [float(v).hex() for v in big.reshape(-1)[-8:].tolist()]
    return out


def factories():
    from compressed_tensors.transform import TransformFactory, TransformScheme

    cases = [
        ("hadamard", [8, 16, 64, 16, 128]),
        ("random-hadamard", [16, 80, 12, 16, 32, 96, 160, 320, 112, 256]),
        ("random-matrix", [4, 8, 4, 16]),
    ]
    js, tensors = [], {}
    for typ, sizes in cases:
        for precision in [torch.float64, torch.float32]:
            scheme = TransformScheme(type=typ, precision=precision)
            fac = TransformFactory.from_scheme(scheme, name="T")
            name = f"{typ}.{str(precision).removeprefix('torch.')}"
            mats = []
            for i, n in enumerate(sizes):
                kw = {"device": torch.device("cpu"), "precision": precision}
                if typ != "random-matrix":
                    kw["construct_device"] = torch.device("cpu")
                w = fac.weights.get(n, factory_kwargs=kw)
                if typ == "random-matrix":
                    tensors[f"{name}.{i}.weight"] = w.data.clone().contiguous()
                    tensors[f"{name}.{i}.inverse"] = fac.inverses[w].data.clone().contiguous()
                    mats.append({"n": n, "dtype": str(w.dtype)})
                else:
                    assert bool((w.data.abs() == 1).all())
                    mats.append({"n": n, "dtype": str(w.dtype), "bits": bits(w.data)})
            js.append({"type": typ, "precision": str(precision), "sizes": sizes, "matrices": mats, "name": name})
    return js, tensors


def tiny_model(path, seed, dtype=torch.float32, **cfg):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    c = LlamaConfig(max_position_embeddings=256, rms_norm_eps=1e-5, **cfg)
    m = LlamaForCausalLM(c).to(torch.float32)
    with torch.no_grad():
        for n, p in m.named_parameters():
            if "norm" in n:
                p.copy_(1 + 0.3 * torch.randn_like(p))
            else:
                p.copy_(torch.randn_like(p) * 0.2)
    m.to(dtype).save_pretrained(path)
    return path


SPIN = "transform_stage:\n  transform_modifiers:\n    SpinQuantModifier:\n"
QUIP = "transform_stage:\n  transform_modifiers:\n    QuIPModifier:\n"
# W4A16 with groups of 32 (the preset's 128 does not divide hidden 64)
W4A16 = ("quant_stage:\n  quant_modifiers:\n    QuantizationModifier:\n      ignore: [lm_head]\n      config_groups:\n        group_0:\n"
         "          targets: [Linear]\n          weights: {num_bits: 4, type: int, symmetric: true, strategy: group, group_size: 32}\n")

# GPTQ with calibration data: the Hessians must see R4's online rotation of down_proj's input (CT's prepended pre-hook)
GPTQ_W4 = W4A16.replace("QuantizationModifier", "GPTQModifier")
WINDOWS = torch.randint(0, 128, (4, 32), generator=torch.Generator().manual_seed(0)).tolist()

CASES = {
    "tiny-gqa": {
        "spinquant-r1234": SPIN + "      rotations: [R1, R2, R3, R4]\n",
        "spinquant-r124-gptq-w4a16": SPIN + "      rotations: [R1, R2, R4]\n" + GPTQ_W4,
        "quip-v-gptq-w4a16": QUIP + "      rotations: [v]\n" + GPTQ_W4,
        "spinquant-r124": SPIN + "      rotations: [R1, R2, R4]\n",
        "spinquant-r12-w4a16": SPIN + "      rotations: [R1, R2]\n" + W4A16,
        "quip-uv": QUIP + "      rotations: [v, u]\n",
        "spinquant-r12-block32-rm": SPIN + "      rotations: [R1, R2]\n      transform_type: random-matrix\n      transform_block_size: 32\n",
    },
    "tiny-gqa-bf16": {
        "spinquant-r124": SPIN + "      rotations: [R1, R2, R4]\n",
        "quip-uv": QUIP + "      rotations: [v, u]\n",
    },
    "tiny-hd80": {
        "spinquant-r124-rh": SPIN + "      rotations: [R1, R2, R4]\n      transform_type: random-hadamard\n",
        "quip-v": QUIP + "      rotations: [v]\n",
    },
}


def logits(model):
    with torch.no_grad():
        return model(torch.tensor(TOKENS)).logits[0].to(torch.float32).contiguous()


def run_case(model_dir, out_dir, recipe):
    from transformers import AutoModelForCausalLM
    from llmcompressor import oneshot

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    before = logits(model)
    if "GPTQModifier" in recipe:
        from datasets import Dataset

        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import oneshot_compare  # noqa: F401  (patches pin_memory on CPU-only torch)

        from tokenizers import Tokenizer, models
        from transformers import PreTrainedTokenizerFast

        tok = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(models.WordLevel({f"t{i}": i for i in range(128)}, unk_token="t0")))
        ds = Dataset.from_dict({"input_ids": WINDOWS, "attention_mask": [[1] * len(w) for w in WINDOWS]})
        oneshot(model=model, recipe=recipe, dataset=ds, processor=tok, num_calibration_samples=len(WINDOWS), max_seq_length=32,
                shuffle_calibration_samples=False, output_dir=out_dir)
        with open(os.path.join(out_dir, "windows.json"), "w") as f:
            json.dump(WINDOWS, f)
    else:
        oneshot(model=model, recipe=recipe, output_dir=out_dir)
    after = logits(model)
    out = {"before": before, "after": after, "tokens": torch.tensor(TOKENS, dtype=torch.int32)}
    if model.dtype != torch.float32:
        # the same rotated (bf16-rounded) weights and CT's online hooks, run in f32 as llmq's forward does
        out["after_f32"] = logits(model.float())
    save_file(out, os.path.join(out_dir, "logits.safetensors"))


def transform_configs():
    from transformers import AutoModelForCausalLM
    from llmcompressor.modifiers.transform import QuIPModifier, SpinQuantModifier
    from compressed_tensors.compressors import ModelCompressor

    specs = [
        ("tiny-gqa", "SpinQuantModifier", {}),
        ("tiny-gqa", "SpinQuantModifier", {"rotations": ["R1", "R2", "R3", "R4"], "transform_block_size": 32, "transform_type": "random-hadamard"}),
        ("tiny-gqa", "SpinQuantModifier", {"rotations": ["r4"], "precision": "bfloat16"}),
        ("tiny-hd80", "SpinQuantModifier", {"rotations": ["R2", "R1"], "transform_type": "random-matrix"}),
        ("tiny-gqa", "QuIPModifier", {}),
        ("tiny-gqa", "QuIPModifier", {"rotations": ["u", "V"], "targets": "re:.*mlp.*", "ignore": ["re:.*down_proj$", "lm_head"], "transform_block_size": 16}),
    ]
    out = []
    for model_name, cls, kwargs in specs:
        model = AutoModelForCausalLM.from_pretrained(os.path.join(OUT, model_name), dtype=torch.float32)
        mod = {"SpinQuantModifier": SpinQuantModifier, "QuIPModifier": QuIPModifier}[cls](**kwargs)

        class S:
            pass

        s = S()
        s.model = model
        mod.on_initialize(s)
        tc = mod.transform_config
        with tempfile.TemporaryDirectory() as d:
            shutil.copy(os.path.join(OUT, model_name, "config.json"), os.path.join(d, "config.json"))
            ModelCompressor(quantization_config=None, transform_config=tc).update_config(d)
            text = open(os.path.join(d, "config.json")).read()
        out.append({"model": model_name, "modifier": cls, "kwargs": kwargs, "dump": json.loads(json.dumps(tc.model_dump(), default=str)), "config_json": text})
    return out


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "..", "..", "..", "tensor", "fixtures", "torch-generator.json"), "w") as f:
        json.dump(generator_streams(), f, indent=1)
    js, tensors = factories()
    with open(os.path.join(OUT, "factories.json"), "w") as f:
        json.dump(js, f)
    save_file(tensors, os.path.join(OUT, "factories.safetensors"))
    tiny_model(os.path.join(OUT, "tiny-gqa"), 0, vocab_size=128, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True)
    tiny_model(os.path.join(OUT, "tiny-hd80"), 1, vocab_size=96, hidden_size=160, intermediate_size=320, num_hidden_layers=1,
               num_attention_heads=2, num_key_value_heads=1, head_dim=80, tie_word_embeddings=False)
    tiny_model(os.path.join(OUT, "tiny-gqa-bf16"), 0, dtype=torch.bfloat16, vocab_size=128, hidden_size=64, intermediate_size=128,
               num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16, tie_word_embeddings=True)
    for d in ("tiny-gqa", "tiny-gqa-bf16", "tiny-hd80"):
        p = os.path.join(OUT, d, "generation_config.json")
        if os.path.exists(p):
            os.remove(p)
    with open(os.path.join(OUT, "transform-configs.json"), "w") as f:
        json.dump(transform_configs(), f, indent=1)
    only = sys.argv[1:]
    for model_name, cases in CASES.items():
        for case, recipe in cases.items():
            if only and case not in only:
                continue
            out = os.path.join(OUT, model_name, case)
            shutil.rmtree(out, ignore_errors=True)
            run_case(os.path.join(OUT, model_name), out, recipe)
            with open(os.path.join(out, "input.yaml"), "w") as f:
                f.write(recipe)
            for extra in ("generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
                p = os.path.join(out, extra)
                if os.path.exists(p):
                    os.remove(p)


if __name__ == "__main__":
    main()
