# torch references for @llmq/train's optimizer pieces: AdamW steps, clip_grad_norm_, and transformers' LR schedules.
# Run from the repository root:
#   /work/pyenv/bin/python tools/gen_train_fixtures.py > packages/train/fixtures/optim.json
import json
import math

import torch
from transformers import get_constant_schedule_with_warmup, get_cosine_schedule_with_warmup, get_linear_schedule_with_warmup

torch.manual_seed(0)
out = {"torch": torch.__version__}

# AdamW in float64 (the arithmetic llmq's optimizer runs in), three steps with fixed gradients and a changing lr.
p0 = torch.randn(2, 5, dtype=torch.float64)
grads = [torch.randn(2, 5, dtype=torch.float64) for _ in range(3)]
lrs = [1e-2, 5e-3, 2e-3]
p = torch.nn.Parameter(p0.clone())
opt = torch.optim.AdamW([p], lr=lrs[0], betas=(0.9, 0.95), eps=1e-8, weight_decay=0.1, foreach=False)
after = []
for g, lr in zip(grads, lrs):
    for group in opt.param_groups:
        group["lr"] = lr
    p.grad = g.clone()
    opt.step()
    after.append(p.detach().flatten().tolist())
out["adamw"] = {"betas": [0.9, 0.95], "eps": 1e-8, "weight_decay": 0.1, "lrs": lrs, "param": p0.flatten().tolist(),
                "grads": [g.flatten().tolist() for g in grads], "after": after}

# clip_grad_norm_ over two tensors, once clipping and once not.
clip = []
for max_norm in (0.5, 100.0):
    a = torch.nn.Parameter(torch.zeros(3, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(4, dtype=torch.float64))
    ga, gb = torch.randn(3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    a.grad, b.grad = ga.clone(), gb.clone()
    norm = torch.nn.utils.clip_grad_norm_([a, b], max_norm)
    clip.append({"max_norm": max_norm, "grads": [ga.tolist(), gb.tolist()], "norm": norm.item(), "clipped": [a.grad.tolist(), b.grad.tolist()]})
out["clip"] = clip

# Schedules: the lr multiplier at every step of a 20-step run with 3 warmup steps.
sched = {}
for name, make in (("constant", lambda o: get_constant_schedule_with_warmup(o, 3)),
                   ("linear", lambda o: get_linear_schedule_with_warmup(o, 3, 20)),
                   ("cosine", lambda o: get_cosine_schedule_with_warmup(o, 3, 20))):
    o = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    s = make(o)
    factors = []
    for _ in range(21):
        factors.append(o.param_groups[0]["lr"])
        o.step()
        s.step()
    sched[name] = factors
out["schedules"] = {"warmup": 3, "total": 20, "factors": sched}
print(json.dumps(out))
