#!/usr/bin/env python3
# A sentencepiece-style ("llama") GGUF vocabulary and transformers' ids for it, for @llmq/models' GGUF tokenizer.
#
# Command (from the repo root; deterministic):
#   $LLMQ_PYTHON tools/gen_gguf_tokenizer_fixtures.py
#
# Versions used: gguf 0.19.0, transformers 5.24.0, tokenizers 0.23.3.
# The vocabulary is llama2.c's tok512 (fixtures/stories260K/tok512.bin: pieces and scores) written the way llama.cpp's
# llama2.c converter writes a llama vocabulary (spaces as U+2581, <unk>/<s>/</s>, <0xNN> byte tokens, token types
# UNKNOWN 2 / CONTROL 3 / BYTE 6 / NORMAL 1, no merges: transformers derives them from the scores). The expected ids
# are AutoTokenizer.from_pretrained(dir, gguf_file=...)'s, default call (BOS added), on the first 200 non-empty
# WikiText-2 test lines and a few edge strings.
#
# Outputs (packages/models/fixtures/gguf-sp/): tok512.gguf (no tensors), expected.json.
import json
import os
import struct

import gguf
from transformers import AutoTokenizer

ROOT = os.path.join(os.path.dirname(__file__), "..")
OUT = os.path.join(ROOT, "packages", "models", "fixtures", "gguf-sp")
os.makedirs(OUT, exist_ok=True)

raw = open(os.path.join(ROOT, "fixtures", "stories260K", "tok512.bin"), "rb").read()
off, tokens, scores = 4, [], []
for _ in range(512):
    score, n = struct.unpack_from("<fi", raw, off)
    off += 8
    tokens.append(raw[off : off + n].decode("utf-8"))
    off += n
    scores.append(score)
tokens[1], tokens[2] = "<s>", "</s>"
tokens = [t.replace(" ", "\u2581") for t in tokens]
types = [2, 3, 3] + [6] * 256 + [1] * (512 - 259)

path = os.path.join(OUT, "tok512.gguf")
w = gguf.GGUFWriter(path, arch="llama")
w.add_tokenizer_model("llama")
w.add_token_list(tokens)
w.add_token_scores(scores)
w.add_token_types(types)
w.add_bos_token_id(1)
w.add_eos_token_id(2)
w.add_unk_token_id(0)
w.add_add_bos_token(True)
w.write_header_to_file()
w.write_kv_data_to_file()
w.write_tensors_to_file()
w.close()

tok = AutoTokenizer.from_pretrained(OUT, gguf_file="tok512.gguf")
with open(os.path.join(ROOT, "fixtures", "wikitext-2", "test.txt"), encoding="utf-8") as f:
    lines = [l.rstrip("\n") for l in f if l.strip()][:200]
edge = ["", " ", "  hi", "Hello world", "once upon a time\n\nthe end", "naïve café ✓ 😀", "<s> literal", "tab\there"]
expected = {"lines": len(lines), "line_ids": [tok(t).input_ids for t in lines], "edge": [{"text": t, "ids": tok(t).input_ids} for t in edge]}
with open(os.path.join(OUT, "expected.json"), "w") as f:
    json.dump(expected, f, ensure_ascii=False, separators=(",", ":"))
    f.write("\n")
print(len(lines), "lines,", len(edge), "edge strings")
