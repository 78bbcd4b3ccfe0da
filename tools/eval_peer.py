#!/usr/bin/env python3
"""`llmq eval` (quantized vs reference) computed with transformers + torch CPU: the timed peer of `pnpm bench eval`.

Command (from the repo root; $LLMQ_PYTHON is the env of tools/requirements.txt):
    $LLMQ_PYTHON tools/eval_peer.py --model <quantized_dir> --reference <fp_dir> --tokens <windows.json> [--threads 2]

Loads both with `AutoModelForCausalLM.from_pretrained(dir, dtype="auto")` (a compressed-tensors checkpoint with
`CompressedTensorsConfig(run_compressed=False)`: weights decompressed once at load, as llmq does), runs every window
(batch 1, no cache) through both, and scores every position t < T−1 against token t+1 exactly as llmq's logitStats
does, in f64: nll = logsumexp − logit[target], KL(reference ‖ model) = Σ p (log p − log q), argmax agreement.
Prints one JSON line: perplexity, reference perplexity, mean / max KL, top-1, the seconds of the scoring loop and
of the whole script, torch threads and peak RSS.
"""
import argparse
import json
import os
import resource
import time

T_START = time.perf_counter()
os.environ.setdefault("TQDM_DISABLE", "1")
import torch


def load(path: str):
    from transformers import AutoModelForCausalLM

    with open(os.path.join(path, "config.json")) as f:
        qc = json.load(f).get("quantization_config")
    kw = {}
    if qc is not None and qc.get("quant_method") == "compressed-tensors":
        from transformers import CompressedTensorsConfig

        kw["quantization_config"] = CompressedTensorsConfig(run_compressed=False)
    return AutoModelForCausalLM.from_pretrained(path, dtype="auto", **kw).eval()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--reference", required=True)
    ap.add_argument("--tokens", required=True)
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    with open(a.tokens) as f:
        windows = json.load(f)
    model, ref = load(a.model), load(a.reference)
    t0 = time.perf_counter()
    nll, rnll, kls, top = [], [], [], []
    with torch.inference_mode():
        for w in windows:
            ids = torch.tensor([w])
            lq = model(ids).logits[0, :-1].double().log_softmax(-1)
            lp = ref(ids).logits[0, :-1].double().log_softmax(-1)
            tgt = ids[0, 1:]
            nll.append(-lq.gather(1, tgt[:, None])[:, 0])
            rnll.append(-lp.gather(1, tgt[:, None])[:, 0])
            kls.append((lp.exp() * (lp - lq)).sum(-1).clamp_min(0))
            top.append(lq.argmax(-1) == lp.argmax(-1))
    seconds = time.perf_counter() - t0
    nll, rnll, kls, top = torch.cat(nll), torch.cat(rnll), torch.cat(kls), torch.cat(top)
    print(
        json.dumps(
            {
                "tokens": int(nll.numel()),
                "perplexity": float(nll.mean().exp()),
                "reference_perplexity": float(rnll.mean().exp()),
                "kld_mean": float(kls.mean()),
                "kld_max": float(kls.max()),
                "top1": float(top.double().mean()),
                "forward_and_score_seconds": round(seconds, 2),
                "script_seconds": round(time.perf_counter() - T_START, 2),
                "torch_threads": torch.get_num_threads(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
