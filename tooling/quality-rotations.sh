#!/usr/bin/env bash
# The rotations quality table of the README: stories260K quantized with and without SpinQuant / QuIP (recipes in
# fixtures/recipes), calibration and evaluation as in tooling/quality-table.sh; `llmq eval` applies the online
# transforms (R4, QuIP v) and the dynamic int4 activation quantization in its forward.
#   bash tooling/quality-rotations.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source tooling/quality-table.sh
out=${1:-.quality-rotations}
mkdir -p "$out"
# SpinQuant's pre-rotation surgery alone (no rotation, no quantization): llm-compressor centres the embedding rows,
# which changes a Llama's function (RMSNorm is not invariant to a mean shift); every SpinQuant row inherits it.
printf 'rotation_stage:\n  rotation_modifiers:\n    SpinQuantModifier:\n      rotations: []\n' > "$out/spinquant-surgery-only.yaml"
quality_table "$out" "$out/spinquant-surgery-only.yaml" w4a4-g32 spinquant-r12-w4a4-g32 spinquant-r124-w4a4-g32 w4a16-g32 \
  spinquant-r12-w4a16-g32 quip-w4a16-g32 w4a16-g32-gptq spinquant-r12-w4a16-g32-gptq quip-w4a16-g32-gptq
