#!/usr/bin/env python3
"""Where llm-compressor's AWQ loss overflows float16: per decoder layer, the largest summed squared error of one window.

Command: $LLMQ_PYTHON tools/awq_loss_overflow.py <hf model dir> <text file> [windows=8] [seq_len=256] [group_size=64]

llm-compressor 0.14's AWQModifier._compute_loss adds, per calibration batch, `mse_loss(fp16_out, int_w_out,
reduction="sum")`, a number in the outputs' dtype: in a float16 model a batch whose squared error sums past 65504 is
inf, and a mapping whose every grid point has such a batch ends in "No finite loss was found". AutoAWQ sums in float32.
This runs the model in float32 on consecutive windows of the text and, for each layer's self_attn (q/k/v quantized)
and mlp (gate/up quantized), quantizes those weights by plain 4-bit asymmetric round-to-nearest per group (the grid's
first point, before any AWQ scaling) and prints the largest per-window sum — the figure behind llmq's AwqConfig using
AutoAWQ's float32 loss (SmolLM2-135M: layer 23's attention is the first past 65504).
"""
import sys

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


def rtn(w, g):
    o, i = w.shape
    x = w.float().reshape(o, i // g, g)
    lo, hi = x.amin(-1, keepdim=True).clamp(max=0), x.amax(-1, keepdim=True).clamp(min=0)
    s = (hi - lo) / 15
    s = torch.where(s == 0, torch.ones_like(s), s)
    z = torch.round(-lo / s).clamp(0, 15)
    return ((torch.round(x / s) + z).clamp(0, 15) - z).mul(s).reshape(o, i).to(w.dtype)


def main(model_dir, text_file, windows=8, seq_len=256, group_size=64):
    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = tok(open(text_file).read()[: 1000 * windows * seq_len], return_tensors="pt").input_ids[0]
    with torch.no_grad():
        hs = [model.model(ids[k * seq_len:(k + 1) * seq_len].unsqueeze(0), use_cache=False, output_hidden_states=True).hidden_states for k in range(windows)]
        pos = torch.arange(seq_len).unsqueeze(0)
        for i, layer in enumerate(model.model.layers):
            pe = model.model.rotary_emb(hs[0][i], pos)
            attn = lambda x: layer.self_attn(x, position_embeddings=pe, attention_mask=None)[0]  # noqa: E731
            attn_in = [layer.input_layernorm(h[i]) for h in hs]
            mlp_in = [layer.post_attention_layernorm(h[i] + attn(x)) for h, x in zip(hs, attn_in)]
            for kind, mod, lins, xs, f in (("self_attn", layer.self_attn, ["q_proj", "k_proj", "v_proj"], attn_in, attn), ("mlp", layer.mlp, ["gate_proj", "up_proj"], mlp_in, layer.mlp)):
                ref = [f(x) for x in xs]
                orig = {n: getattr(mod, n).weight.data.clone() for n in lins}
                for n in lins:
                    getattr(mod, n).weight.data = rtn(orig[n], group_size)
                worst = max(torch.nn.functional.mse_loss(r, f(x), reduction="sum").item() for r, x in zip(ref, xs))
                for n in lins:
                    getattr(mod, n).weight.data = orig[n]
                print(f"layer {i} {kind}: largest window sum {worst:.4g}{'  > 65504: inf in float16' if worst > 65504 else ''}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6]))
