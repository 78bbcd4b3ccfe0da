"""Torch reference outputs for the Tensor-level ops of @llmq/tensor (packages/tensor/src/ops).

Command (from the repo root):
    $LLMQ_PYTHON tools/gen_tensor_op_fixtures.py > packages/tensor/fixtures/ops.json

torch 2.13.0 (CPU), transformers 5.24. Inputs are small seeded random f32/f64 tensors; every number is written with
Python's repr, which round-trips f32 and f64 values exactly. The tests in packages/tensor/src/ops/*.test.ts compare
the TypeScript ops with these outputs using the tolerances stated in each test.
"""

import json
import math

import torch
import torch.nn.functional as F
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import (
    LlamaRMSNorm,
    LlamaRotaryEmbedding,
    apply_rotary_pos_emb,
)

torch.manual_seed(1234)


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def tens(t):
    return {"dtype": {torch.float32: "f32", torch.float64: "f64"}[t.dtype], "shape": list(t.shape), "data": flat(t)}


out = {"torch": torch.__version__}

# ----- unary elementwise (f32) -----
x = torch.cat([
    torch.randn(48) * 3,
    torch.tensor([0.0, -0.0, 1e-30, -1e-30, 20.0, -20.0, 88.0, -100.0, 0.5, -0.5, 1.5, 2.5, -2.5, 3.0, -3.0, 7.25]),
]).float()
pos = x.abs() + 1e-3
out["unary"] = {
    "x": flat(x),
    "pos": flat(pos),
    "silu": flat(F.silu(x)),
    "gelu": flat(F.gelu(x)),
    "gelu_tanh": flat(F.gelu(x, approximate="tanh")),
    "sigmoid": flat(torch.sigmoid(x)),
    "tanh": flat(torch.tanh(x)),
    "relu": flat(F.relu(x)),
    "exp": flat(torch.exp(x)),
    "neg": flat(-x),
    "abs": flat(x.abs()),
    "round_x4": flat(torch.round(x * 4)),
    "log_pos": flat(torch.log(pos)),
    "sqrt_pos": flat(torch.sqrt(pos)),
    "rsqrt_pos": flat(torch.rsqrt(pos)),
}
x64 = x.double()
out["unary64"] = {
    "x": flat(x64),
    "silu": flat(F.silu(x64)),
    "gelu": flat(F.gelu(x64)),
    "gelu_tanh": flat(F.gelu(x64, approximate="tanh")),
    "sigmoid": flat(torch.sigmoid(x64)),
    "tanh": flat(torch.tanh(x64)),
}

# ----- binary with broadcasting (f32) -----
a = torch.randn(3, 1, 5).float()
b = (torch.randn(4, 1) * 2).float()
bp = b.abs() + 0.5
out["binary"] = {
    "a": tens(a),
    "b": tens(b),
    "add": tens(a + b),
    "sub": tens(a - b),
    "mul": tens(a * b),
    "div": tens(a / b),
    "maximum": tens(torch.maximum(a, b)),
    "minimum": tens(torch.minimum(a, b)),
    "pow_abs_a_bp": tens(torch.pow(a.abs(), bp)),
    "bp": tens(bp),
}

# ----- reductions -----
r = torch.randn(4, 6, 8).float()
out["reduce"] = {
    "x": tens(r),
    "sum1": tens(r.sum(1)),
    "mean2": tens(r.mean(2, keepdim=True)),
    "amax0": tens(r.amax(0)),
    "amin1": tens(r.amin(1)),
    "argmax2": [int(v) for v in r.argmax(2).reshape(-1).tolist()],
    "argmin1": [int(v) for v in r.min(1).indices.reshape(-1).tolist()],
    "group_sum_4": tens(r.reshape(4, 6, 2, 4).sum(-1)),
    "group_amax_4": tens(r.reshape(4, 6, 2, 4).amax(-1)),
}

# ----- softmax / log_softmax -----
s = (torch.randn(3, 7) * 4).float()
s[1, 3] = 80.0  # a large logit: the stable form must not overflow
out["softmax"] = {
    "x": tens(s),
    "softmax_last": tens(torch.softmax(s, -1)),
    "softmax_0": tens(torch.softmax(s, 0)),
    "log_softmax_last": tens(torch.log_softmax(s, -1)),
    "log_softmax_0": tens(torch.log_softmax(s, 0)),
}

# ----- rmsnorm (HF LlamaRMSNorm) -----
h = torch.randn(4, 16).float()
norm = LlamaRMSNorm(16, eps=1e-6)
with torch.no_grad():
    norm.weight.copy_(torch.randn(16) * 0.5 + 1)
    y = norm(h)
out["rmsnorm"] = {"x": tens(h), "weight": tens(norm.weight.detach().float()), "eps": 1e-6, "y": tens(y)}


