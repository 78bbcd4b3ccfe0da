"""Reference Hadamard matrices and transforms from compressed-tensors' own functions, for hadamard.test.ts.

Command (from the repo root):
    $LLMQ_PYTHON tools/gen_hadamard_fixtures.py > packages/tensor/fixtures/hadamard.json

compressed-tensors 0.20.0, torch 2.13.0 (CPU). Matrices and sign vectors are ±1, stored row-major as strings of '0' (+1) and
'1' (-1). `random` entries come from `random_hadamard_matrix(n, float64, gen=torch.Generator().manual_seed(seed))`
together with the ±1 signs that generator draws (the same `torch.randint` call), so a test can rebuild them as
diag(signs) · H_known. Large sizes are checked through transforms of a few rows instead of whole matrices.
"""

import json

import torch
from compressed_tensors.transform.utils.hadamard import (
    _fetch_hadamard_divisor,
    deterministic_hadamard_matrix,
    random_hadamard_matrix,
)


def bits(m):
    return "".join("1" if v < 0 else "0" for v in m.reshape(-1).tolist())


def signs(n, seed):
    g = torch.Generator().manual_seed(seed)
    q = torch.randint(low=0, high=2, size=(n,), generator=g, dtype=torch.float64)
    return bits(q * 2 - 1)


out = {"deterministic": {}, "random": [], "transforms": [], "divisor": {}}
for n in [1, 2, 4, 8, 16, 32]:
    out["deterministic"][str(n)] = bits(deterministic_hadamard_matrix(n, torch.float64))

for n, seed in [(12, 0), (20, 1), (24, 2), (28, 3), (32, 4), (40, 5), (48, 6), (56, 7), (64, 8), (80, 9), (96, 10)]:
    g = torch.Generator().manual_seed(seed)
    r = random_hadamard_matrix(n, torch.float64, gen=g)
    out["random"].append({"n": n, "seed": seed, "signs": signs(n, seed), "bits": bits(r)})

torch.manual_seed(0)
# Small-integer inputs keep every output an exact integer (|y| < 2^24), so the test can demand equality.
for n, seed in [(320, 11), (1376, 12), (1536, 13), (3072, 14), (5120, 15), (4096, 16), (11008, 17)]:
    g = torch.Generator().manual_seed(seed)
    r = random_hadamard_matrix(n, torch.float64, gen=g)
    x = torch.randint(-3, 4, (1, n), generator=torch.Generator().manual_seed(100 + seed)).double()
    out["transforms"].append({
        "n": n, "seed": seed, "signs": signs(n, seed),
        "x": [int(v) for v in x.reshape(-1).tolist()], "y": [int(v) for v in (x @ r).reshape(-1).tolist()],
    })

for n in [12, 24, 48, 96, 192, 320, 640, 1280, 5120, 172 * 8, 4096, 8192, 28 * 1024]:
    k = _fetch_hadamard_divisor(n, torch.float64)
    out["divisor"][str(n)] = None if k is None else int(k.shape[0])

print(json.dumps(out))
