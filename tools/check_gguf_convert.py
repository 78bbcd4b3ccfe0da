#!/usr/bin/env python3
# Checks an `llmq convert --from gguf` output against transformers' own GGUF loader: every tensor of the state dict
# bit for bit, and the logits on a prompt. Prints one JSON line; exits 1 on a difference.
#
#   $LLMQ_PYTHON tools/check_gguf_convert.py <converted dir> <file.gguf>
# (run by packages/llmq/src/convert-gguf.test.ts when LLMQ_PYTHON is set; transformers 5.24.0, gguf 0.19.0)
import json
import os
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

out_dir, gguf_path = sys.argv[1], sys.argv[2]
ours = AutoModelForCausalLM.from_pretrained(out_dir, dtype=torch.float32).eval()
ref = AutoModelForCausalLM.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path), dtype=torch.float32).eval()
ref_tok = AutoTokenizer.from_pretrained(os.path.dirname(gguf_path), gguf_file=os.path.basename(gguf_path))
our_tok = AutoTokenizer.from_pretrained(out_dir)
sa, sb = ours.state_dict(), ref.state_dict()
differ = sorted(k for k in sb if k not in sa or not torch.equal(sa[k], sb[k]))
text = "The capital of France is"
ids = torch.tensor([ref_tok(text).input_ids])
with torch.no_grad():
    d = (ours(ids).logits - ref(ids).logits).abs().max().item()
res = {"tensors": len(sb), "differing_tensors": differ, "max_abs_logit_diff": d, "tokenizer_ids_equal": our_tok(text).input_ids == ref_tok(text).input_ids}
print(json.dumps(res))
sys.exit(0 if not differ and d == 0 and res["tokenizer_ids_equal"] else 1)