# ----- rope -----
def rope_case(head_dim, theta, scaling, positions, heads=2):
    cfg = dict(hidden_size=head_dim * heads, num_attention_heads=heads, head_dim=head_dim, rope_theta=theta,
               max_position_embeddings=131072)
    if scaling is not None:
        cfg["rope_scaling"] = dict(rope_type="llama3", **scaling)
        cfg["rope_theta"] = theta
    config = LlamaConfig(**cfg)
    emb = LlamaRotaryEmbedding(config)
    pos_ids = torch.tensor([positions])
    q = torch.randn(1, heads, len(positions), head_dim).float()
    cos, sin = emb(q, pos_ids)
    q_rh, _ = apply_rotary_pos_emb(q, q, cos, sin)
    # interleaved layout (llama2.c / GPT-J): pairs (2i, 2i+1) rotate by the same angle as HF's pair (i, i + d/2)
    freqs = pos_ids[..., None].float() * emb.inv_freq.float()
    c = freqs.cos().repeat_interleave(2, dim=-1).unsqueeze(1)
    s_ = freqs.sin().repeat_interleave(2, dim=-1).unsqueeze(1)
    q2 = torch.stack((-q[..., 1::2], q[..., ::2]), dim=-1).flatten(-2)
    q_il = q * c + q2 * s_
    return {
        "head_dim": head_dim,
        "theta": theta,
        "scaling": scaling,
        "positions": positions,
        "inv_freq": flat(emb.inv_freq.float()),
        "x": tens(q),
        "rotate_half": tens(q_rh),
        "interleaved": tens(q_il),
    }


out["rope"] = [
    rope_case(8, 10000.0, None, [0, 1, 2, 7, 100]),
    rope_case(64, 500000.0, dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                 original_max_position_embeddings=8192), [0, 3, 513, 9000]),
    rope_case(32, 500000.0, dict(factor=32.0, low_freq_factor=1.0, high_freq_factor=4.0,
                                 original_max_position_embeddings=8192), [5, 131000]),
]

# ----- matmul -----
A = torch.randn(5, 7).float()
B = torch.randn(7, 3).float()
BA = torch.randn(2, 1, 3, 4).float()
BB = torch.randn(3, 4, 5).float()
A64 = torch.randn(4, 6, dtype=torch.float64)
B64 = torch.randn(5, 6, dtype=torch.float64)
out["matmul"] = {
    "a": tens(A), "b": tens(B), "ab": tens(A @ B),
    "atb_a": tens(A.T.contiguous()), "abt_b": tens(B.T.contiguous()),
    "ba": tens(BA), "bb": tens(BB), "ba_bb": tens(BA @ BB),
    "a64": tens(A64), "b64": tens(B64), "a64_b64t": tens(A64 @ B64.T),
}

# ----- cholesky / inverse / triangular solve -----
M = torch.randn(6, 9, dtype=torch.float64)
S = M @ M.T + 0.5 * torch.eye(6, dtype=torch.float64)
L = torch.linalg.cholesky(S)
Bt = torch.randn(6, 3, dtype=torch.float64)
S32 = S.float()
L32 = torch.linalg.cholesky(S32)
out["cholesky"] = {
    "a": tens(S),
    "l": tens(L),
    "inv": tens(torch.cholesky_inverse(L)),
    "b": tens(Bt),
    "solve_lower": tens(torch.linalg.solve_triangular(L, Bt, upper=False)),
    "solve_lower_t": tens(torch.linalg.solve_triangular(L.T, Bt, upper=True)),
    "solve_right_upper": tens(torch.linalg.solve_triangular(L.T, Bt.T.contiguous(), upper=True, left=False)),
    "a32": tens(S32),
    "l32": tens(L32),
    "inv32": tens(torch.cholesky_inverse(L32)),
}

# ----- group quantization (compressed-tensors order, f32) -----
qx = (torch.randn(4, 8) * 2).float()
qx[0, :4] = torch.tensor([0.25, 0.75, -0.25, 1.25])  # exact ties after dividing by 0.5
qs = torch.tensor([[0.5, 0.3], [0.21, 0.7], [1.1, 0.05], [0.33, 0.9]], dtype=torch.float32)
qz = torch.tensor([[0, 1], [-2, 3], [0, -1], [2, 0]], dtype=torch.float32)
g = qx.reshape(4, 2, 4)
qq = torch.round(torch.clamp(g / qs[..., None] + qz[..., None], -8, 7))
out["quantize"] = {
    "x": tens(qx), "scale": tens(qs), "zp": tens(qz), "qmin": -8, "qmax": 7, "group_size": 4,
    "q": tens(qq.reshape(4, 8)), "fake": tens(((qq - qz[..., None]) * qs[..., None]).reshape(4, 8)),
}


# ----- rng: an independent Python implementation of splitmix32-seeded xoshiro128** -----
M32 = 0xFFFFFFFF


def splitmix32(s):
    s = (s + 0x9E3779B9) & M32
    z = s
    z = ((z ^ (z >> 16)) * 0x85EBCA6B) & M32
    z = ((z ^ (z >> 13)) * 0xC2B2AE35) & M32
    return s, z ^ (z >> 16)


def rotl(x, k):
    return ((x << k) | (x >> (32 - k))) & M32


def xoshiro(seed, count):
    st, w = seed & M32, []
    for _ in range(4):
        st, o = splitmix32(st)
        w.append(o)
    s0, s1, s2, s3 = w
    res = []
    for _ in range(count):
        res.append((rotl((s1 * 5) & M32, 7) * 9) & M32)
        t = (s1 << 9) & M32
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 11)
    return res


out["rng"] = {str(seed): xoshiro(seed, 16) for seed in [0, 1, 42, 0xDEADBEEF]}

print(json.dumps(out))
