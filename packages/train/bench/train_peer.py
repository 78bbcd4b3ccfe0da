# The torch side of `pnpm -s bench train`: the same QAT training step as @llmq/train (fake-quantized linears with a
# clipped STE on fixed qparams, Llama forward, KL(teacher ‖ model), backward, clip_grad_norm_, AdamW) in torch CPU
# autograd, on random weights of the given shape. Reads a JSON case on argv[1]; prints {"seconds": best step}.
import json
import sys
import time

import torch
import torch.nn.functional as F

c = json.loads(sys.argv[1])
torch.set_num_threads(c["threads"])
torch.manual_seed(0)
H, I, L, V = c["hidden"], c["intermediate"], c["layers"], c["vocab"]
NH, KV, D, T, B = c["heads"], c["kv_heads"], c["head_dim"], c["tokens"], c["batch"]
qmax = 2 ** (c["bits"] - 1) - 1


def lin(o, i):
    return torch.nn.Parameter(torch.randn(o, i) * 0.02)


layers = [{"q": lin(NH * D, H), "k": lin(KV * D, H), "v": lin(KV * D, H), "o": lin(H, NH * D), "g": lin(I, H), "u": lin(I, H),
           "d": lin(H, I), "n1": torch.nn.Parameter(torch.ones(H)), "n2": torch.nn.Parameter(torch.ones(H))} for _ in range(L)]
emb = torch.randn(V, H) * 0.02
norm = torch.ones(H)
params = [p for l in layers for p in l.values()]


def scales(w):
    g = c["group"] if w.shape[1] % c["group"] == 0 else w.shape[1]
    return (w.detach().reshape(w.shape[0], -1, g).abs().amax(-1) / ((2 * qmax + 1) / 2)).clamp_min(1e-8), g


S = [{k: scales(l[k]) for k in "qkvogud"} for l in layers]


class ClippedSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, w, s, g):
        x = torch.round(w.reshape(w.shape[0], -1, g) / s[..., None])
        ctx.save_for_backward((x >= -qmax - 1) & (x <= qmax))
        return (x.clamp(-qmax - 1, qmax) * s[..., None]).reshape(w.shape)

    @staticmethod
    def backward(ctx, gy):
        (m,) = ctx.saved_tensors
        return gy * m.reshape(gy.shape), None, None


inv = 1.0 / (10000 ** (torch.arange(0, D, 2).float() / D))
ang = torch.outer(torch.arange(T).float(), inv)
cos, sin = torch.cat([ang.cos()] * 2, -1), torch.cat([ang.sin()] * 2, -1)


def rope(x):
    x1, x2 = x[..., : D // 2], x[..., D // 2:]
    return x * cos + torch.cat([-x2, x1], -1) * sin


def rms(x, w):
    return w * x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-5)


def forward(ids):
    h = emb[ids]
    for l, s in zip(layers, S):
        W = {k: ClippedSTE.apply(l[k], *s[k]) for k in "qkvogud"}
        x = rms(h, l["n1"])
        q = rope((x @ W["q"].T).view(T, NH, D).transpose(0, 1))
        k = rope((x @ W["k"].T).view(T, KV, D).transpose(0, 1)).repeat_interleave(NH // KV, 0)
        v = (x @ W["v"].T).view(T, KV, D).transpose(0, 1).repeat_interleave(NH // KV, 0)
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(0, 1).reshape(T, NH * D)
        h = h + a @ W["o"].T
        x = rms(h, l["n2"])
        h = h + (F.silu(x @ W["g"].T) * (x @ W["u"].T)) @ W["d"].T
    return rms(h, norm) @ emb.T


opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.0)
ids = [torch.randint(0, V, (T,)) for _ in range(B)]
teacher = [torch.log_softmax(torch.randn(T, V), -1) for _ in range(B)]
best = float("inf")
for _ in range(c["repeat"]):
    t0 = time.perf_counter()
    opt.zero_grad()
    for i, tl in zip(ids, teacher):
        loss = F.kl_div(torch.log_softmax(forward(i), -1), tl, log_target=True, reduction="sum") / T / B
        loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    opt.step()
    best = min(best, time.perf_counter() - t0)
print(json.dumps({"seconds": best, "torch": torch.__version__, "threads": torch.get_num_threads()}))
