#!/usr/bin/env python3
"""Parse the recipe fixtures with llm-compressor's own recipe parser and dump what it resolves.

Command (run from the repo root; writes packages/schemes/fixtures/recipes/expected.json):

    $LLMQ_PYTHON tools/gen_recipe_fixtures.py

Versions used: llmcompressor 0.14.0.1, compressed-tensors 0.20.0.

For every packages/schemes/fixtures/recipes/*.yaml: `Recipe.create_instance(path)` and, per modifier, its class
name, base fields (group/index/start/end/update), `model_dump()` (all public fields with LC's defaults), for
QuantizationMixin modifiers the `resolved_config.model_dump()` (the compressed-tensors QuantizationConfig the
modifier implies), and `recipe.yaml()` (the recipe.yaml LC saves with a checkpoint). For invalid/*.yaml the
exception class and message LC raises.
"""

import glob
import json
import os
import sys

from llmcompressor.recipe import Recipe

HERE = os.path.join(os.path.dirname(__file__), "..", "packages", "schemes", "fixtures", "recipes")


def jsonable(v):
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def dump_modifier(m):
    out = {
        "type": type(m).__name__,
        "group": m.group,
        "index": m.index,
        "start": m.start,
        "end": m.end,
        "update": m.update,
        "fields": jsonable({k: v for k, v in m.model_dump().items() if not k.endswith("_")}),
    }
    if hasattr(m, "resolved_config"):
        out["resolved_config"] = jsonable(m.resolved_config.model_dump())
    return out


def main():
    import compressed_tensors
    import llmcompressor

    valid = {}
    for path in sorted(glob.glob(os.path.join(HERE, "*.yaml"))):
        r = Recipe.create_instance(path)
        valid[os.path.basename(path)] = {
            "stage": r.stage,
            "args": jsonable(r.args),
            "modifiers": [dump_modifier(m) for m in r.modifiers],
            "recipe_yaml": r.yaml(),
        }
    invalid = {}
    for path in sorted(glob.glob(os.path.join(HERE, "invalid", "*.yaml"))):
        try:
            r = Recipe.create_instance(path)
            # some errors only surface when the quantization config is resolved (LC: on_initialize)
            for m in r.modifiers:
                if hasattr(m, "resolved_config"):
                    m.resolved_config
            invalid[os.path.basename(path)] = {"error": None}
        except Exception as e:  # noqa: BLE001 - we record what LC raises
            invalid[os.path.basename(path)] = {"error": type(e).__name__, "message": str(e)[:600]}
    data = {
        "generator": "tools/gen_recipe_fixtures.py",
        "command": "$LLMQ_PYTHON tools/gen_recipe_fixtures.py",
        "versions": {"llmcompressor": llmcompressor.__version__, "compressed_tensors": compressed_tensors.__version__},
        "valid": valid,
        "invalid": invalid,
    }
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(data, f, indent=1, sort_keys=False)
    print(f"wrote {len(valid)} valid and {len(invalid)} invalid recipes", file=sys.stderr)


if __name__ == "__main__":
    main()
