#!/usr/bin/env python
"""Loads an llmq checkpoint with a kv_cache_scheme in transformers (compressed-tensors integration) and compares its
logits with llmq's, which apply the checkpoint's k/v scales (post-RoPE keys and values fake-quantized).

Command (from the repo root; run by packages/llmq/src/kv-cache.test.ts when LLMQ_PYTHON is set):
    PYTHONPATH=<dir with transformers 5.17.0> $LLMQ_PYTHON tools/kv_interop_check.py <model dir> <llmq logits.safetensors>
transformers must be one llm-compressor 0.14.0.1 supports (<= 5.17): from 5.2x the attention's cache argument is named
`cache`, and compressed-tensors 0.20.0 then no longer recognises attention modules (no QuantizedKVCache is attached,
the k/v scales are ignored). `pip install --no-deps --target <dir> transformers==5.17.0` makes such a dir.
The logits file holds `llmq.tokens.<i>` (i32 [T]) and `llmq.logits.<i>` (f32 [T, vocab]). Prints one JSON line.
"""

import json
import sys
import warnings

import torch
from safetensors import safe_open


def main() -> int:
    model_dir, dump = sys.argv[1], sys.argv[2]
    import transformers
    from transformers import AutoModelForCausalLM

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = AutoModelForCausalLM.from_pretrained(model_dir, dtype="auto")
    model.eval()
    attn = model.model.layers[0].self_attn
    report = {"transformers": transformers.__version__, "kv_cache_attached": hasattr(attn, "kv_cache"),
              "k_scale": attn.k_scale.detach().float().flatten().tolist() if hasattr(attn, "k_scale") else None}
    worst, mean, n, agree, total = 0.0, 0.0, 0, 0, 0
    with safe_open(dump, "pt") as f:
        i = 0
        while f"llmq.tokens.{i}" in f.keys():
            ids = f.get_tensor(f"llmq.tokens.{i}").long()[None]
            want = f.get_tensor(f"llmq.logits.{i}").float()
            with torch.no_grad():
                got = model(input_ids=ids).logits[0].float()
            worst = max(worst, ((got - want).abs().max() / want.abs().max()).item())
            mean += ((got - want).abs().mean() / want.abs().mean()).item()
            agree += int((got.argmax(-1) == want.argmax(-1)).sum())
            total += got.shape[0]
            i += 1
    report["windows"] = i
    report["logits_rel_err"] = worst
    report["logits_mean_rel_err"] = mean / max(i, 1)
    report["top1_agreement"] = agree / max(total, 1)
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main())
