#!/usr/bin/env python3
# transformers' own reading of SmolLM2-135M-Instruct (Q4_1 GGUF) as the reference for `llmq convert --from gguf`.
#
# Command (from the repo root, after `bash tools/fetch_smollm2.sh`; deterministic, ~40 s on 2 cores):
#   $LLMQ_PYTHON tools/gen_smollm2_reference.py
#
# Versions used: transformers 5.24.0, gguf 0.19.0, torch 2.13.0 (CPU), tokenizers 0.23.3.
#
# Outputs (packages/models/fixtures/smollm2/):
#   reference.json     the prompt and its ids; 40 greedy tokens (argmax of the full-sequence forward at each step, no
#                      EOS stop, no KV cache); per position of prompt+generated[:-1]: the top-8 logits and 16 fixed
#                      vocabulary ids' logits (f32 values), and the top-1/top-2 margin
#   wikitext.ids.bin   transformers' ids of the first 1000 non-empty lines of fixtures/wikitext-2/test.txt
#                      (AutoTokenizer.from_pretrained(dir, gguf_file=...), default call): uint16 little-endian, lines
#                      concatenated; wikitext.lengths.bin: uint32 per line
import json
import os
import sys
from importlib.metadata import version

import numpy as np
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..")
GGUF_DIR = os.path.join(ROOT, ".models", "smollm2")
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "packages", "models", "fixtures", "smollm2")
PROMPT = "The capital of France is"
STEPS = 40
FIXED_IDS = list(range(0, 49152, 3072))

if not os.path.exists(os.path.join(GGUF_DIR, GGUF_FILE)):
    sys.exit("run `bash tools/fetch_smollm2.sh` first")
versions = {p: version(p) for p in ["transformers", "gguf", "torch", "tokenizers"]}
print(versions)
os.makedirs(OUT, exist_ok=True)
torch.manual_seed(0)

tok = AutoTokenizer.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE)
model = AutoModelForCausalLM.from_pretrained(GGUF_DIR, gguf_file=GGUF_FILE, dtype=torch.float32).eval()

prompt_ids = tok(PROMPT).input_ids
ids = list(prompt_ids)
with torch.no_grad():
    for _ in range(STEPS):
        logits = model(torch.tensor([ids])).logits[0, -1]
        ids.append(int(torch.argmax(logits)))
    full = model(torch.tensor([ids[:-1]])).logits[0].float()
samples = []
for p in range(full.shape[0]):
    row = full[p]
    top = torch.topk(row, 8)
    want = [int(i) for i in top.indices] + FIXED_IDS
    samples.append({"ids": want, "logits": [float(row[i]) for i in want], "margin": float(top.values[0] - top.values[1])})
    if p >= len(prompt_ids) - 1:
        assert int(top.indices[0]) == ids[p + 1], "full forward and step-wise greedy disagree"

with open(os.path.join(ROOT, "fixtures", "wikitext-2", "test.txt"), encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip()][:1000]
lengths, flat = [], []
for line in lines:
    t = tok(line).input_ids
    lengths.append(len(t))
    flat.extend(t)
np.asarray(flat, dtype="<u2").tofile(os.path.join(OUT, "wikitext.ids.bin"))
np.asarray(lengths, dtype="<u4").tofile(os.path.join(OUT, "wikitext.lengths.bin"))

ref = {
    "versions": versions,
    "gguf_file": GGUF_FILE,
    "prompt": PROMPT,
    "prompt_ids": prompt_ids,
    "generated_ids": ids[len(prompt_ids) :],
    "generated_text": tok.decode(ids[len(prompt_ids) :]),
    "positions": samples,
    "wikitext_lines": len(lines),
    "wikitext_tokens": len(flat),
}
with open(os.path.join(OUT, "reference.json"), "w") as f:
    json.dump(ref, f, indent=None, separators=(",", ":"))
    f.write("\n")
print(repr(ref["generated_text"]), len(flat), "wikitext tokens")
