#!/usr/bin/env bash
# The KV-cache quality table of the README: stories260K W4A16 GPTQ (g32) with an f32 KV cache, with calibrated fp8 /
# int8 caches (kv_cache_scheme in the recipe: k_scale / v_scale saved in the checkpoint), and with llmq's dynamic
# fp8 / int8 caches (--kv-cache: a scale per token and KV head); the fp32 model with dynamic caches alone. Calibration:
# 64 × 256 WikiText-2 validation tokens; evaluation against the fp32 model on 32 × 256 held-out WikiText-2 test tokens.
# Prints a Markdown table. Run from the repo root after `pnpm build`: bash tooling/quality-kv-cache.sh [out_dir]
set -euo pipefail
cd "$(dirname "$0")/.."
llmq() { node packages/llmq/dist/cli.js "$@"; }
out=${1:-.quality}
mkdir -p "$out"
llmq convert --from llama2c fixtures/stories260K/stories260K.bin --tokenizer fixtures/stories260K/tok512.bin \
  --output "$out/fp" --overwrite >/dev/null
quant() { # model recipe output
  llmq quantize --model "$1" --recipe "$2" --dataset fixtures/wikitext-2/valid.txt --num-samples 64 --seq-len 256 \
    --output "$3" --overwrite --json >/dev/null 2>&1
}
row() { # reference label model [eval flags…]
  local ref=$1 label=$2 model=$3
  shift 3
  e=$(llmq eval --model "$model" --reference "$ref" --dataset fixtures/wikitext-2/test.txt --seq-len 256 \
    --num-samples 32 --json "$@" 2>/dev/null)
  node -e '
    const e = JSON.parse(process.argv[1]);
    console.log(`| ${process.argv[2]} | ${e.kv_cache} | ${e.kld.mean.toFixed(4)} | ${(100 * e.top1).toFixed(2)} % | ${e.perplexity.toFixed(2)} |`);
  ' "$e" "$label"
}
# One model's rows: the fp model with dynamic fp8 / int8 caches, each recipe fixtures/recipes/<prefix>-<r>.yaml (the
# first without a kv_cache_scheme), then that first one with the dynamic caches `kvs`.
rows() { # fp label prefix "kvs" recipe…
  local fp=$1 label=$2 prefix=$3 kvs=$4
  shift 4
  local base=$1
  row "$fp" "$label fp32" "$fp" --kv-cache fp8
  row "$fp" "$label fp32" "$fp" --kv-cache int8
  for r in "$@"; do
    quant "$fp" "fixtures/recipes/$prefix-$r.yaml" "$out/$prefix-$r"
    row "$fp" "$label $r" "$out/$prefix-$r"
  done
  for kv in $kvs; do row "$fp" "$label $base" "$out/$prefix-$base" --kv-cache "$kv"; done
}
echo "| model | KV cache | KL divergence (mean, nats/token) | top-1 agreement | perplexity |"
echo "|---|---|---|---|---|"
rows "$out/fp" stories260K stories260k "f16 fp8 int8" w4a16-g32-gptq w4a16-g32-gptq-kv-fp8 w4a16-g32-gptq-kv-fp8-head w4a16-g32-gptq-kv-int8

# SmolLM2-135M-Instruct (tools/fetch_smollm2.sh; skipped when it cannot be fetched): W4A16 g64 GPTQ with the same caches.
gguf=$(bash tools/fetch_smollm2.sh 2>/dev/null) || { echo "SmolLM2 not available: its rows are skipped" >&2; exit 0; }
llmq convert --from gguf "$gguf" --output "$out/smollm2-fp" --overwrite >/dev/null
rows "$out/smollm2-fp" SmolLM2 smollm2 "fp8 int8" w4a16-g64-gptq w4a16-g64-gptq-kv-fp8 w4a16-g64-gptq-kv-int8
