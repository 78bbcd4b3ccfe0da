#!/usr/bin/env python3
"""Interop check for llmq's llama2.c importer: transformers loads the converted HF directory and reproduces llmq's
logits, and the converted tokenizer.json encodes like llama2.c.

Command (run by packages/models/src/interop.test.ts when LLMQ_PYTHON is set; by hand):
    $LLMQ_PYTHON tools/check_llama2c_hf.py <converted_dir> <llmq.json> [--out report.json]

<llmq.json> = {"tokens": [...], "logits": [[...]], "texts": [...], "ids": [[...]]} written by the test: llmq's f32
logits for `tokens`, and llama2.c-encode ids (with BOS) of each text. Prints (and with --out writes) a JSON report;
exits 1 when logits differ by more than 1e-4 relative (max |a-b| / max |b|) or any token id differs.
"""
import argparse
import json
import sys

import tokenizers
import torch
import transformers
from transformers import AutoTokenizer, LlamaForCausalLM


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("model_dir")
    ap.add_argument("llmq_json")
    ap.add_argument("--out")
    a = ap.parse_args()
    with open(a.llmq_json) as f:
        ref = json.load(f)
    model = LlamaForCausalLM.from_pretrained(a.model_dir, dtype=torch.float32).eval()
    tokens = torch.tensor([ref["tokens"]])
    with torch.no_grad():
        logits = model(input_ids=tokens).logits[0]
    ours = torch.tensor(ref["logits"], dtype=torch.float32)
    max_diff = float((logits - ours).abs().max())
    max_abs = float(logits.abs().max())
    rel = max_diff / max_abs
    hf_greedy = int(logits[-1].argmax())

    fast = AutoTokenizer.from_pretrained(a.model_dir)
    raw = tokenizers.Tokenizer.from_file(f"{a.model_dir}/tokenizer.json")
    tok_mismatch = []
    for text, ids in zip(ref["texts"], ref["ids"]):
        t_ids = fast(text)["input_ids"]
        r_ids = [1] + raw.encode(text, add_special_tokens=False).ids
        if t_ids != ids or r_ids != ids:
            tok_mismatch.append({"text": text[:80], "transformers": t_ids[:20], "tokenizers": r_ids[:20], "llama2c": ids[:20]})
    decoded = fast.decode(ref["ids"][0], skip_special_tokens=True)
    report = {
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "tokenizers": tokenizers.__version__,
        "tokenizer_class": type(fast).__name__,
        "tokens": len(ref["tokens"]),
        "logits_max_abs_diff": max_diff,
        "logits_max_abs": max_abs,
        "logits_rel_err": rel,
        "hf_argmax_last": hf_greedy,
        "texts": len(ref["texts"]),
        "token_ids_equal": not tok_mismatch,
        "token_mismatches": tok_mismatch[:5],
        "decoded_first_text": decoded,
        "decoded_equals_text": decoded == ref["texts"][0],
    }
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        with open(a.out, "w") as f:
            f.write(text + "\n")
    return 0 if rel <= 1e-4 and not tok_mismatch and decoded == ref["texts"][0] else 1


if __name__ == "__main__":
    sys.exit(main())
