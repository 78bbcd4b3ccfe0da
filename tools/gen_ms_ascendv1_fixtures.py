#!/usr/bin/env python3
# msModelSlim's ascendV1 int4 packing of W4A16 weights, run from msModelSlim's own source: the functions `_pack_int4`
# and `_w4a16_pack_int4` are read out of save/complex_quantifier.py (ast) and executed with torch, since msmodelslim
# itself does not install on CPU (compiled Ascend kernels). trans_flag is what complex_quantifier passes: True when the
# weight_scale has one column (per channel).
#
# Command (from the repo root; deterministic):
#   MSL_COMPLEX_QUANTIFIER=<msmodelslim checkout>/msmodelslim/pytorch/llm_ptq/llm_ptq_tools/save/complex_quantifier.py \
#     $LLMQ_PYTHON tools/gen_ms_ascendv1_fixtures.py
#
# Versions used: Ascend/msmodelslim commit 3de0a3c4e96577644289563b0d3c4dccfa552c1b, torch 2.13.0 CPU.
# Output: packages/serialization/fixtures/ms-ascendv1-pack.json (codes and packed bytes as int lists).
import ast
import json
import os

import torch

SRC = os.environ["MSL_COMPLEX_QUANTIFIER"]
OUT = os.path.join(os.path.dirname(__file__), "..", "packages", "serialization", "fixtures", "ms-ascendv1-pack.json")

tree = ast.parse(open(SRC).read())
wanted = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name in ("_pack_int4", "_w4a16_pack_int4")]
ns = {"torch": torch}
exec(compile(ast.Module(body=wanted, type_ignores=[]), SRC, "exec"), ns)

torch.manual_seed(18)
cases = []
for n, k, per_channel in [(6, 8, True), (4, 10, True), (4, 8, False), (6, 12, False)]:
    codes = torch.randint(-8, 8, (n, k), dtype=torch.int8)
    packed = ns["_w4a16_pack_int4"](codes.clone(), per_channel)
    cases.append({"n": n, "k": k, "per_channel": per_channel, "codes": codes.flatten().tolist(),
                  "packed_shape": list(packed.shape), "packed": packed.flatten().tolist()})
with open(OUT, "w") as f:
    json.dump({"source": "msmodelslim save/complex_quantifier.py _w4a16_pack_int4", "cases": cases}, f)
    f.write("\n")
print(OUT, [c["packed_shape"] for c in cases])
