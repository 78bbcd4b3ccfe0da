#!/usr/bin/env python3
"""llm-compressor's oneshot as a timed peer of `llmq quantize` (packages/llmq/bench/e2e.bench.ts runs it).

Command (from the repo root; $LLMQ_PYTHON is the env of tools/requirements.txt):
    $LLMQ_PYTHON tools/lc_oneshot_bench.py --fp <fp_dir> --recipe <recipe.yaml> [--tokens <windows.json>] \
        --out <dir> [--threads 2]

Loads the model with `AutoModelForCausalLM.from_pretrained(fp, dtype="auto")` and runs llm-compressor's `oneshot`
with the recipe, on the given token windows (a `datasets.Dataset` of `input_ids` + all-ones `attention_mask`, batch
size 1, no shuffling, the default "independent" pipeline), or with no dataset (data-free recipes), saving to --out.
No hooks or tracing: this is the plain user path. Prints one JSON line: the seconds of oneshot alone, of the whole
script (imports, load, oneshot, save), the torch threads and the process's peak RSS.
"""
import argparse
import json
import os
import resource
import time

T_START = time.perf_counter()
os.environ.setdefault("TQDM_DISABLE", "1")
import warnings

import torch

if not torch.cuda.is_available():  # llm-compressor's AWQ pins memory for a GPU
    torch.Tensor.pin_memory = lambda self, *args, **kwargs: self


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fp", required=True)
    ap.add_argument("--recipe", required=True)
    ap.add_argument("--tokens")
    ap.add_argument("--out", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from datasets import Dataset
    from llmcompressor import oneshot
    from transformers import AutoModelForCausalLM

    kwargs = {}
    if a.tokens:
        with open(a.tokens) as f:
            windows = json.load(f)
        kwargs = dict(
            dataset=Dataset.from_dict({"input_ids": windows, "attention_mask": [[1] * len(w) for w in windows]}),
            num_calibration_samples=len(windows),
            max_seq_length=max(len(w) for w in windows),
            shuffle_calibration_samples=False,
        )
    model = AutoModelForCausalLM.from_pretrained(a.fp, dtype="auto")
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        oneshot(model=model, recipe=a.recipe, output_dir=a.out, **kwargs)
    oneshot_s = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "oneshot_seconds": round(oneshot_s, 2),
                "script_seconds": round(time.perf_counter() - T_START, 2),
                "torch_threads": torch.get_num_threads(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
