#!/usr/bin/env python3
"""transformers quantizes a model with GPTQConfig (optimum + GPTQModel on the CPU) and saves it; llmq reads it back.

Command (run by packages/llmq/src/hf-calibrated.test.ts when LLMQ_PYTHON is set and gptqmodel imports):
    $LLMQ_PYTHON tools/gptq_quantize_hf.py <fp_dir> <out_dir> <calibration.txt> '<GPTQConfig json>'

from_pretrained(<fp_dir>, quantization_config=GPTQConfig(**json, dataset=<the first 16 lines of calibration.txt
longer than 200 characters>, tokenizer=<fp_dir's>), device_map="cpu", dtype=float16), then save_pretrained(<out_dir>).
The saved directory is loaded again with dtype=float32 (GPTQModel's CPU kernels) and its logits on two token windows
(the ones packages/llmq/src/test-support/logits-file.ts uses) are written to <out_dir>.hf.safetensors as
hf.tokens.i / hf.logits.i, for llmq's forward on the same directory to match. Prints a JSON summary.
"""
import json
import sys
import warnings

import torch
import transformers
from safetensors.torch import save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, GPTQConfig

transformers.logging.set_verbosity_error()
warnings.simplefilter("ignore")


def main(fp_dir, out_dir, text_file, qc_json):
    with open(text_file, encoding="utf-8") as f:
        texts = [line for line in f.read().split("\n") if len(line) > 200][:16]
    qc = GPTQConfig(**json.loads(qc_json), dataset=texts, tokenizer=AutoTokenizer.from_pretrained(fp_dir))
    model = AutoModelForCausalLM.from_pretrained(fp_dir, quantization_config=qc, device_map="cpu", dtype=torch.float16)
    model.save_pretrained(out_dir)
    loaded = AutoModelForCausalLM.from_pretrained(out_dir, device_map="cpu", dtype=torch.float32)
    out = {}
    with torch.no_grad():
        for w in range(2):
            tokens = torch.tensor([1] + [(i * 37 + w * 101) % 512 for i in range(1, 48)], dtype=torch.int32)
            out[f"hf.tokens.{w}"] = tokens
            out[f"hf.logits.{w}"] = loaded(tokens.long().unsqueeze(0)).logits[0].float().contiguous()
    save_file(out, f"{out_dir}.hf.safetensors")
    with open(f"{out_dir}/config.json", encoding="utf-8") as f:
        saved = json.load(f)["quantization_config"]
    print(json.dumps({"quantized_linears": sum(1 for m in loaded.modules() if hasattr(m, "qweight")),
                      "checkpoint_format": saved.get("checkpoint_format"), "meta": saved.get("meta")}))


if __name__ == "__main__":
    main(*sys.argv[1:5])
