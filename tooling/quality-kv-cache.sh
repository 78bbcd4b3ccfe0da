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
row() { # label model [eval flags…]
  local label=$1 model=$2
  shift 2
  e=$(llmq eval --model "$model" --reference "$out/fp" --dataset fixtures/wikitext-2/test.txt --seq-len 256 \
    --num-samples 32 --json "$@" 2>/dev/null)
  node -e '
    const e = JSON.parse(process.argv[1]);
    console.log(`| ${process.argv[2]} | ${e.kv_cache} | ${e.kld.mean.toFixed(4)} | ${(100 * e.top1).toFixed(2)} % | ${e.perplexity.toFixed(2)} |`);
  ' "$e" "$label"
}
echo "| model | KV cache | KL divergence (mean, nats/token) | top-1 agreement | perplexity |"
echo "|---|---|---|---|---|"
row "fp32" "$out/fp" --kv-cache fp8
row "fp32" "$out/fp" --kv-cache int8
for r in w4a16-g32-gptq w4a16-g32-gptq-kv-fp8 w4a16-g32-gptq-kv-fp8-head w4a16-g32-gptq-kv-int8; do
  llmq quantize --model "$out/fp" --recipe "fixtures/recipes/stories260k-$r.yaml" --dataset fixtures/wikitext-2/valid.txt \
    --num-samples 64 --seq-len 256 --output "$out/$r" --overwrite --json >/dev/null 2>&1
  row "$r" "$out/$r"
done
row "w4a16-g32-gptq" "$out/w4a16-g32-gptq" --kv-cache f16
row "w4a16-g32-gptq" "$out/w4a16-g32-gptq" --kv-cache fp8
row "w4a16-g32-gptq" "$out/w4a16-g32-gptq" --kv-cache int8

# SmolLM2-135M-Instruct (tools/fetch_smollm2.sh; skipped when it cannot be fetched): W4A16 g64 GPTQ with the same caches.
gguf=$(bash tools/fetch_smollm2.sh 2>/dev/null) || { echo "SmolLM2 not available: its rows are skipped" >&2; exit 0; }
llmq convert --from gguf "$gguf" --output "$out/smollm2-fp" --overwrite >/dev/null
out_fp=$out/smollm2-fp
row_s() { local label=$1 model=$2; shift 2
  e=$(llmq eval --model "$model" --reference "$out_fp" --dataset fixtures/wikitext-2/test.txt --seq-len 256 --num-samples 32 --json "$@" 2>/dev/null)
  node -e 'const e = JSON.parse(process.argv[1]); console.log(`| ${process.argv[2]} | ${e.kv_cache} | ${e.kld.mean.toFixed(4)} | ${(100 * e.top1).toFixed(2)} % | ${e.perplexity.toFixed(2)} |`);' "$e" "$label"
}
row_s "SmolLM2 fp32" "$out_fp" --kv-cache fp8
row_s "SmolLM2 fp32" "$out_fp" --kv-cache int8
for r in gptq gptq-kv-fp8 gptq-kv-int8; do
  llmq quantize --model "$out_fp" --recipe "fixtures/recipes/smollm2-w4a16-g64-$r.yaml" --dataset fixtures/wikitext-2/valid.txt \
    --num-samples 64 --seq-len 256 --output "$out/smollm2-$r" --overwrite --json >/dev/null 2>&1
  row_s "SmolLM2 w4a16-g64-$r" "$out/smollm2-$r"
done
row_s "SmolLM2 w4a16-g64-gptq" "$out/smollm2-gptq" --kv-cache fp8
row_s "SmolLM2 w4a16-g64-gptq" "$out/smollm2-gptq" --kv-cache int8
