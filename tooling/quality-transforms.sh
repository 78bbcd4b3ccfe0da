#!/usr/bin/env bash
# The transforms quality table of the README: stories260K quantized with and without SmoothQuant / AWQ, each recipe
# calibrated on the same 64 × 256 WikiText-2 validation tokens (llmq's seeded shuffle), evaluated against the fp32
# model on 32 × 256 held-out WikiText-2 test tokens. Prints a Markdown table (KL divergence, top-1 agreement,
# perplexity). Run from the repo root after `pnpm build`: bash tooling/quality-transforms.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
source tooling/quality-table.sh
quality_table "${1:-.quality}" w8a8 smoothquant-w8a8 smoothquant-w8a8-gptq w4a16-g32 awq-w4a16-g32 w4a16-g32-gptq awq-w4a16-g32-gptq
