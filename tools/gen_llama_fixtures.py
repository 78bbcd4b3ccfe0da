#!/usr/bin/env python3
"""Reference logits for @llmq/models, made by transformers on two tiny random Llama-family models.

Command (from the repository root; transformers 5.24, torch 2.13 on CPU):
    $LLMQ_PYTHON tools/gen_llama_fixtures.py

Writes packages/models/fixtures/<name>/ for each model: the model saved with save_pretrained (safetensors),
plus expected.json = {"tokens": [...], "positions": [...], "logits": [[...] per position], "transformers": ver,
"torch": ver}. The logits are computed in float32 from the weights exactly as stored (bf16 weights are decoded to
f32 by loading the saved directory back with torch_dtype=float32).

- tiny-llama3: LlamaForCausalLM, untied embeddings, GQA (4 heads, 2 kv heads), llama3 rope scaling, bf16 on disk.
- tiny-qwen2: Qwen2ForCausalLM, tied embeddings, q/k/v biases, f32 on disk, sharded (model.safetensors.index.json).
- tiny-mistral: MistralForCausalLM, sliding_window 8 (< the 24 tokens, so the window masks), f16 on disk.
- tiny-llama-bias: LlamaForCausalLM with attention_bias and mlp_bias (q/k/v/o and MLP biases), head_dim 8 decoupled
  from hidden_size / heads (q_proj is 32×64), linear rope scaling (factor 2), tied embeddings, f32 on disk.
Weights are drawn with a larger spread than the default init and norms/biases are randomised too, so that every
term of the forward pass moves the logits.
"""
import json
import os
import shutil

import torch
import transformers
from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "packages", "models", "fixtures")


def randomise(model: torch.nn.Module, seed: int) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight") or "layernorm" in name:
                p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
            elif name.endswith(".bias"):
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / (p.shape[-1] ** 0.5))


def make(name: str, cls, config, seed: int, dtype: torch.dtype, tokens: list[int], **save_kw) -> None:
    torch.manual_seed(seed)
    model = cls(config).to(torch.float32)
    randomise(model, seed)
    out = os.path.join(ROOT, name)
    shutil.rmtree(out, ignore_errors=True)
    model.to(dtype).save_pretrained(out, **save_kw)
    ref = cls.from_pretrained(out, dtype=torch.float32).eval()
    positions = list(range(len(tokens)))
    with torch.no_grad():
        logits = ref(input_ids=torch.tensor([tokens]), position_ids=torch.tensor([positions])).logits[0]
    assert logits.dtype == torch.float32
    with open(os.path.join(out, "expected.json"), "w") as f:
        json.dump(
            {
                "tokens": tokens,
                "positions": positions,
                "logits": [[float(v) for v in row] for row in logits.tolist()],
                "transformers": transformers.__version__,
                "torch": torch.__version__,
            },
            f,
        )
    print(name, "logits", tuple(logits.shape), "max|logit|", float(logits.abs().max()))


def main() -> None:
    g = torch.Generator().manual_seed(7)
    tokens = torch.randint(0, 128, (24,), generator=g).tolist()
    make(
        "tiny-llama3",
        LlamaForCausalLM,
        LlamaConfig(
            vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-5, tie_word_embeddings=False,
            rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0, "low_freq_factor": 1.0,
                             "high_freq_factor": 4.0, "original_max_position_embeddings": 32},
            bos_token_id=1, eos_token_id=2,
        ),
        seed=1,
        dtype=torch.bfloat16,
        tokens=tokens,
    )
    make(
        "tiny-qwen2",
        Qwen2ForCausalLM,
        Qwen2Config(
            vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, max_position_embeddings=256, rms_norm_eps=1e-6, tie_word_embeddings=True,
            rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}, use_sliding_window=False,
            bos_token_id=1, eos_token_id=2,
        ),
        seed=2,
        dtype=torch.float32,
        tokens=tokens,
        max_shard_size="150KB",
    )
    make(
        "tiny-mistral",
        MistralForCausalLM,
        MistralConfig(
            vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=1, head_dim=16, max_position_embeddings=256, rms_norm_eps=1e-5, sliding_window=8,
            tie_word_embeddings=False, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
            bos_token_id=1, eos_token_id=2,
        ),
        seed=3,
        dtype=torch.float16,
        tokens=tokens,
    )
    make(
        "tiny-llama-bias",
        LlamaForCausalLM,
        LlamaConfig(
            vocab_size=128, hidden_size=64, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
            num_key_value_heads=2, head_dim=8, max_position_embeddings=256, rms_norm_eps=1e-6, attention_bias=True,
            mlp_bias=True, tie_word_embeddings=True,
            rope_parameters={"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0},
            bos_token_id=1, eos_token_id=2,
        ),
        seed=4,
        dtype=torch.float32,
        tokens=tokens,
    )


if __name__ == "__main__":
    main()
